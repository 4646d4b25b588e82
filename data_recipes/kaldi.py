"""Kaldi data directories (the ``data/train`` folders of Kaldi, ESPnet and k2 recipes).

Layout read::

    data/train/
      wav.scp      <recording-id> <audio path>         rec1 /corpus/wav/rec1.wav
      text         <utterance-id> <transcript>          rec1-0001 allin p'unchaw
      segments     <utt-id> <rec-id> <start> <end>      rec1-0001 rec1 0.50 2.75   (optional)
      utt2spk      <utterance-id> <speaker-id>          rec1-0001 maria            (optional)

Without ``segments`` each recording is one utterance and its id is the recording id; with
it, each line is an utterance cut from its recording (``end`` -1: to the end of the file).
Kaldi utterance ids are kept as the workbench's utterance ids.

``wav.scp`` entries that are commands (``sox a.wav -t wav - |``) are never run: running
commands from a data file is a security risk. Each is reported as
``unsupported_wav_scp_command``; convert such recordings to audio files first. Archive
offsets (``feats.ark:123``) are reported the same way. Relative audio paths are looked for
under the data directory, then its parent and grandparent (Kaldi paths are usually relative
to the recipe folder ``egs/<corpus>/s5``).

Utterances in ``text`` without audio (no ``wav.scp`` entry or segment) and audio without a
transcript are reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from data_recipes.common import (
    ImportIssue,
    ImportResult,
    SourceRead,
    SourceRow,
    import_sources,
    read_utf8_lines,
)
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

REQUIRED_FILES = ("wav.scp", "text")
_ARK_OFFSET = re.compile(r"\.ark:\d+$")


@dataclass(frozen=True)
class _Line:
    """One non-empty line of a Kaldi table: its key, the rest, and where it was."""

    key: str
    value: str
    item: str
    line: int


@dataclass(frozen=True)
class _Segment:
    recording: str
    start: float
    end: float | None
    item: str


def is_kaldi_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a Kaldi data directory (``wav.scp`` and ``text``)."""
    return all((Path(folder) / name).is_file() for name in REQUIRED_FILES)


def read_kaldi(source: Path) -> SourceRead:
    """Read a Kaldi data directory (see the module docstring).

    Args:
        source: The folder holding ``wav.scp`` and ``text``.

    Returns:
        One row per utterance (a segment when ``segments`` exists), ``utt2spk``'s speaker,
        and the issues: commands in ``wav.scp``, utterances without audio or transcript,
        malformed lines (``file:line``).

    Raises:
        WorkbenchError: ``source`` has no ``wav.scp`` or ``text``, or a file is not UTF-8.
    """
    folder = Path(source)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise WorkbenchError(
            f"{folder}: not a Kaldi data directory: {' and '.join(missing)} missing. It "
            "needs wav.scp and text (segments and utt2spk are optional)."
        )
    issues: list[ImportIssue] = []
    recordings = _read_wav_scp(folder, issues)
    texts = _read_table(folder / "text", issues, min_fields=1)
    speakers = {utt: line.value for utt, line in _read_table(folder / "utt2spk", issues).items()}
    if (folder / "segments").is_file():
        rows = _segment_rows(folder, recordings, texts, speakers, issues)
    else:
        rows = _recording_rows(recordings, texts, speakers, issues)
    return SourceRead(rows, issues, id_root=folder, name=folder.name)


def prepare_kaldi(source: Path, workspace: Workspace, *, seed: int = 0,
                  progress: bool = True) -> ImportResult:
    """Import a Kaldi data directory into ``workspace`` (see ``read_kaldi``)."""
    return import_sources([read_kaldi(source)], workspace, seed=seed, progress=progress)


def _read_table(path: Path, issues: list[ImportIssue], *, min_fields: int = 2
                ) -> dict[str, _Line]:
    """``key rest-of-line`` lines of a Kaldi table; duplicate keys reported, first kept."""
    if not path.is_file():
        return {}
    table: dict[str, _Line] = {}
    for number, raw in enumerate(_read_lines(path), start=1):
        if not raw.strip():
            continue
        fields = raw.strip().split(maxsplit=1)
        item = f"{path}:{number}"
        if len(fields) < min_fields:
            issues.append(ImportIssue(item, "malformed_line",
                                      f"expected '<id> <value>', found {raw.strip()!r}"))
            continue
        key, value = fields[0], fields[1].strip() if len(fields) > 1 else ""
        if key in table:
            issues.append(ImportIssue(item, "duplicate_id",
                                      f"{key} is already on line {table[key].line}; the "
                                      "first is kept"))
            continue
        table[key] = _Line(key, value, item, number)
    return table


def _read_lines(path: Path) -> list[str]:
    return read_utf8_lines(
        path, 'Convert it to UTF-8 (iconv -f <encoding> -t utf-8) and import again.')


@dataclass(frozen=True)
class _Recording:
    """One ``wav.scp`` entry; ``audio`` is None when it is a command (never run)."""

    line: _Line
    audio: Path | None


