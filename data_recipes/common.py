"""What every recipe shares: rows naming audio and text -> decoded, cached, split manifests.

A recipe's only job is to read its source format into ``SourceRow`` objects and report what
it could not read; ``import_rows`` does the rest the same way for every format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from workbench.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioStream,
    ClipWriter,
    open_audio,
)
from workbench.errors import WorkbenchError
from workbench.fsio import disk_full_error, fault_point, is_disk_full
from workbench.manifest import SPLITS, Utterance, write_json_atomic, write_manifest
from workbench.split import split_utterances
from workbench.workspace import Workspace

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aif", ".aiff", ".webm"}
)
# Threads decoding files at once. libsndfile, soxr, hashing and file writes release the GIL
# (about three quarters of an import's time), so threads use the cores without the start-up
# and pickling of processes; more threads than cores would not help.
MAX_DECODE_WORKERS = 8
WAV_HEADER_BYTES = 44
COMPRESSED_BYTES_PER_SECOND = 16_000  # a guess for files whose header gives no length


def decode_workers() -> int:
    """Threads for decoding: the CPUs this process may use, at most MAX_DECODE_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DECODE_WORKERS))


@dataclass(frozen=True)
class SourceRow:
    """One transcribed item as the source names it.

    A row is a whole file, or with ``start``/``end`` (seconds) a segment of a longer
    recording (ELAN, TextGrid, Kaldi segments). A recording is decoded once however many
    segments it holds.
    """

    audio: Path
    text: str
    speaker: str = ""
    item: str = ""  # "file:line" or "file: annotation" for the user's reports
    line: int = 0
    utterance_id: str = ""
    start: float | None = None
    end: float | None = None
    split: str = ""  # a split the source itself assigns (Common Voice); "" lets us split

    @property
    def is_segment(self) -> bool:
        return self.start is not None


@dataclass
class SourceRead:
    """What a recipe read from one source, before any audio is decoded."""

    rows: list[SourceRow] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    id_root: Path | None = None
    name: str = ""


@dataclass
class ImportIssue:
    """Something in the source that was not imported, and what was done about it."""

    item: str
    check: str
    detail: str
    action: str = "not imported"


@dataclass
class ImportResult:
    """What an import produced."""

    utterances: list[Utterance]
    issues: list[ImportIssue] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    speaker_disjoint: bool = False

    def summary(self) -> dict:
        """Counts and seconds per split, issues and warnings, for the CLI's --json."""
        per_split = {
            split: {
                "utterances": sum(1 for u in self.utterances if u.split == split),
                "seconds": round(sum(u.duration for u in self.utterances if u.split == split), 2),
            }
            for split in SPLITS
        }
        return {
            "utterances": len(self.utterances),
            "seconds": round(sum(u.duration for u in self.utterances), 2),
            "splits": per_split,
            "speakers": len({u.speaker for u in self.utterances if u.speaker}),
            "issues": [asdict(issue) for issue in self.issues],
            "warnings": self.warnings,
        }


def safe_id(text: str) -> str:
    """A file-name-safe utterance id made from ``text``."""
    cleaned = re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("._")
    return cleaned or "utt"


def unique_ids(rows: list[SourceRow], root: Path | None = None) -> list[str]:
    """Stable, unique ids: the row's own id, else the audio path relative to ``root``.

    Colliding ids get a numeric suffix in row order, so no clip overwrites another.
    """
    seen: dict[str, int] = {}
    ids = []
    resolved_root = root.resolve() if root else None
    for row in rows:
        base = row.utterance_id or _path_id(row.audio, resolved_root)
        candidate = safe_id(base)
        count = seen.get(candidate, 0)
        seen[candidate] = count + 1
        ids.append(candidate if count == 0 else f"{candidate}-{count + 1}")
    return ids


def _path_id(audio: Path, resolved_root: Path | None) -> str:
    try:
        relative = (audio.resolve().relative_to(resolved_root) if resolved_root
                    else Path(audio.name))
    except ValueError:
        relative = Path(audio.name)
    return str(relative.with_suffix("")).replace("/", "__")


def read_utf8_lines(path: Path, advice: str) -> list[str]:
    """Lines of a UTF-8 text file (BOM allowed); ``advice`` says what to do when it is not."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise WorkbenchError(f"{path}: not UTF-8 text (byte {err.start}). {advice}") from err


def audio_files_under(folder: Path) -> list[Path]:
    """Audio files anywhere under ``folder`` (by extension), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
                  and p.is_file())


