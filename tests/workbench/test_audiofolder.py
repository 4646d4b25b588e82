"""Timed utterances cut into an audiofolder that `workbench prepare` imports."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench import fsio
from workbench.audio import SAMPLE_RATE
from workbench.audiofolder import write_audiofolder
from workbench.errors import WorkbenchError
from workbench.segments import Segment
from workbench.writers import TimedTranscript

REPO = Path(__file__).resolve().parents[2]
# (start s, end s, text, frequency Hz): each utterance a tone, so a clip shows where it was cut
SAID = [(0.5, 1.7, "kami tomu", 300.0), (2.4, 3.9, "ñuqa wasiy", 500.0),
        (4.6, 6.0, "अब घर", 700.0)]


def recording(path: Path, seconds: float = 6.5) -> Path:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = np.zeros_like(t, dtype=np.float32)
    for start, end, _, hz in SAID:
        inside = (t >= start) & (t < end)
        samples[inside] = 0.5 * np.sin(2 * np.pi * hz * t[inside])
    sf.write(path, samples, SAMPLE_RATE, subtype="FLOAT")  # float: the samples exactly
    return path


def transcript(audio: Path) -> TimedTranscript:
    segments = [Segment(start, end, text, 0.9) for start, end, text, _ in SAID[:2]]
    return TimedTranscript(audio, 6.5, segments, "run-1")


def flagged() -> list[tuple[Segment, str]]:
    start, end, text, _ = SAID[2]
    return [(Segment(start, end, text, 0.4), "not_in_audio")]


def rows(folder: Path) -> list[dict]:
    with open(folder / "metadata.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_clips_hold_the_recording_between_their_times(tmp_path):
    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio), tmp_path / "out", flagged=flagged())
    assert folder == tmp_path / "out" / "talk_clips"
    table = rows(folder)
    assert [r["transcription"] for r in table] == ["kami tomu", "ñuqa wasiy"]  # no flagged
    whole, _ = sf.read(audio, dtype="float32")
    for row, (start, end, _, _) in zip(table, SAID, strict=False):
        clip, rate = sf.read(folder / row["file_name"], dtype="float32")
        start, end = start - 0.1, end + 0.1  # the margin (the gaps are 0.7 s)
        expected = whole[int(start * SAMPLE_RATE):int(round(end * SAMPLE_RATE))]
        assert rate == SAMPLE_RATE and len(clip) == len(expected)
        assert np.abs(clip - expected).max() < 1e-4  # 16-bit PCM of the same samples
        assert row["speaker"] == "talk" and float(row["start"]) == pytest.approx(start)


def test_flagged_utterances_only_when_asked_and_marked(tmp_path):
    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio), flagged=flagged(), keep_flagged=True)
    assert folder.parent == tmp_path
    table = rows(folder)
    assert [(r["transcription"], r["flag"]) for r in table] == [
        ("kami tomu", ""), ("ñuqa wasiy", ""), ("अब घर", "not_in_audio")]


def test_an_existing_folder_is_replaced_only_with_force(tmp_path):
    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio))
    before = (folder / "metadata.csv").read_bytes()
    with pytest.raises(WorkbenchError, match="--force"):
        write_audiofolder(transcript(audio), keep_flagged=True, flagged=flagged())
    assert (folder / "metadata.csv").read_bytes() == before
    write_audiofolder(transcript(audio), keep_flagged=True, flagged=flagged(), force=True)
    assert len(rows(folder)) == 3


def test_a_full_disk_while_cutting_leaves_the_old_folder(tmp_path, monkeypatch):
    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio))
    before = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setenv(fsio.FAULTS_ENV, "audiofolder.staged=enospc")
    fsio.reset_faults()
    with pytest.raises(fsio.DiskFullError):
        write_audiofolder(transcript(audio), keep_flagged=True, flagged=flagged(), force=True)
    assert {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.wav", "talk_clips"]


@pytest.mark.parametrize("fault", ["audiofolder.staged", "audiofolder.swapped"])
def test_a_kill_while_replacing_leaves_one_whole_folder(tmp_path, fault):
    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio))
    script = (
        "import sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.workbench.test_audiofolder import transcript, flagged\n"
        "from workbench.audiofolder import write_audiofolder\n"
        f"write_audiofolder(transcript(Path({str(audio)!r})), flagged=flagged(), "
        "keep_flagged=True, force=True)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          env={**os.environ, fsio.FAULTS_ENV: f"{fault}=kill"}, timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    fsio.recover_dir(folder)  # what the next reader does
    table = rows(folder)
    assert len(table) == (3 if fault.endswith("swapped") else 2)  # the new one or the old
    assert all((folder / r["file_name"]).is_file() for r in table)


def test_workbench_prepare_imports_the_folder(tmp_path):
    from data_recipes import prepare_sources
    from workbench.workspace import Workspace

    audio = recording(tmp_path / "talk.wav")
    folder = write_audiofolder(transcript(audio), keep_flagged=True, flagged=flagged())
    ws = Workspace.at(tmp_path / "ws")
    result = prepare_sources([folder], ws, progress=False)
    texts = sorted(u.text for u in result.utterances)
    assert texts == sorted(["kami tomu", "ñuqa wasiy", "अब घर"])
    assert {u.speaker for u in result.utterances} == {"talk"}
    # 0.1 s of margin on each side of the two aligned ones; the flagged one as it was
    assert sum(u.duration for u in result.utterances) == pytest.approx(
        1.4 + 1.7 + 1.4, abs=0.01)