def _read_wav_scp(folder: Path, issues: list[ImportIssue]) -> dict[str, _Recording]:
    """Recording id -> its entry; commands and archive offsets are reported, not run."""
    recordings = {}
    for key, line in _read_table(folder / "wav.scp", issues).items():
        problem = _unsupported_entry(line.value)
        if problem:
            issues.append(ImportIssue(line.item, "unsupported_wav_scp_command", problem))
        audio = None if problem else _resolve_audio(folder, line.value)
        recordings[key] = _Recording(line, audio)
    return recordings


def _unsupported_entry(value: str) -> str:
    """Why a ``wav.scp`` value is not a plain audio path ("" when it is one)."""
    if value.endswith("|") or value.startswith("|"):
        return (f"the entry is a command ({value!r}); commands in wav.scp are never run. "
                "Convert this recording to an audio file (run the command yourself, e.g. "
                "with '> rec.wav' in place of the pipe) and list the file in wav.scp")
    if _ARK_OFFSET.search(value):
        return (f"the entry points into a Kaldi archive ({value!r}); write the recording "
                "out as an audio file (wav-copy) and list the file in wav.scp")
    return ""


def _resolve_audio(folder: Path, value: str) -> Path:
    """The audio path, relative ones tried under the data dir, its parent and grandparent."""
    path = Path(value)
    if path.is_absolute():
        return path
    candidates = [folder / path, folder.parent / path, folder.parent.parent / path]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _recording_rows(recordings: dict[str, _Recording], texts: dict[str, _Line],
                    speakers: dict[str, str], issues: list[ImportIssue]) -> list[SourceRow]:
    """Without ``segments``: one utterance per recording, with the recording's id."""
    rows = []
    for utt, line in texts.items():
        recording = recordings.get(utt)
        if recording is None:
            issues.append(ImportIssue(line.item, "text_without_audio",
                                      f"utterance {utt} has no wav.scp entry (and there is "
                                      "no segments file)"))
        elif recording.audio is not None:  # commands were reported with their wav.scp line
            rows.append(_row(utt, line, recording.audio, speakers))
    for rec, recording in recordings.items():
        if rec not in texts:
            issues.append(ImportIssue(recording.line.item, "audio_without_text",
                                      f"recording {rec} has no line in text"))
    return rows


def _segment_rows(folder: Path, recordings: dict[str, _Recording], texts: dict[str, _Line],
                  speakers: dict[str, str], issues: list[ImportIssue]) -> list[SourceRow]:
    """With ``segments``: one utterance per segment line that has a transcript and audio."""
    segments = _read_segments(folder / "segments", issues)
    rows = []
    for utt, line in texts.items():
        segment = segments.get(utt)
        recording = recordings.get(segment.recording) if segment else None
        if segment is None:
            issues.append(ImportIssue(line.item, "text_without_audio",
                                      f"utterance {utt} has no line in segments"))
        elif recording is None:
            issues.append(ImportIssue(segment.item, "segment_without_recording",
                                      f"recording {segment.recording} of utterance {utt} "
                                      "is not in wav.scp"))
        elif recording.audio is None:
            issues.append(ImportIssue(segment.item, "unsupported_wav_scp_command",
                                      f"recording {segment.recording} is a command in "
                                      f"wav.scp ({recording.line.item}), never run, so "
                                      f"utterance {utt} is not imported"))
        else:
            rows.append(_row(utt, line, recording.audio, speakers, segment))
    issues += _unused(segments, texts, recordings)
    return rows


def _unused(segments: dict[str, _Segment], texts: dict[str, _Line],
            recordings: dict[str, _Recording]) -> list[ImportIssue]:
    """Segments without a transcript, and (readable) recordings no segment uses."""
    issues = [ImportIssue(segment.item, "audio_without_text",
                          f"segment {utt} has no line in text")
              for utt, segment in segments.items() if utt not in texts]
    used = {segment.recording for segment in segments.values()}
    issues += [ImportIssue(recording.line.item, "audio_without_text",
                           f"recording {rec} has no segment")
               for rec, recording in recordings.items()
               if rec not in used and recording.audio is not None]
    return issues


def _read_segments(path: Path, issues: list[ImportIssue]) -> dict[str, _Segment]:
    segments = {}
    for utt, line in _read_table(path, issues).items():
        segment = _parse_segment(line)
        if isinstance(segment, ImportIssue):
            issues.append(segment)
        else:
            segments[utt] = segment
    return segments


def _parse_segment(line: _Line) -> _Segment | ImportIssue:
    fields = line.value.split()
    if len(fields) != 3:
        return ImportIssue(line.item, "malformed_segment",
                           "expected '<utt-id> <recording-id> <start> <end>'")
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return ImportIssue(line.item, "malformed_segment",
                           f"start and end must be seconds, found {fields[1]!r} {fields[2]!r}")
    if start < 0 or (end != -1 and end <= start):
        return ImportIssue(line.item, "malformed_segment",
                           f"segment {start}-{end} s is empty or negative")
    return _Segment(fields[0], start, None if end == -1 else end, line.item)


def _row(utt: str, line: _Line, audio: Path, speakers: dict[str, str],
         segment: _Segment | None = None) -> SourceRow:
    return SourceRow(
        audio=audio, text=line.value, speaker=speakers.get(utt, ""), item=line.item,
        line=line.line, utterance_id=utt,
        start=segment.start if segment else None, end=segment.end if segment else None,
    )
