import csv
import json

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format, get_recipe
from data_recipes.table import prepare_audiofolder, prepare_csv, read_table
from workbench.errors import WorkbenchError
from workbench.manifest import read_manifest
from workbench.workspace import Workspace


def clip(path, seconds=1.0, rate=16_000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 200 * t)
    sf.write(path, np.stack([mono] * channels, 1) if channels > 1 else mono, rate)


def test_demo_subset_imports_and_splits_by_speaker(small_corpus, tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_audiofolder(small_corpus, ws, progress=False)
    assert len(result.utterances) == 48 and not result.issues
    splits = {s: read_manifest(ws.manifest_path(s)) for s in ("train", "dev", "test")}
    assert sum(len(v) for v in splits.values()) == 48
    train_speakers = {u.speaker for u in splits["train"]}
    assert train_speakers.isdisjoint({u.speaker for u in splits["test"]})
    first = splits["train"][0]
    audio, rate = sf.read(ws.audio_path(first))
    assert rate == 16_000 and audio.ndim == 1
    assert first.orig_sample_rate == 16_000 and first.source.endswith(".ogg")


def test_problems_are_reported_and_the_rest_imported(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    clip(src / "good.wav", rate=44_100, channels=2)
    clip(src / "unlisted.wav")
    (src / "broken.wav").write_text("not audio")
    (src / "metadata.csv").write_text(
        "file_name,transcription,speaker\n"
        "good.wav,allin p'unchaw,a\n"
        "missing.wav,mana kanchu,a\n"
        "broken.wav,p'akisqa,b\n"
        "extra.wav,too,many,fields\n", encoding="utf-8")
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_audiofolder(src, ws, progress=False)
    assert [u.id for u in result.utterances] == ["good"]
    assert result.utterances[0].orig_sample_rate == 44_100
    checks = {(i.check, i.item.rsplit("/", 1)[-1]) for i in result.issues}
    assert checks == {("row_without_audio", "metadata.csv:3"),
                      ("unreadable_audio", "metadata.csv:4"),
                      ("malformed_row", "metadata.csv:5"),
                      ("audio_without_row", "unlisted.wav")}
    saved = json.loads(ws.import_report_path.read_text())
    assert len(saved["issues"]) == 4
    assert "too few" in " ".join(result.warnings) or "not known" in " ".join(result.warnings)


def test_csv_with_bom_semicolons_and_chosen_columns(tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("x", "y", "z"):
        clip(tmp_path / "audio" / f"{name}.flac")
    table = tmp_path / "list.csv"
    table.write_text("\ufeffwav;words;who\naudio/x.flac;uno;p\naudio/y.flac;dos;q\n"
                     "audio/z.flac;tres;r\n", encoding="utf-8")
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_csv(table, ws, audio_column="wav", text_column="words",
                         speaker_column="who", progress=False)
    assert sorted(u.text for u in result.utterances) == ["dos", "tres", "uno"]
    assert {u.speaker for u in result.utterances} == {"p", "q", "r"}


def test_tsv_is_read_with_tabs(tmp_path):
    clip(tmp_path / "a.wav")
    table = tmp_path / "t.tsv"
    table.write_text("path\tsentence\na.wav\thola, qué tal\n", encoding="utf-8")
    rows, issues = read_table(table)
    assert rows[0].text == "hola, qué tal" and not issues


def test_unknown_column_names_the_columns_found(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("clip,label\na.wav,x\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="Columns found: clip, label"):
        read_table(table)


def test_colliding_basenames_get_unique_ids(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        clip(tmp_path / folder / "same.wav")
    with open(tmp_path / "metadata.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerows([["file_name", "transcription"], ["a/same.wav", "uno"],
                          ["b/same.wav", "dos"]])
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_audiofolder(tmp_path, ws, progress=False)
    ids = sorted(u.id for u in result.utterances)
    assert ids == ["a__same", "b__same"]
    assert len({u.audio for u in result.utterances}) == 2


def test_format_detection(small_corpus, tmp_path):
    assert detect_format(small_corpus) == "audiofolder"
    assert detect_format(small_corpus / "metadata.csv") == "csv"
    with pytest.raises(WorkbenchError, match="--format") as err:
        detect_format(tmp_path)  # the table is one folder down: said so
    assert "corpus/ holds metadata.csv" in str(err.value)
    assert "corpus/" in err.value.page and "--format" not in err.value.page
    with pytest.raises(WorkbenchError, match="Unknown format"):
        get_recipe("elan2")


def test_audiofolder_with_jsonl_metadata(tmp_path):
    clip(tmp_path / "a.wav")
    clip(tmp_path / "b.wav")
    (tmp_path / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "transcription": "allin", "speaker": "s1"}\n'
        "{broken json\n"
        '{"file_name": "b.wav", "transcription": "mana", "speaker": "s2"}\n', encoding="utf-8")
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_audiofolder(tmp_path, ws, progress=False)
    assert sorted(u.text for u in result.utterances) == ["allin", "mana"]
    assert [(i.check, i.item.rsplit("/", 1)[-1]) for i in result.issues] == [
        ("malformed_row", "metadata.jsonl:2")]


def test_windows_1252_table_is_read_with_a_note(tmp_path):
    clip(tmp_path / "a.wav")
    table = tmp_path / "t.csv"
    table.write_bytes("path,text\na.wav,señor café\n".encode("cp1252"))
    rows, issues = read_table(table)
    assert rows[0].text == "señor café"
    assert issues[0].check == "encoding_guessed" and "line 2" in issues[0].detail


def test_quoted_newlines_keep_line_numbers_right(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text('path,text\na.wav,"two\nlines"\nb.wav,x,extra\n', encoding="utf-8")
    rows, issues = read_table(table)
    assert rows[0].text == "two\nlines"
    assert issues[0].item.endswith("t.csv:4")
