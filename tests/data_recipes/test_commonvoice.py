"""Common Voice recipe: the release's own splits, client_id speakers, mp3 clips."""

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format, read_source
from data_recipes.commonvoice import prepare_commonvoice, read_commonvoice
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.manifest import read_manifest
from workbench.workspace import Workspace

HEADER = ("client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale"
          "\tsegment\n")
RATE = 44_100
SECONDS = 0.6


def mp3(path, seconds=SECONDS, freq=220.0):
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), RATE, format="MP3")


def tsv(path, rows):
    lines = [HEADER] + [f"{client}\t{clip}\t{text}\t2\t0\t\t\t\tqu\t\n"
                        for client, clip, text in rows]
    path.write_text("".join(lines), encoding="utf-8")


TRAIN = [("aaa", "cv_1.mp3", "allin p'unchaw"), ("aaa", "cv_2.mp3", "\"imaynalla\" kashanki"),
         ("bbb", "cv_3.mp3", "sulpayki")]
DEV = [("ccc", "cv_4.mp3", "tupananchiskama"), ("ccc", "cv_missing.mp3", "mana kanchu")]
TEST = [("ddd", "cv_5.mp3", "yusulpayki")]
EXTRA = [("eee", "cv_6.mp3", "huk rimay")]  # validated, in none of the splits
REJECTED = [("fff", "cv_bad.mp3", "ama kayta")]


@pytest.fixture
def cv_release(tmp_path):
    """cv-corpus/qu/ with splits, validated/invalidated/other.tsv and mp3 clips."""
    lang = tmp_path / "cv-corpus-17.0" / "qu"
    (lang / "clips").mkdir(parents=True)
    for index, (_, clip, _) in enumerate(TRAIN + DEV[:1] + TEST + EXTRA + REJECTED):
        mp3(lang / "clips" / clip, freq=200.0 + 40 * index)
    tsv(lang / "train.tsv", TRAIN)
    with open(lang / "train.tsv", "a", encoding="utf-8") as out:
        out.write("ggg\tcv_7.mp3\ttoo\tmany\ttabs\there\t\t\t\tqu\t\n")  # line 5: malformed
    tsv(lang / "dev.tsv", DEV)
    tsv(lang / "test.tsv", TEST)
    tsv(lang / "validated.tsv", TRAIN + DEV + TEST + EXTRA)
    tsv(lang / "invalidated.tsv", REJECTED)
    tsv(lang / "other.tsv", REJECTED)
    return lang


def test_splits_speakers_and_mp3_clips(cv_release, tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_commonvoice(cv_release, ws, progress=False)
    by_split = {s: {u.id: u for u in read_manifest(ws.manifest_path(s))}
                for s in ("train", "dev", "test")}
    assert set(by_split["train"]) == {"cv_1", "cv_2", "cv_3"}
    assert set(by_split["dev"]) == {"cv_4"}
    assert set(by_split["test"]) == {"cv_5"}
    everything = {**by_split["train"], **by_split["dev"], **by_split["test"]}
    assert {u.id: u.speaker for u in everything.values()} == {
        "cv_1": "aaa", "cv_2": "aaa", "cv_3": "bbb", "cv_4": "ccc", "cv_5": "ddd"}
    assert everything["cv_2"].text == "\"imaynalla\" kashanki"  # quotes are not CSV quoting
    assert result.speaker_disjoint
    for utt in everything.values():
        audio, rate = sf.read(ws.audio_path(utt))
        assert rate == 16_000 and audio.ndim == 1
        assert utt.orig_sample_rate == RATE and utt.source.endswith(".mp3")
        assert abs(utt.duration - SECONDS) < 0.1  # mp3 adds a little encoder padding
    issues = {(i.check, i.item.rsplit("/", 1)[-1]) for i in result.issues}
    assert issues == {("malformed_row", "train.tsv:5"), ("row_without_audio", "dev.tsv:3"),
                      ("validated_not_in_splits", "validated.tsv")}
    left_out = next(i for i in result.issues if i.check == "validated_not_in_splits")
    assert left_out.detail.startswith("1 validated clips")
    assert "cv_bad" not in {u.id for u in result.utterances}  # invalidated/other never read


def test_validated_only_is_split_here_from_the_cli(cv_release, tmp_path):
    ws = tmp_path / "ws"
    # The release folder (one language inside) is detected and read.
    assert main(["prepare", str(cv_release.parent), "-w", str(ws), "-q",
                 "--no-source-splits"]) == 0
    workspace = Workspace.at(ws)
    utterances = [u for s in ("train", "dev", "test")
                  for u in read_manifest(workspace.manifest_path(s))]
    assert sorted(u.id for u in utterances) == ["cv_1", "cv_2", "cv_3", "cv_4", "cv_5", "cv_6"]
    assert {u.speaker for u in utterances} == {"aaa", "bbb", "ccc", "ddd", "eee"}


def test_without_split_files_validated_is_read(cv_release):
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (cv_release / name).unlink()
    read = read_commonvoice(cv_release)
    assert len(read.rows) == 7 and not any(row.split for row in read.rows)
    assert read.rows[0].item.endswith("validated.tsv:2")


def test_detection_and_option_passing(cv_release, tmp_path):
    assert detect_format(cv_release) == "commonvoice"
    assert detect_format(cv_release.parent) == "commonvoice"
    read = read_source(cv_release, use_splits=False, text_column="ignored")
    assert {row.split for row in read.rows} == {""}
    (cv_release.parent / "gn" / "clips").mkdir(parents=True)
    (cv_release.parent / "gn" / "validated.tsv").write_text(HEADER, encoding="utf-8")
    with pytest.raises(WorkbenchError, match="several languages"):
        read_commonvoice(cv_release.parent)


def test_missing_columns_name_the_file(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "validated.tsv").write_text("client_id\tfile\ttext\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"validated.tsv:1: no path or sentence column"):
        read_commonvoice(tmp_path)
