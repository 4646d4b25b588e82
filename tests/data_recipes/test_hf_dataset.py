"""Hugging Face datasets (save_to_disk folders, Hub ids) imported without datasets' decoding."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format, hf_dataset, prepare_sources, read_source
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

datasets = pytest.importorskip("datasets")

# (text, speaker, seconds, sample rate): rates differ, so the import resamples.
CLIPS = [("imaynalla kashanki", "ana", 0.5, 16_000), ("allillanmi", "ana", 0.75, 8_000),
         ("sulpayki", "luis", 1.0, 22_050), ("tupananchiskama", "luis", 1.25, 16_000),
         ("ari", "rosa", 0.6, 44_100)]


def write_clips(folder: Path, clips=CLIPS) -> list[Path]:
    """One WAV per clip: a sine (or noise, every other one) of the clip's length."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index, (_, _, seconds, rate) in enumerate(clips):
        t = np.arange(int(seconds * rate)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 220 * t) if index % 2 == 0
                   else 0.1 * rng.standard_normal(len(t)))
        path = folder / f"clip{index}.wav"
        sf.write(path, samples.astype(np.float32), rate)
        paths.append(path)
    return paths


def dataset(paths: list[Path], clips=CLIPS, *, embedded: bool = True, **columns):
    """A Dataset with an Audio column: the files' bytes, or only their paths."""
    audio = ([{"bytes": p.read_bytes(), "path": p.name} for p in paths] if embedded
             else [str(p) for p in paths])
    table = {"audio": audio, "sentence": [c[0] for c in clips],
             "speaker_id": [c[1] for c in clips], **columns}
    return datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio())


def save_paths_only(data, folder: Path, monkeypatch) -> Path:
    """Save as `datasets` before 4 did: the audio column keeps paths, no bytes."""
    import datasets.arrow_writer as writer

    with monkeypatch.context() as patch:
        patch.setattr(writer, "embed_table_storage", lambda table, **_: table)
        data.save_to_disk(str(folder))
    return folder


def utterances(ws: Workspace) -> list:
    return [u for us in ws.read_all().values() for u in us]


def test_embedded_audio_is_written_into_the_workspace_and_imported(tmp_path):
    paths = write_clips(tmp_path / "wav")
    folder = tmp_path / "quechua_ds"
    dataset(paths).save_to_disk(str(folder))
    assert detect_format(folder) == "hf-dataset"
    for path in paths:
        path.unlink()  # the dataset alone holds the audio now
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_sources([folder], ws, progress=False)
    assert not result.issues
    got = sorted((u.text, u.speaker, u.duration) for u in utterances(ws))
    assert got == sorted((text, speaker, seconds) for text, speaker, seconds, _ in CLIPS)
    clips = hf_dataset.clips_folder(ws, folder)
    assert clips.parent == ws.root / "sources"
    assert sorted(p.name for p in (clips / "all").iterdir()) == [
        f"{i:06d}-clip{i}.wav" for i in range(len(CLIPS))]
    assert {Path(u.source).parent for u in utterances(ws)} == {clips / "all"}
    assert all(ws.audio_path(u).is_file() for u in utterances(ws))

    # Safe to re-run: the clips are written again into the same folder, nothing is left over.
    prepare_sources([folder], ws, progress=False)
    assert len(list((clips / "all").iterdir())) == len(CLIPS)
    assert [p.name for p in clips.parent.iterdir()] == [clips.name]


def test_rows_stream_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_dataset, "BATCH_ROWS", 2)
    folder = tmp_path / "ds"
    dataset(write_clips(tmp_path / "wav")).save_to_disk(str(folder))
    read = read_source(folder, workspace=Workspace.at(tmp_path / "ws"))
    assert [row.text for row in read.rows] == [c[0] for c in CLIPS]
    assert [row.item for row in read.rows] == [f"ds[{i}]" for i in range(len(CLIPS))]


