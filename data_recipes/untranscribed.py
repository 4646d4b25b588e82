"""Untranscribed recordings in the workspace: ``workbench prepare --untranscribed AUDIO...``.

Each recording (any format the workbench decodes; files, folders of them, or zip/tar archives
extracted safely) is decoded once to 16 kHz mono, cut at its pauses by the energy speech
detector (:mod:`workbench.vad`) into pieces of 2-15 s, and each piece stored as a clip in
``WS/untranscribed/clips/<sha1>.wav``. The pieces are audited as transcribed clips are:
silent and clipped pieces, and pieces that repeat one already held (untranscribed or
transcribed, so no test utterance reaches pretraining or pseudo-labels), are set aside and
reported with the file and the time they came from. A recording that transcribed utterances
were cut from (an ELAN or TextGrid import: the same file, byte for byte) gives only the
stretches between them: each transcribed segment, with ``TRANSCRIBED_MARGIN_S`` either side,
is left out and reported. The list of pieces,
``WS/untranscribed/manifest.jsonl``, is replaced atomically at the end of an import, and a
clip is only ever written under a new name: a kill at any moment leaves the previous list
and every clip it names intact. Importing adds to what is there.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from data_recipes.common import AUDIO_EXTENSIONS, audio_files_under
from workbench.audio import SAMPLE_RATE, ClipWriter, open_audio
from workbench.audit import AuditOptions
from workbench.errors import WorkbenchError
from workbench.fsio import check_free_space, fault_point, locked, remove_temporaries
from workbench.manifest import Utterance, read_manifest, total_duration, write_manifest
from workbench.workspace import Workspace

TRANSCRIBED_MARGIN_S = 0.25  # left out either side of a transcribed segment

FOLDER = "untranscribed"
MIN_PIECE_S, MAX_PIECE_S = 2.0, 15.0  # what pretraining and pseudo-labelling take best
READ_BLOCK = 1 << 18  # samples read from the decoded recording at a time
BYTES_PER_SECOND = 2 * SAMPLE_RATE  # 16-bit mono clips


class RecordingSetAside(Exception):
    """A whole recording left out: ``check`` and ``detail`` say why."""

    def __init__(self, check: str, detail: str):
        super().__init__(detail)
        self.check, self.detail = check, detail


def folder(ws: Workspace) -> Path:
    return ws.root / FOLDER


def manifest_path(ws: Workspace) -> Path:
    return folder(ws) / "manifest.jsonl"


def read_untranscribed(ws: Workspace) -> list[Utterance]:
    """The workspace's untranscribed pieces (none before the first import)."""
    path = manifest_path(ws)
    return read_manifest(path) if path.exists() else []


@dataclass
class UntranscribedImport:
    """What an import did: pieces kept and set aside, by file."""

    kept: list[Utterance] = field(default_factory=list)
    set_aside: list[dict] = field(default_factory=list)  # item, check, detail, seconds
    files: int = 0
    total_seconds: float = 0.0  # every piece the workspace holds after the import
    transcribed_seconds: float = 0.0

    def summary(self) -> dict:
        reasons = Counter(item["check"] for item in self.set_aside)
        return {"files": self.files, "pieces": len(self.kept),
                "seconds": round(total_duration(self.kept), 2),
                "set_aside": self.set_aside, "set_aside_by_check": dict(reasons),
                "untranscribed_seconds": round(self.total_seconds, 2),
                "transcribed_seconds": round(self.transcribed_seconds, 2)}


def recordings(paths: Iterable[Path], ws: Workspace) -> list[Path]:
    """The audio files among ``paths`` (folders walked, archives extracted into
    ``WS/sources/``).

    Raises:
        WorkbenchError: a path does not exist or holds no audio.
    """
    from data_recipes.archive import extract_archive, is_archive

    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise WorkbenchError(f"{path}: no such file or folder.")
        if path.is_file() and is_archive(path):
            path = extract_archive(path, ws.root / "sources")
        files = audio_files_under(path) if path.is_dir() else (
            [path] if path.suffix.lower() in AUDIO_EXTENSIONS else [])
        if not files:
            raise WorkbenchError(f"{path}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
                                 "; give recordings, folders of them or an archive.")
        found += files
    return found


def import_untranscribed(paths: Iterable[Path], ws: Workspace, *, progress: bool = False,
                         options: AuditOptions | None = None) -> UntranscribedImport:
    """Cut, audit and store untranscribed recordings in ``ws`` (see the module doc).

    A file that cannot be decoded is set aside with the decoder's message; the rest go on.
    """
    options = options or AuditOptions()
    files = recordings(paths, ws)
    with locked(folder(ws) / ".lock"):  # one import at a time into a workspace
        return _import(files, ws, options, progress)


