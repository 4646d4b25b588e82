"""Timed utterances written as an audiofolder: training data ``workbench prepare`` imports.

``<recording stem>_clips/`` holds ``metadata.csv`` (``file_name, transcription, speaker,
start, end, confidence, flag``) and ``clips/<stem>_NNNN.wav`` (16 kHz mono PCM), each
utterance with 0.1 s of margin where the gap to its neighbours allows: the
layout :func:`data_recipes.table.read_audiofolder` reads. The speaker column is the
recording's name: the clips of one recording then stay in one split, so a voice is never
both trained and tested on (edit the column where a recording has several speakers).

Utterances flagged by the aligner (a line it could not find) are left out unless asked
(``keep_flagged``); kept, they carry their flag in the table. The folder is built under a
temporary name and renamed into place, so a kill leaves no half-written folder under the
final name, and an existing folder is only replaced with ``force`` (atomically, through
:func:`workbench.fsio.staged_dir`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SAMPLE_RATE, open_audio, write_clip
from workbench.errors import WorkbenchError
from workbench.fsio import staged_dir, write_text_atomic
from workbench.segments import with_margins

SUFFIX = "_clips"
COLUMNS = ("file_name", "transcription", "speaker", "start", "end", "confidence", "flag")


@dataclass(frozen=True)
class Clip:
    """One utterance to cut: its span in seconds and its row in the table."""

    start: float
    end: float
    text: str
    confidence: float
    flag: str = ""


def audiofolder_path(audio: Path, out_dir: Path | None) -> Path:
    """``<out_dir or the recording's folder>/<recording stem>_clips``."""
    return (Path(out_dir) if out_dir else Path(audio).parent) / f"{Path(audio).stem}{SUFFIX}"


def write_audiofolder(transcript: Any, out_dir: Path | None = None, *, force: bool = False,
                      flagged: list[Any] = (), keep_flagged: bool = False) -> Path:
    """Cut ``transcript``'s utterances (a :class:`~workbench.writers.TimedTranscript`) out
    of its recording into an audiofolder; ``flagged`` (segments with a ``flag``) only with
    ``keep_flagged``.

    Raises:
        WorkbenchError: The folder exists and ``force`` is False, or the recording cannot
            be read.
    """
    target = audiofolder_path(transcript.audio, out_dir)
    if target.exists() and not force:
        raise WorkbenchError(f"{target} exists; choose another output folder (-o) or replace "
                             "it with --force.")
    padded = with_margins(sorted(transcript.segments, key=lambda s: s.start),
                          transcript.duration)
    clips = [Clip(s.start, s.end, s.text, s.confidence) for s in padded]
    if keep_flagged:
        clips += [Clip(s.start, s.end, s.text, s.confidence, flag) for s, flag in flagged]
    clips.sort(key=lambda c: (c.start, c.end))
    with staged_dir(target, what="the clips", fault="audiofolder") as staging:
        names = cut_clips(Path(transcript.audio), clips, staging / "clips")
        write_text_atomic(staging / "metadata.csv",
                          _table(clips, names, Path(transcript.audio).stem))
    return target


def cut_clips(audio: Path, clips: list[Clip], folder: Path) -> list[str]:
    """Write each clip (sorted by start) as a WAV file, reading the recording once as a
    stream and holding no more of it than the clips waiting to be cut; their names."""
    stem = Path(audio).stem
    names = [f"{stem}_{i:04d}.wav" for i in range(1, len(clips) + 1)]
    spans = [(int(c.start * SAMPLE_RATE), int(round(c.end * SAMPLE_RATE))) for c in clips]
    pending = list(range(len(clips)))
    buffer, offset = np.zeros(0, np.float32), 0  # offset: the buffer's first sample
    with open_audio(audio) as stream:
        for block in stream:
            buffer = np.concatenate([buffer, block])
            while pending and spans[pending[0]][1] <= offset + len(buffer):
                i = pending.pop(0)
                write_clip(folder / names[i], buffer[spans[i][0] - offset:spans[i][1] - offset])
            keep = min((spans[i][0] for i in pending), default=offset + len(buffer))
            drop = min(max(keep - offset, 0), len(buffer))  # never past what was read
            buffer, offset = buffer[drop:], offset + drop
    for i in pending:  # a clip reaching past the end of the recording: what there is
        write_clip(folder / names[i], buffer[max(spans[i][0] - offset, 0):])
    return names


def _table(clips: list[Clip], names: list[str], speaker: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for clip, name in zip(clips, names, strict=True):
        writer.writerow([f"clips/{name}", clip.text, speaker, f"{clip.start:.3f}",
                         f"{clip.end:.3f}", f"{clip.confidence:.3f}", clip.flag])
    return out.getvalue()
