"""Kaldi data directory recipe: segments, utt2spk, and wav.scp commands never run."""

import numpy as np
import pytest
import soundfile as sf

from data_recipes import detect_format
from data_recipes.kaldi import prepare_kaldi, read_kaldi
from workbench.errors import WorkbenchError
from workbench.manifest import read_manifest
from workbench.workspace import Workspace


def recording(path, seconds, rate=16_000):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 180 * t), rate)


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def all_utterances(ws):
    return {u.id: u for s in ("train", "dev", "test") for u in read_manifest(ws.manifest_path(s))}


@pytest.fixture
def recipe(tmp_path):
    """egs/s5 with wav/ and data/train/, Kaldi-style paths relative to s5."""
    s5 = tmp_path / "s5"
    (s5 / "wav").mkdir(parents=True)
    (s5 / "data" / "train").mkdir(parents=True)
    recording(s5 / "wav" / "rec1.wav", 3.0, rate=8_000)
    recording(s5 / "wav" / "rec2.flac", 2.0)
    recording(s5 / "wav" / "rec4.wav", 1.0)
    return s5


def marker_command(marker, s5):
    return f"sh -c 'touch {marker}' && sox {s5}/wav/rec1.wav -t wav - |"


def test_segments_are_cut_with_their_speakers(recipe, tmp_path):
    data = recipe / "data" / "train"
    marker = tmp_path / "command_was_run"
    write(data / "wav.scp", ["rec1 wav/rec1.wav", f"rec2 {recipe}/wav/rec2.flac",
                             f"rec3 {marker_command(marker, recipe)}", "rec4 wav/rec4.wav"])
    write(data / "segments", ["u1 rec1 0.00 1.00", "u2 rec1 1.00 2.50", "u3 rec2 0.50 -1",
                              "u4 rec3 0 1", "u6 rec2 0 1", "u7 rec1 2.0 1.0",
                              "u8 recX 0 1"])
    write(data / "text", ["u1 allin p'unchaw", "u2 imaynalla kashanki", "u3 sulpayki",
                          "u4 never cut", "u5 no segment", "u7 backwards", "u8 nowhere"])
    write(data / "utt2spk", ["u1 maria", "u2 maria", "u3 jose", "u4 jose"])
    assert detect_format(data) == "kaldi"

    ws = Workspace.at(tmp_path / "ws")
    result = prepare_kaldi(data, ws, progress=False)

    assert not marker.exists()  # the wav.scp command was never run
    utts = all_utterances(ws)
    assert sorted(utts) == ["u1", "u2", "u3"]  # Kaldi ids kept
    assert {k: u.speaker for k, u in utts.items()} == {"u1": "maria", "u2": "maria",
                                                       "u3": "jose"}
    durations = {k: u.duration for k, u in utts.items()}
    assert durations == pytest.approx({"u1": 1.0, "u2": 1.5, "u3": 1.5}, abs=1e-3)
    assert utts["u1"].orig_sample_rate == 8_000 and utts["u1"].text == "allin p'unchaw"
    assert utts["u2"].extra == {"start": 1.0, "end": 2.5}
    audio, rate = sf.read(ws.audio_path(utts["u2"]))
    assert rate == 16_000 and len(audio) == 24_000

    issues = {(i.check, i.item.rsplit("/", 1)[-1]) for i in result.issues}
    assert issues == {
        ("unsupported_wav_scp_command", "wav.scp:3"),  # the command itself
        ("unsupported_wav_scp_command", "segments:4"),  # the utterance it would have held
        ("text_without_audio", "text:5"),  # u5: no segment
        ("audio_without_text", "segments:5"),  # u6: no transcript
        ("malformed_segment", "segments:6"),  # u7: end before start
        ("text_without_audio", "text:6"),  # u7, its segment was refused
        ("segment_without_recording", "segments:7"),  # u8 names no wav.scp recording
        ("audio_without_text", "wav.scp:4"),  # rec4: no segment uses it
    }
    command = next(i for i in result.issues if i.item.endswith("wav.scp:3"))
    assert "never run" in command.detail and "audio file" in command.detail


def test_without_segments_each_recording_is_an_utterance(recipe, tmp_path):
    data = recipe / "data" / "train"
    marker = tmp_path / "command_was_run"
    write(data / "wav.scp", ["rec1 wav/rec1.wav", "rec2 wav/rec2.flac",
                             f"rec3 {marker_command(marker, recipe)}",
                             "rec5 feats.ark:1234", "rec6 wav/rec6.wav"])
    write(data / "text", ["rec1 uno", "rec2 dos", "rec3 tres", "rec5 cinco", "rec6 seis",
                          "rec7 siete", "rec2 again"])
    read = read_kaldi(data)
    assert not marker.exists()
    assert [(r.utterance_id, r.text, r.start) for r in read.rows] == [
        ("rec1", "uno", None), ("rec2", "dos", None), ("rec6", "seis", None)]
    assert read.rows[0].audio == recipe / "wav" / "rec1.wav"  # found relative to s5/
    checks = {(i.check, i.item.rsplit("/", 1)[-1]) for i in read.issues}
    assert checks == {("unsupported_wav_scp_command", "wav.scp:3"),
                      ("unsupported_wav_scp_command", "wav.scp:4"),
                      ("text_without_audio", "text:6"),
                      ("duplicate_id", "text:7")}

    ws = Workspace.at(tmp_path / "ws")
    result = prepare_kaldi(data, ws, progress=False)
    assert sorted(u.id for u in result.utterances) == ["rec1", "rec2"]
    assert {i.check for i in result.issues} >= {"row_without_audio"}  # rec6.wav is missing
    assert result.utterances[0].speaker == ""  # no utt2spk


def test_not_a_kaldi_dir(tmp_path):
    (tmp_path / "text").write_text("u1 hola\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="wav.scp missing"):
        read_kaldi(tmp_path)