def _import(files: list[Path], ws: Workspace, options: AuditOptions,
            progress: bool) -> UntranscribedImport:
    held = read_untranscribed(ws)
    seen = {u.sha1: f"untranscribed piece {u.id} ({u.source})" for u in held}
    splits = ws.read_all() if ws.manifest_path("train").exists() else {}
    transcribed = {u.sha1: f"{u.id} ({split})" for split, us in splits.items() for u in us
                   if u.sha1}
    stretches = transcribed_stretches(splits, ws)
    clips = folder(ws) / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    remove_temporaries(clips)
    remove_temporaries(folder(ws))
    result = UntranscribedImport(files=len(files))
    for path in tqdm(files, desc="Cutting untranscribed recordings", unit="file",
                     disable=not progress):
        spans = stretches.get(file_sha1(path), []) if stretches else []
        result.set_aside += [{"item": f"{path} {span.start:.2f}-{min(span.end, 1e9):.2f} s",
                              "check": "transcribed", "seconds": round(
                                  span.end - span.start, 2) if span.end < math.inf else 0.0,
                              "detail": f"already transcribed as {span.name}: left out so it "
                                        "never leaks into training"} for span in spans]
        try:
            pieces = list(cut_recording(path, clips, transcribed, exclude=spans))
        except RecordingSetAside as aside:
            result.set_aside.append({"item": str(path), "check": aside.check,
                                     "detail": aside.detail, "seconds": 0.0})
            continue
        except WorkbenchError as err:
            result.set_aside.append({"item": str(path), "check": "unreadable",
                                     "detail": str(err), "seconds": 0.0})
            continue
        if not pieces:
            result.set_aside.append({"item": str(path), "check": "silent", "seconds": 0.0,
                                     "detail": "no speech found in the recording"})
        for piece, stats in pieces:
            reason = _finding(piece, stats, options, seen, transcribed)
            if reason:
                result.set_aside.append({"item": piece.source, "check": reason[0],
                                         "detail": reason[1], "seconds": piece.duration})
                continue
            seen[piece.sha1] = f"untranscribed piece {piece.id} ({piece.source})"
            result.kept.append(piece)
    _unlink_unlisted(clips, [*held, *result.kept])
    fault_point("untranscribed.manifest")
    write_manifest(manifest_path(ws), [*held, *result.kept])
    result.total_seconds = total_duration([*held, *result.kept])
    result.transcribed_seconds = sum(total_duration(us) for us in splits.values())
    return result


@dataclass(frozen=True)
class TranscribedSpan:
    """A transcribed segment of a recording: seconds, and the utterance's name."""

    start: float
    end: float  # inf: to the end of the recording
    name: str


def transcribed_stretches(splits: dict[str, list[Utterance]], ws: Workspace
                          ) -> dict[str, list[TranscribedSpan]]:
    """The transcribed segments of each source recording still in the workspace (or where
    the import read it), keyed by the hash of the recording file's bytes."""
    by_source: dict[str, list[TranscribedSpan]] = defaultdict(list)
    for split, utterances in splits.items():
        for u in utterances:
            if u.source and u.extra.get("start") is not None:
                end = u.extra.get("end")
                by_source[u.source].append(TranscribedSpan(
                    float(u.extra["start"]), math.inf if end is None else float(end),
                    f"{u.id} ({split})"))
    found: dict[str, list[TranscribedSpan]] = defaultdict(list)
    for source, spans in by_source.items():
        path = Path(source) if Path(source).is_absolute() else ws.root / source
        if path.is_file():
            found[file_sha1(path)] += sorted(spans, key=lambda s: s.start)
    return dict(found)