def import_rows(
    rows: list[SourceRow],
    ws: Workspace,
    *,
    issues: Iterable[ImportIssue] = (),
    id_root: Path | None = None,
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    progress: bool = True,
    workers: int | None = None,
) -> ImportResult:
    """Decode, cache and split ``rows``; write the manifests and import.json.

    Rows whose audio is missing or undecodable are reported, never silently dropped.
    """
    read = SourceRead(list(rows), list(issues), id_root)
    return import_sources([read], ws, seed=seed, dev_fraction=dev_fraction,
                          test_fraction=test_fraction, progress=progress, workers=workers)


def import_sources(
    reads: list[SourceRead],
    ws: Workspace,
    *,
    seed: int = 0,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    progress: bool = True,
    workers: int | None = None,
    settings: dict | None = None,
) -> ImportResult:
    """Import one or several sources into one workspace (ids kept unique across sources).

    Each audio file is decoded once, by one of ``workers`` threads (default:
    :func:`decode_workers`), and only its 16 kHz clips' statistics are kept; the outcome does
    not depend on the number of workers. Everything is written to a staging folder and
    replaces the workspace's data in one step at the end (``Workspace.importing``): an import
    that fails, fills the disk or is killed leaves the workspace as it was.

    Args:
        settings: Choices to record in workbench.yaml with the new data (sources, seed).
    """
    rows, ids, issues = _merge_sources(reads)
    with ws.importing(settings) as staging:
        outcomes = _decode_all(rows, ids, staging, workers, progress)
        utterances = [o for o in outcomes if isinstance(o, Utterance)]
        issues += [o for o in outcomes if isinstance(o, ImportIssue)]
        if not utterances:
            raise WorkbenchError(_nothing_imported_message(rows, issues))
        result = _split(utterances, issues, seed, dev_fraction, test_fraction)
        result.warnings += [_past_end_warning(u) for u in utterances if "past_end_s" in u.extra]
        _write_outputs(staging, result)
    return result


def _past_end_warning(utt: Utterance) -> str:
    """What to say of a segment that runs past the end of its recording."""
    extra = utt.extra
    return (f"{extra['item']}: segment {extra['start']:.2f}-{extra['end']:.2f} s of utterance "
            f"{utt.id} runs {utt.extra['past_end_s']:.2f} s past the end of "
            f"{Path(utt.source).name}; "
            "its clip was cut short and the check sets it aside. A transcript that runs past "
            "its recording usually means the wrong media file was given.")


def _decode_all(rows: list[SourceRow], ids: list[str], staging: Workspace,
                workers: int | None, progress: bool) -> list[Utterance | ImportIssue]:
    """Decode every file once (in threads) and cache its clips under ``staging``."""
    by_file: dict[Path, list[tuple[SourceRow, str]]] = {}
    for row, utterance_id in zip(rows, ids, strict=True):
        by_file.setdefault(row.audio, []).append((row, utterance_id))
    outcomes: list[Utterance | ImportIssue] = []
    try:
        with ThreadPoolExecutor(workers or decode_workers()) as pool, tqdm(
                total=len(rows), desc="Importing audio", unit="utt",
                disable=not progress) as bar:
            # map() keeps the rows' order whatever finishes first; a result holds no audio.
            for results in pool.map(lambda item: _import_file(item[0], item[1], staging),
                                    by_file.items()):
                outcomes += results
                bar.update(len(results))
    except OSError as err:
        if not is_disk_full(err):
            raise
        raise disk_full_error(staging.root.parent, "the import", cache_bytes(rows),
                              "import again (the workspace was left as it was)") from err
    return outcomes


def cache_bytes(rows: list[SourceRow]) -> int:
    """About what the 16 kHz cache of ``rows`` takes (16-bit samples and a header a clip).

    Segments count their own length; a whole file its length from its header, or (when the
    header does not say) its size on disk. Only read when the disk has filled up.
    """
    seconds: dict[Path, float] = {}
    total = 0.0
    for row in rows:
        if row.is_segment and row.end is not None:
            length = max(row.end - row.start, 0.0)
        else:
            if row.audio not in seconds:
                seconds[row.audio] = _file_seconds(row.audio)
            length = seconds[row.audio] - (row.start or 0.0)
        total += WAV_HEADER_BYTES + max(length, 0.0) * SAMPLE_RATE * 2
    return int(total)


def _file_seconds(path: Path) -> float:
    try:
        return float(sf.info(str(path)).duration)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError):
        try:  # a format only ffmpeg reads (m4a...): about 128 kbit/s, 16 kB a second
            return path.stat().st_size / COMPRESSED_BYTES_PER_SECOND
        except OSError:
            return 0.0