def test_audio_given_by_path_is_read_where_it_is(tmp_path, monkeypatch):
    paths = write_clips(tmp_path / "wav")
    folder = save_paths_only(dataset(paths, embedded=False), tmp_path / "ds", monkeypatch)
    stored = datasets.load_from_disk(str(folder)).cast_column(
        "audio", datasets.Audio(decode=False))[0]["audio"]
    assert stored["bytes"] is None and stored["path"] == str(paths[0])
    ws = Workspace.at(tmp_path / "ws")
    prepare_sources([folder], ws, progress=False)
    imported = {u.source: u for u in utterances(ws)}
    assert sorted(imported) == sorted(str(p) for p in paths)
    assert imported[str(paths[2])].duration == 1.0
    assert not (ws.root / "sources").exists()  # nothing had to be written


def test_a_missing_audio_file_is_reported_not_dropped(tmp_path, monkeypatch):
    paths = write_clips(tmp_path / "wav")
    folder = save_paths_only(dataset(paths, embedded=False), tmp_path / "ds", monkeypatch)
    paths[1].unlink()
    result = prepare_sources([folder], Workspace.at(tmp_path / "ws"), progress=False)
    assert len(result.utterances) == len(CLIPS) - 1
    [issue] = result.issues
    assert (issue.item, issue.check) == ("ds[1]", "row_without_audio")
    assert "not embedded" in issue.detail and str(paths[1]) in issue.detail


def test_a_dataset_dict_keeps_its_splits(tmp_path):
    paths = write_clips(tmp_path / "wav")
    whole = dataset(paths)
    parts = datasets.DatasetDict({
        "train": whole.select([0, 1, 2]), "validation": whole.select([3]),
        "test": whole.select([4]), "other": whole.select([0])})
    folder = tmp_path / "dd"
    parts.save_to_disk(str(folder))
    assert detect_format(folder) == "hf-dataset"

    ws = Workspace.at(tmp_path / "ws")
    result = prepare_sources([folder], ws, progress=False)
    assert {s: [u.text for u in us] for s, us in ws.read_all().items()} == {
        "train": [c[0] for c in CLIPS[:3]], "dev": [CLIPS[3][0]], "test": [CLIPS[4][0]]}
    [other] = result.issues  # a split of another name is reported, not imported
    assert other.check == "split_not_imported" and "--split other" in other.detail
    assert [u.id for u in ws.read_split("dev")] == ["validation__clip3"]

    # --no-source-splits: the same rows, split here (by speaker: 3 of them).
    result = prepare_sources([folder], ws, progress=False, use_splits=False)
    assert sorted(u.text for u in utterances(ws)) == sorted(c[0] for c in CLIPS)
    assert result.speaker_disjoint

    # --split NAME: that split alone.
    prepare_sources([folder], ws, progress=False, split="other")
    assert [u.text for u in utterances(ws)] == [CLIPS[0][0]]
    with pytest.raises(WorkbenchError, match="no split named 'dev'; its splits: train, "
                                             "validation, test, other"):
        read_source(folder, workspace=ws, split="dev")


def test_incomplete_splits_are_split_here_and_said(tmp_path):
    whole = dataset(write_clips(tmp_path / "wav"))
    folder = tmp_path / "dd"
    datasets.DatasetDict({"train": whole.select([0, 1, 2]),
                          "test": whole.select([3, 4])}).save_to_disk(str(folder))
    result = prepare_sources([folder], Workspace.at(tmp_path / "ws"), progress=False)
    assert len(result.utterances) == len(CLIPS)
    [issue] = result.issues
    assert issue.check == "source_splits_incomplete" and issue.action == "imported (split here)"


