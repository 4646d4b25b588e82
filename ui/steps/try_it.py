"""Step 7, Try it: what a run's model hears in a recording; long recordings cut into timed
utterances (ELAN and Praat files to download), and a transcript aligned to its recording."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ui.steps import chosen_run
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace


def transcribe_recording(ws: Workspace, run: str, audio_path: str | Path | None,
                         lm: str | None = None) -> str | tuple[str, str]:
    """Transcribe one recording (any format, rate and channels; long ones in windows).

    Returns:
        The greedy transcript; with ``lm`` (a language model of the workspace), the greedy
        transcript and the one decoded with the LM. The recording is then read twice, each
        pass streamed with bounded memory as ``transcribe`` does, rather than held whole to
        share one pass of the acoustic model.

    Raises:
        WorkbenchError: No recording, an unknown run or one without a model yet, audio
            that cannot be read, or an LM built for another vocabulary.
    """
    from workbench.evaluate import attach_lm
    from workbench.recognizer import load_recognizer

    if not audio_path:
        raise WorkbenchError("Record something with the microphone or upload a file first.")
    found = chosen_run(ws, run, with_model=True)
    recognizer = load_recognizer(found.model_dir)
    greedy = _transcribe(Path(audio_path), recognizer)
    if lm is None:
        return greedy
    return greedy, _transcribe(Path(audio_path), attach_lm(recognizer, ws, lm)[0])


def _transcribe(path: Path, recognizer) -> str:
    from workbench.transcribe import transcribe_files

    result = transcribe_files([path], recognizer, progress=False)[0]
    if result.error:
        raise WorkbenchError(f"The recording could not be read: {result.error}")
    return result.text


# --------------------------------------------------------------------------- long recordings

SEGMENT_COLUMNS = ["#", "start (s)", "end (s)", "confidence", "text"]
ALIGN_COLUMNS = ["#", "line", "start (s)", "end (s)", "confidence", "outcome", "text"]
CHECK_BELOW = 0.7  # utterances the page suggests checking first
DOWNLOAD_FORMATS = ("eaf", "textgrid")


@dataclass
class TimedResult:
    """What the page shows of a long recording transcribed or aligned.

    Attributes:
        table: One row per utterance (for alignment, per transcript line, found or not).
        summary: Markdown: counts, what to check, the notes (lines not found, speech
            without a line).
        files: The ELAN and Praat files to download.
        spans: ``(start, end)`` seconds of each table row (None for a line not found),
            to play the row's audio.
        clips: For alignment, the ``<recording>_clips`` audiofolder of the aligned lines
            (what "Add to the workspace's data" imports).
    """

    table: pd.DataFrame
    summary: str
    files: list[Path]
    spans: list[tuple[float, float] | None]
    clips: Path | None = None


CUT_CHOICES = {  # the page's words -> workbench.segments' segmenters
    "Loudness (best in steady noise)": "energy",
    "Voice detector (music and other loud sounds)": "silero",
    "The model's own pauses (clean recordings)": "ctc",
}


def transcribe_timed(ws: Workspace, run: str, audio_path: str | Path | None, out: Path,
                     lm: str | None = None, into: str | Path | None = None,
                     segmenter: str | None = None) -> TimedResult:
    """Cut a recording of any length into utterances at its pauses, transcribe them (with
    ``lm`` if given) and write the ELAN and Praat files into ``out``; with ``into`` (the
    user's .eaf or TextGrid of this recording), also a copy of it with the tiers added.

    Raises:
        WorkbenchError: No recording, an unknown run, unreadable audio, an unusable LM, or
            an annotation file that cannot be used (checked before the transcription).
    """
    from workbench.evaluate import attach_lm
    from workbench.recognizer import load_recognizer
    from workbench.segments import DEFAULT_SEGMENTER, segment_file
    from workbench.writers_into import check_into, write_into

    audio = _required(audio_path, "Upload a recording first.")
    if into:
        check_into(Path(into))
    found = chosen_run(ws, run, with_model=True)
    recognizer = load_recognizer(found.model_dir)
    if lm:
        recognizer = attach_lm(recognizer, ws, lm)[0]
    how = CUT_CHOICES.get(segmenter or "", segmenter) or DEFAULT_SEGMENTER
    timed = segment_file(recognizer, _named_copy(audio, out), model_name=found.root.name,
                         segmenter=how)
    rows = [[i, s.start, s.end, s.confidence, s.text] for i, s in enumerate(timed.segments, 1)]
    low = sum(1 for s in timed.segments if s.confidence < CHECK_BELOW)
    summary = (f"**{len(rows)} utterances** in {timed.duration / 60:.1f} minutes"
               + (f"; {low} with a confidence under {CHECK_BELOW} (worth checking first)"
                  if low else "") + ". Click a row to hear it.")
    files = _write_files(timed, out)
    if into:
        files.insert(0, write_into(timed, Path(into), out, force=True))
        summary += f" Your {Path(into).name} with the run's tiers added is the first download."
    return TimedResult(pd.DataFrame(rows, columns=SEGMENT_COLUMNS), summary, files,
                       [(s.start, s.end) for s in timed.segments])


def align_transcript(ws: Workspace, run: str, audio_path: str | Path | None,
                     transcript_path: str | Path | None, out: Path,
                     tier: str | None = None) -> TimedResult:
    """Time a transcript (plain text, one utterance a line, or an ELAN tier without usable
    times) against a recording; write the ELAN and Praat files and the aligned lines as
    training clips (an audiofolder) into ``out``.

    Raises:
        WorkbenchError: A missing recording or transcript, an unclear tier, unreadable audio.
    """
    from workbench.align import align_file, read_transcript
    from workbench.audiofolder import write_audiofolder
    from workbench.recognizer import load_recognizer
    from workbench.text import load_profile
    from workbench.writers_into import write_into

    audio = _required(audio_path, "Upload the recording first.")
    lines = read_transcript(_required(transcript_path, "Upload its transcript: a text file, "
                                      "one utterance a line, or an ELAN file."), tier or None)
    found = chosen_run(ws, run, with_model=True)
    profile = load_profile(ws.profile_path if ws.profile_path.is_file() else None)
    timed, aligned = align_file(load_recognizer(found.model_dir), _named_copy(audio, out),
                                lines, profile, model_name=found.root.name)
    rows, spans = [], []
    for i, a in enumerate(aligned, 1):
        seg = a.segment
        rows.append([i, a.where, seg.start if seg else None, seg.end if seg else None,
                     a.confidence, "not found in the recording" if a.flag else "aligned",
                     a.text])
        spans.append((seg.start, seg.end) if seg else None)
    clips = write_audiofolder(timed, out)
    files = _write_files(timed, out)
    if Path(transcript_path).suffix.lower() == ".eaf":  # its own tiers, the aligned added
        files.insert(0, write_into(timed, Path(transcript_path), out, force=True))
    done = sum(1 for a in aligned if not a.flag)
    summary = "\n".join([f"**{done} of {len(aligned)} lines aligned.** Click a row to hear "
                         "it.", *[f"- {note}" for note in timed.notes]])
    return TimedResult(pd.DataFrame(rows, columns=ALIGN_COLUMNS), summary, files, spans,
                       clips)


def play_span(audio_path: str | Path, span: tuple[float, float] | None
              ) -> tuple[int, np.ndarray]:
    """The audio of one table row, as (16000, samples) for the page's player.

    Raises:
        WorkbenchError: The row has no times (a line not found in the recording).
    """
    from workbench.audio import SAMPLE_RATE, open_audio

    if span is None:
        raise WorkbenchError("This line was not found in the recording: it has no audio.")
    first, last = int(span[0] * SAMPLE_RATE), int(round(span[1] * SAMPLE_RATE))
    kept, at = [], 0
    with open_audio(Path(audio_path)) as stream:
        for block in stream:
            if at + len(block) > first:
                kept.append(block[max(first - at, 0):last - at])
            at += len(block)
            if at >= last:
                break
    return SAMPLE_RATE, np.concatenate(kept) if kept else np.zeros(0, np.float32)


def _required(path: str | Path | None, message: str) -> Path:
    if not path:
        raise WorkbenchError(message)
    return Path(path)


def _named_copy(audio: Path, out: Path) -> Path:
    """The recording, linked (or copied) into ``out`` under its own name: Gradio's upload
    name is the one the ELAN file should link to."""
    import shutil

    target = out / audio.name
    if not target.exists():
        try:
            target.hardlink_to(audio)
        except OSError:
            shutil.copyfile(audio, target)
    return target


def _write_files(timed, out: Path) -> list[Path]:
    from workbench.writers import write_transcript

    return [write_transcript(timed, fmt, out, force=True) for fmt in DOWNLOAD_FORMATS]


def add_aligned_clips(ws: Workspace, folder: str | Path | None) -> str:
    """Add the aligned lines (the audiofolder :func:`align_transcript` wrote) to the
    workspace's training data; dev and test stay as they are. The clips are kept under
    the workspace's ``sources/``.

    Raises:
        WorkbenchError: Nothing aligned yet, no prepared data, or nothing could be added.
    """
    import shutil

    from data_recipes.adding import add_source, keep_in_workspace
    from data_recipes.table import read_audiofolder

    if not folder or not Path(folder).is_dir():
        raise WorkbenchError("Align a transcript first: its aligned lines are what is added.")
    ws.require_prepared()
    kept = keep_in_workspace(Path(folder), ws)
    sources = [*ws.read_settings().get("sources", []),
               {"path": str(kept), "format": "audiofolder", "added_to": "train"}]
    try:
        result = add_source(read_audiofolder(kept), ws, progress=False,
                            settings={"sources": sources})
    except BaseException:
        shutil.rmtree(kept, ignore_errors=True)
        raise
    return " ".join(result.warnings) + " Run the check (step 2) again before training."