def _merge_sources(reads: list[SourceRead]):
    """All rows with ids unique across sources (prefixed by source name when needed)."""
    rows, ids, issues = [], [], []
    several = len(reads) > 1
    for index, read in enumerate(reads):
        prefix = safe_id(read.name or f"source{index + 1}") + "__" if several else ""
        rows += read.rows
        ids += [prefix + i for i in unique_ids(read.rows, read.id_root)]
        issues += read.issues
    seen: dict[str, int] = {}
    unique = []
    for candidate in ids:
        count = seen.get(candidate, 0)
        seen[candidate] = count + 1
        unique.append(candidate if count == 0 else f"{candidate}-{count + 1}")
    return rows, unique, issues


def _split(utterances, issues, seed, dev_fraction, test_fraction) -> ImportResult:
    """Keep the source's own splits when it gives them; otherwise split here."""
    assigned = [u for u in utterances if u.split]
    if assigned and len(assigned) == len(utterances):
        return ImportResult(utterances, issues, [], _speakers_disjoint(utterances))
    split = split_utterances(utterances, dev_fraction=dev_fraction,
                             test_fraction=test_fraction, seed=seed)
    return ImportResult(split.utterances, issues, split.warnings, split.speaker_disjoint)


def _speakers_disjoint(utterances: list[Utterance]) -> bool:
    train = {u.speaker for u in utterances if u.split == "train"}
    held = {u.speaker for u in utterances if u.split != "train"}
    return all(u.speaker for u in utterances) and not train & held


def _import_file(audio: Path, rows: list[tuple[SourceRow, str]],
                 ws: Workspace) -> list[Utterance | ImportIssue]:
    """Decode one audio file once, as a stream, and cache each row (whole file or segment).

    The clips are cut and written as the decoded blocks pass (:class:`_Clip`), so memory does
    not grow with the length of the recording however many segments it holds.
    """
    if not audio.is_file():
        return [ImportIssue(row.item or str(audio), "row_without_audio",
                            f"audio file {audio} not found; check the path in the source")
                for row, _ in rows]
    clips = [_Clip.of(row, utterance_id, ws) for row, utterance_id in rows]
    try:
        stream, total = _decode_into(audio, clips)
    except AudioDecodeError as err:
        return [ImportIssue(row.item or str(audio), "unreadable_audio", str(err))
                for row, _ in rows]
    return [_cache_row(clip, total, stream) for clip in clips]


def _decode_into(audio: Path, clips: list[_Clip]) -> tuple[AudioStream, int]:
    """Decode ``audio`` into its clips; the (exhausted) stream and the length in samples.

    A recording that fails part-way leaves none of its clips behind.
    """
    try:
        with open_audio(audio) as stream:
            return stream, _cut_clips(stream, clips)
    except BaseException:
        for clip in clips:
            clip.discard()
        raise


# A segment may end this far past its recording (one model frame) without being flagged.
PAST_END_TOLERANCE_S = 0.02


@dataclass
class _Clip:
    """One row's clip of a recording, written while the recording is decoded.

    ``start``/``end`` are 16 kHz sample indices as slicing the whole decoded recording would
    use them: ``samples[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]`` for a segment,
    every sample for a whole-file row. ``end`` is None when the end is known only when the
    recording ends (a whole file, or a segment without an end time).
    """

    row: SourceRow
    utterance_id: str
    relative: Path  # the clip, relative to the workspace
    path: Path
    start: int
    end: int | None
    writer: ClipWriter | None = None
    held: np.ndarray | None = None  # open-ended segment: its last sample so far
    sha1: str = ""
    finished: bool = False

    @classmethod
    def of(cls, row: SourceRow, utterance_id: str, ws: Workspace) -> _Clip:
        relative = Path("audio") / f"{utterance_id}.wav"
        if not row.is_segment:
            return cls(row, utterance_id, relative, ws.root / relative, 0, None)
        end = None if row.end is None else max(0, int(row.end * SAMPLE_RATE))
        return cls(row, utterance_id, relative, ws.root / relative,
                   max(0, int(row.start * SAMPLE_RATE)), end)

    @property
    def wanted(self) -> bool:
        """False for a segment that can have no samples (an issue once the length is known)."""
        return not (self.row.is_segment and self.row.end is not None
                    and self.row.end <= self.row.start)

    @property
    def open_segment(self) -> bool:
        return self.row.is_segment and self.end is None

    def feed(self, block: np.ndarray, offset: int) -> None:
        """Take this clip's part of ``block``, which holds samples from ``offset`` on."""
        stop = len(block) if self.end is None else min(len(block), self.end - offset)
        piece = block[max(0, self.start - offset):max(0, stop)]
        if self.open_segment:
            # Its end, int(duration * SAMPLE_RATE), can be one short of the last sample:
            # hold the last sample back until the recording's length is known.
            if self.held is not None:
                piece = np.concatenate((self.held, piece))
            self.held, piece = piece[-1:].copy(), piece[:-1]
        if len(piece):
            self._writer().add(piece)

    def finish(self, total: int | None = None) -> None:
        """Complete the clip (``total``: the recording's length, for an open segment)."""
        if self.open_segment and self.held is not None and len(self.held):
            if int(total / SAMPLE_RATE * SAMPLE_RATE) == total:
                self._writer().add(self.held)
            self.held = None
        self.sha1 = self._writer().finish()
        self.finished = True

    def _writer(self) -> ClipWriter:
        if self.writer is None:
            fault_point("import.clip")
            self.writer = ClipWriter(self.path)
        return self.writer

    def discard(self) -> None:
        """Remove the clip (its row is an issue, or the recording failed to decode)."""
        if self.writer is not None:
            self.writer.discard()