def file_sha1(path: Path) -> str:
    """Hash of a file's bytes (the same recording file, whatever its name or folder)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def without_spans(segments: list, spans: list[TranscribedSpan],
                  margin: float = TRANSCRIBED_MARGIN_S) -> list:
    """``segments`` (objects with ``start``/``end`` seconds) with every transcribed span
    (widened by ``margin``) cut out; what is left of a segment stays, in time order."""
    from dataclasses import replace

    kept = []
    for segment in segments:
        parts = [(segment.start, segment.end)]
        for span in spans:
            low, high = span.start - margin, span.end + margin
            parts = [piece for start, end in parts for piece in (
                ((start, end),) if high <= start or low >= end else
                tuple(p for p in ((start, low), (high, end)) if p[1] > p[0]))]
        kept += [replace(segment, start=start, end=end) for start, end in parts]
    return kept


def cut_recording(path: Path, clips: Path, transcribed: dict[str, str] | None = None, *,
                  exclude: list[TranscribedSpan] = ()) -> Iterable[tuple[Utterance, dict]]:
    """Decode ``path`` once, find its utterances, and write each 2-15 s piece as a clip.

    Yields each piece (its clip already written under its content hash) with its signal
    statistics; the ``exclude`` spans (transcribed segments of this recording) are cut out
    of the pieces.

    Raises:
        RecordingSetAside: the recording is shorter than a piece, or is the very audio of a
            transcribed utterance (``transcribed``: content hash -> its name).
    """
    from workbench.vad import cut_segments, detect_segments

    # A killed import leaves ".decode-*.tmp" behind; the next one removes it.
    with tempfile.TemporaryDirectory(prefix=".decode-", suffix=".tmp",
                                     dir=clips.parent) as scratch:
        decoded = Path(scratch) / "decoded.wav"
        with open_audio(path) as stream:
            writer = ClipWriter(decoded)
            for block in stream:
                writer.add(block)
            writer.finish()
            rate, channels = stream.orig_sample_rate, stream.orig_channels
        if writer.sha1 in (transcribed or {}):
            raise RecordingSetAside("duplicate", "the same audio as the transcribed utterance "
                                    f"{transcribed[writer.sha1]}: left out so it never leaks "
                                    "into training")
        if writer.duration < MIN_PIECE_S:
            raise RecordingSetAside("too_short", f"{writer.duration:.2f} s, shorter than a "
                                    f"piece ({MIN_PIECE_S:g} s)")
        check_free_space(clips, int(writer.duration * BYTES_PER_SECOND),
                         f"storing the pieces of {path.name}")
        segments, _ = detect_segments(_blocks(decoded), "energy", min_s=MIN_PIECE_S,
                                      max_s=MAX_PIECE_S)
        segments = without_spans(segments, list(exclude))
        for segment, samples in cut_segments(_blocks(decoded), segments):
            if len(samples) < MIN_PIECE_S * SAMPLE_RATE * 0.5:
                continue  # a stray sound at the end, not an utterance
            yield _store(path, segment.start, segment.end, samples, clips, rate, channels)


def _blocks(path: Path) -> Iterable:
    with sf.SoundFile(path) as handle:
        yield from handle.blocks(READ_BLOCK, dtype="float32")


def _store(path: Path, start: float, end: float, samples, clips: Path, rate: int,
           channels: int) -> tuple[Utterance, dict]:
    """Write one piece under its content hash (a temporary name first) and describe it."""
    scratch = clips / f".{path.stem[:40]}-{int(start * 1000)}.tmp"
    writer = ClipWriter(scratch)
    writer.add(samples)
    sha1 = writer.finish()
    final = clips / f"{sha1}.wav"
    fault_point("untranscribed.clip")
    scratch.replace(final)
    stats = writer.stats()
    piece = Utterance(
        id=f"u{sha1[:15]}", audio=f"{FOLDER}/clips/{final.name}", text="",
        duration=round(writer.duration, 3), source=f"{path} {start:.2f}-{end:.2f} s",
        orig_sample_rate=rate, orig_channels=channels, sha1=sha1, peak=stats["peak"],
        rms_db=stats["rms_db"], clipped_fraction=stats["clipped_fraction"])
    return piece, stats


def _finding(piece: Utterance, stats: dict, options: AuditOptions, seen: dict[str, str],
             transcribed: dict[str, str]) -> tuple[str, str] | None:
    """Why ``piece`` is set aside (check, detail), or None."""
    if piece.sha1 in transcribed:
        return ("duplicate", f"the same audio as the transcribed utterance "
                f"{transcribed[piece.sha1]}: left out so it never leaks into training")
    if piece.sha1 in seen:
        return "duplicate", f"the same audio as {seen[piece.sha1]}"
    if stats["rms_db"] < options.silence_rms_db or stats["peak"] < options.silence_peak:
        return ("silent", f"level {stats['rms_db']:.1f} dBFS, peak {stats['peak']:.4g}: below "
                f"the silence limits ({options.silence_rms_db:g} dBFS)")
    if stats["clipped_fraction"] > options.max_clipped_fraction:
        return ("clipped", f"{stats['clipped_fraction']:.2%} of samples at full scale (limit "
                f"{options.max_clipped_fraction:.2%}); the recording level was too high")
    return None


def _unlink_unlisted(clips: Path, listed: list[Utterance]) -> None:
    """Remove clips no piece names (set aside now, or left by an interrupted import)."""
    keep = {Path(u.audio).name for u in listed}
    for clip in clips.glob("*.wav"):
        if clip.name not in keep:
            clip.unlink(missing_ok=True)
