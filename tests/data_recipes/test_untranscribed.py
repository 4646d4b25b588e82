"""Untranscribed recordings: cut at pauses into 2-15 s pieces, decoded once to 16 kHz mono,
audited (silent, clipped, duplicates, transcribed audio), stored atomically, added to."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from data_recipes.untranscribed import (
    MAX_PIECE_S,
    MIN_PIECE_S,
    import_untranscribed,
    manifest_path,
    read_untranscribed,
)
from tests.conftest import prepared_workspace
from workbench import fsio
from workbench.cli import main
from workbench.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
PAUSE_S = 0.8


def demo_clips(demo_corpus: Path, first: int, count: int) -> list[np.ndarray]:
    with open(demo_corpus / "metadata.csv", encoding="utf-8") as table:
        rows = list(csv.DictReader(table))[first:first + count]
    return [sf.read(demo_corpus / r["file_name"], dtype="float32")[0] for r in rows]


def recording(clips: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """Clips joined by 0.8 s pauses of faint noise, as a long field recording."""
    rng = np.random.default_rng(seed)
    parts = []
    for clip in clips:
        parts += [clip, (rng.standard_normal(int(PAUSE_S * 16000)) * 1e-3).astype(np.float32)]
    return np.concatenate(parts)


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.at(tmp_path / "ws")


@pytest.fixture(scope="module")
def long_wav(demo_corpus, tmp_path_factory) -> Path:
    """About a minute of speech from 20 demo clips, 16 kHz mono WAV."""
    path = tmp_path_factory.mktemp("untranscribed") / "field recording.wav"
    sf.write(path, recording(demo_clips(demo_corpus, 0, 20)), 16000)
    return path


def test_a_long_recording_is_cut_into_2_to_15_s_pieces_of_16k_mono(ws, long_wav, demo_corpus,
                                                                     tmp_path):
    # The same recording as 44.1 kHz stereo FLAC: decoded once, to the same pieces.
    samples = sf.read(long_wav, dtype="float32")[0]
    stereo = soxr.resample(samples, 16000, 44100)
    flac = tmp_path / "field.flac"
    sf.write(flac, np.stack([stereo, stereo * 0.5], axis=1), 44100)
    result = import_untranscribed([flac], ws)
    pieces = read_untranscribed(ws)
    assert result.kept == pieces and len(pieces) >= 4
    assert all(MIN_PIECE_S * 0.5 <= p.duration <= MAX_PIECE_S + 0.01 for p in pieces)
    assert sum(p.duration >= MIN_PIECE_S for p in pieces) >= len(pieces) - 1
    speech = len(samples) / 16000 - 20 * PAUSE_S
    assert 0.85 * speech <= sum(p.duration for p in pieces) <= len(samples) / 16000
    for piece in pieces:
        data, rate = sf.read(ws.root / piece.audio, dtype="float32")
        assert rate == 16000 and data.ndim == 1 and len(data) / 16000 == pytest.approx(
            piece.duration, abs=1e-3)
        assert piece.orig_sample_rate == 44100 and piece.orig_channels == 2
        assert str(flac) in piece.source and piece.text == ""
    assert not result.set_aside
    assert result.summary()["untranscribed_seconds"] == pytest.approx(
        sum(p.duration for p in pieces), abs=0.01)


def test_silent_clipped_duplicate_and_unreadable_are_set_aside_with_their_reason(
        ws, long_wav, demo_corpus, tmp_path):
    speech = recording(demo_clips(demo_corpus, 20, 6), seed=1)
    sf.write(tmp_path / "quiet.wav", speech * 3e-4, 16000)  # speech far below the silence limit
    sf.write(tmp_path / "loud.wav", np.clip(speech * 40, -1, 1), 16000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    first = import_untranscribed([long_wav], ws)
    again = import_untranscribed([long_wav, tmp_path / "quiet.wav", tmp_path / "loud.wav",
                                  tmp_path / "broken.wav"], ws)
    checks = {item["check"] for item in again.set_aside}
    assert checks == {"duplicate", "silent", "clipped", "unreadable"}
    assert not again.kept  # nothing new was worth keeping
    assert read_untranscribed(ws) == first.kept  # what was there stays, unchanged
    [broken] = [i for i in again.set_aside if i["check"] == "unreadable"]
    assert "broken.wav" in broken["item"] and broken["detail"]
    duplicates = [i for i in again.set_aside if i["check"] == "duplicate"]
    assert len(duplicates) == len(first.kept) and all("field recording.wav" in i["item"]
                                                      for i in duplicates)
    assert {p.name for p in (ws.root / "untranscribed" / "clips").iterdir()} == {
        Path(p.audio).name for p in first.kept}  # set-aside pieces leave no clip behind


def test_a_recording_that_is_a_transcribed_clip_is_never_taken(demo_corpus, tmp_path):
    ws = prepared_workspace(demo_corpus, tmp_path, 40)
    test_clip = ws.read_split("test")[0]
    source = tmp_path / "again.wav"
    long = np.concatenate([sf.read(ws.audio_path(test_clip), dtype="float32")[0]] * 1)
    sf.write(source, long, 16000)
    result = import_untranscribed([source], ws)
    assert not result.kept
    [aside] = result.set_aside
    assert aside["check"] == "duplicate" and test_clip.id in aside["detail"] \
        and "(test)" in aside["detail"]
    assert result.summary()["transcribed_seconds"] > 0


@pytest.mark.parametrize("fault", ["untranscribed.clip@3", "untranscribed.manifest"])
def test_a_kill_while_importing_leaves_the_previous_pieces_usable(ws, long_wav, demo_corpus,
                                                                   tmp_path, fault):
    first = import_untranscribed([long_wav], ws)
    before = manifest_path(ws).read_bytes()
    other = tmp_path / "other.wav"
    sf.write(other, recording(demo_clips(demo_corpus, 30, 8), seed=2), 16000)
    script = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
              "from pathlib import Path\n"
              "from data_recipes.untranscribed import import_untranscribed\n"
              "from workbench.workspace import Workspace\n"
              f"import_untranscribed([Path({str(other)!r})], "
              f"Workspace.at(Path({str(ws.root)!r})))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          env={**os.environ, fsio.FAULTS_ENV: f"{fault}=kill"}, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert manifest_path(ws).read_bytes() == before
    assert all((ws.root / p.audio).is_file() for p in first.kept)
    # The next import cleans up what the killed one left and adds the recording whole.
    result = import_untranscribed([other], ws)
    assert result.kept and not result.set_aside
    names = {p.name for p in (ws.root / "untranscribed").rglob("*") if p.is_file()}
    assert names == {Path(p.audio).name for p in read_untranscribed(ws)} | {
        "manifest.jsonl", ".lock"}


def test_prepare_untranscribed_on_the_command_line(ws, long_wav, tmp_path, capsys):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "notes.txt").write_text("not audio")
    os.link(long_wav, folder / "a.wav")
    code = main(["prepare", "--untranscribed", str(folder), "-w", str(ws.root), "--json", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["files"] == 1 and summary["pieces"] == len(read_untranscribed(ws))
    assert summary["untranscribed_seconds"] > 40 and summary["transcribed_seconds"] == 0
    code = main(["prepare", "--untranscribed", str(tmp_path / "missing"), "-w", str(ws.root)])
    assert code != 0 and "missing: no such file or folder" in capsys.readouterr().err


def test_the_transcribed_stretches_of_a_recording_are_never_taken(demo_corpus, tmp_path):
    """A recording transcribed in part (a TextGrid over three of its twelve utterances),
    given again as untranscribed audio: only the stretches between them become pieces."""
    from data_recipes.textgrid import prepare_textgrid
    from data_recipes.untranscribed import TRANSCRIBED_MARGIN_S
    from tests.data_recipes.test_textgrid import long_format

    clips = demo_clips(demo_corpus, 40, 12)
    starts = np.cumsum([0.0] + [len(c) / 16000 + PAUSE_S for c in clips[:-1]])
    spans = [(round(starts[i], 3), round(starts[i] + len(clips[i]) / 16000, 3))
             for i in (1, 5, 9)]
    samples = recording(clips, seed=2)
    source = tmp_path / "src"
    source.mkdir()
    sf.write(source / "story.wav", samples, 16000)
    length = len(samples) / 16000
    entries = [(start, end, f"rimay {i}") for i, (start, end) in enumerate(spans)]
    gaps = [(a, b, "") for a, b in zip([0.0, *[e for _, e in spans]],
                                       [*[s for s, _ in spans], length], strict=True)]
    grid = long_format([("IntervalTier", "words", sorted(entries + gaps))], xmax=length)
    (source / "story.TextGrid").write_text(grid, encoding="utf-8")
    ws = Workspace.at(tmp_path / "ws")
    prepare_textgrid(source / "story.TextGrid", ws, progress=False)
    assert sum(len(us) for us in ws.read_all().values()) == 3

    again = tmp_path / "archive" / "tape 7.wav"  # the same file, elsewhere, renamed
    again.parent.mkdir()
    again.write_bytes((source / "story.wav").read_bytes())
    result = import_untranscribed([again], ws)
    left_out = [item for item in result.set_aside if item["check"] == "transcribed"]
    assert len(left_out) == 3
    assert all("already transcribed as story__words__" in item["detail"] for item in left_out)
    pieces = read_untranscribed(ws)
    assert len(pieces) >= 4  # the other nine utterances are there, between the stretches
    for piece in pieces:
        start, end = map(float, piece.source.rsplit(" ", 2)[1].split("-"))
        for low, high in spans:  # (times in the source are rounded to 0.01 s)
            assert end <= low - TRANSCRIBED_MARGIN_S + 0.006 or \
                start >= high + TRANSCRIBED_MARGIN_S - 0.006, (piece.source, low, high)
    # Another recording is cut whole: only the same file's stretches are left out.
    other = tmp_path / "other.wav"
    sf.write(other, recording(demo_clips(demo_corpus, 60, 4), seed=3), 16000)
    assert not [i for i in import_untranscribed([other], ws).set_aside
                if i["check"] == "transcribed"]