def _cut_clips(stream: AudioStream, clips: list[_Clip]) -> int:
    """Feed each clip its samples as the blocks of ``stream`` pass; the recording's length.

    Clips may overlap and come in any order; each is finished (its file closed) as soon as
    the stream passes its end.
    """
    waiting = sorted((c for c in clips if c.wanted), key=lambda c: c.start, reverse=True)
    active: list[_Clip] = []
    offset = 0
    for block in stream:
        block_end = offset + len(block)
        while waiting and waiting[-1].start < block_end:
            active.append(waiting.pop())
        for clip in active:
            clip.feed(block, offset)
        for clip in [c for c in active if c.end is not None and c.end <= block_end]:
            clip.finish()
            active.remove(clip)
        offset = block_end
    for clip in active:
        clip.finish(offset)
    return offset


def _cache_row(clip: _Clip, total: int, stream: AudioStream) -> Utterance | ImportIssue:
    """The row's utterance once the whole recording has passed, or the issue with it."""
    row = clip.row
    item = row.item or str(row.audio)
    duration = total / SAMPLE_RATE
    if row.is_segment:
        end = duration if row.end is None else row.end
        issue = None
        if row.start >= duration:
            issue = ImportIssue(item, "segment_past_end",
                                f"segment {row.start:.2f}-{end:.2f} s starts after the end of "
                                f"{row.audio.name} ({duration:.2f} s)")
        elif end <= row.start:
            issue = ImportIssue(item, "empty_segment",
                                f"segment {row.start:.2f}-{end:.2f} s has no length")
        if issue is not None:
            clip.discard()
            return issue
    if not clip.finished:  # no samples reached it (an empty file, a segment at its very end)
        clip.finish(total)
    writer = clip.writer
    extra = {"start": row.start, "end": row.end} if row.is_segment else {}
    if row.is_segment and row.end is not None and row.end - duration > PAST_END_TOLERANCE_S:
        extra["past_end_s"] = round(row.end - duration, 3)  # the audit flags it
        extra["item"] = item  # where the segment is written (file and line or annotation)
    return Utterance(
        id=clip.utterance_id, audio=str(clip.relative),
        text=row.text, speaker=row.speaker, duration=round(writer.duration, 4),
        source=str(row.audio), source_line=row.line, orig_sample_rate=stream.orig_sample_rate,
        orig_channels=stream.orig_channels, sha1=clip.sha1, nan_count=stream.nan_count,
        truncated=stream.truncated, split=row.split, extra=extra, **writer.stats(),
    )


def _nothing_imported_message(rows: list[SourceRow], issues: list[ImportIssue]) -> str:
    if not rows:
        return "The source lists no transcribed audio: no rows were found."
    shown = "; ".join(f"{i.item}: {i.detail}" for i in issues[:3])
    return f"None of the {len(rows)} rows could be imported. First problems: {shown}"


def _write_outputs(ws: Workspace, result: ImportResult) -> None:
    """Manifests and import.json (into the staging workspace; the old audit goes on commit)."""
    for split in SPLITS:
        write_manifest(ws.manifest_path(split), [u for u in result.utterances if u.split == split])
    write_json_atomic(ws.import_report_path, {
        "issues": [asdict(issue) for issue in result.issues],
        "warnings": result.warnings,
        "speaker_disjoint": result.speaker_disjoint,
        "summary": {k: v for k, v in result.summary().items() if k not in ("issues", "warnings")},
    })