def test_ambiguous_columns_are_listed_with_the_option_that_chooses(tmp_path):
    paths = write_clips(tmp_path / "wav")
    folder = tmp_path / "ds"
    dataset(paths, text=[c[0].upper() for c in CLIPS]).save_to_disk(str(folder))
    ws = Workspace.at(tmp_path / "ws")
    with pytest.raises(WorkbenchError) as err:
        read_source(folder, workspace=ws)
    message = str(err.value)
    assert "several transcript columns (sentence, text)" in message
    assert "Columns: audio (Audio), sentence (string), speaker_id (string), text (string)" in (
        message)
    assert message.endswith("Choose the transcript column with --text-column.")
    read = read_source(folder, workspace=ws, text_column="text")
    assert [row.text for row in read.rows] == [c[0].upper() for c in CLIPS]

    two_audio = tmp_path / "two"
    dataset(paths).add_column("noise", [{"bytes": p.read_bytes(), "path": p.name}
                                        for p in paths]).cast_column(
        "noise", datasets.Audio()).save_to_disk(str(two_audio))
    with pytest.raises(WorkbenchError, match=r"2 columns of type Audio \(audio, noise\)\. "
                                             r"Columns: .*--audio-column"):
        read_source(two_audio, workspace=ws)
    with pytest.raises(WorkbenchError, match="no column named 'voice' for the speaker"):
        read_source(two_audio, workspace=ws, audio_column="noise", speaker_column="voice")


def test_workbench_prepare_reads_a_dataset_with_the_options_given(tmp_path, capsys):
    paths = write_clips(tmp_path / "wav")
    folder = tmp_path / "ds"
    dataset(paths, who=[f"spk-{c[1]}" for c in CLIPS]).save_to_disk(str(folder))
    ws = tmp_path / "ws"
    code = main(["prepare", str(folder), "-w", str(ws), "--speaker-column", "who",
                 "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["utterances"] == len(CLIPS) and summary["speakers"] == 3
    assert {u.speaker for u in utterances(Workspace.at(ws))} == {"spk-ana", "spk-luis",
                                                                 "spk-rosa"}
    assert summary["seconds"] == pytest.approx(sum(c[2] for c in CLIPS))


def test_a_hub_id_offline_says_to_bring_a_saved_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("network"))
    assert main(["prepare", "someone/quechua-speech", "-w", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: someone/quechua-speech: no such file or folder here, and "
                          "this machine is offline")
    assert ("datasets.load_dataset('someone/quechua-speech').save_to_disk('quechua-speech')"
            in err and "bring the folder quechua-speech/ to this machine" in err)
    assert not (tmp_path / "someone").exists()


def test_a_hub_id_without_network_gets_the_same_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.chdir(tmp_path)

    def unreachable(*args, **kwargs):
        raise RuntimeError("download failed") from ConnectionError("Name or service not known")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(WorkbenchError, match="the Hugging Face Hub cannot be reached from this "
                                             "machine.*save_to_disk"):
        read_source(Path("someone/quechua-speech"), workspace=Workspace.at(tmp_path / "ws"))


def test_a_dataset_naming_files_outside_its_folder_is_refused(tmp_path):
    whole = dataset(write_clips(tmp_path / "wav"))
    whole.save_to_disk(str(tmp_path / "elsewhere"))
    folder = tmp_path / "dd"
    datasets.DatasetDict({"train": whole}).save_to_disk(str(folder))
    (folder / "dataset_dict.json").write_text('{"splits": ["../elsewhere"]}')
    with pytest.raises(WorkbenchError, match="names '../elsewhere', outside the dataset's "
                                             "folder"):
        read_source(folder, workspace=Workspace.at(tmp_path / "ws"))
    assert hf_dataset.describe(folder) == ([], ["../elsewhere"])
    state = folder / "train" / "state.json"
    state.write_text(state.read_text().replace("data-00000", "../../elsewhere/data-00000"))
    (folder / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(WorkbenchError, match="train/state.json names '../../elsewhere/"):
        read_source(folder, workspace=Workspace.at(tmp_path / "ws"))


def test_describe_reads_columns_and_splits_without_loading(tmp_path):
    whole = dataset(write_clips(tmp_path / "wav"))
    datasets.DatasetDict({"train": whole, "test": whole}).save_to_disk(str(tmp_path / "dd"))
    assert hf_dataset.describe(tmp_path / "dd") == (["audio", "sentence", "speaker_id"],
                                                    ["train", "test"])
    assert hf_dataset.describe(tmp_path / "wav") == ([], [])
