"""Utterance records and manifests: one JSONL file per split, written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from workbench.fsio import write_json_atomic, write_jsonl_atomic

__all__ = ["write_json_atomic", "write_jsonl_atomic"]  # re-exported: older imports

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    """One transcribed clip, decoded to 16 kHz mono and cached in the workspace.

    Attributes:
        id: Stable, unique utterance id (safe as a file name).
        audio: Path of the cached 16 kHz mono clip, relative to the workspace.
        text: The transcript exactly as the source gave it (normalised later).
        speaker: Speaker id, or "" when unknown.
        duration: Seconds of audio in the cached clip.
        source: Where the audio came from (original file, for the user's reports).
        source_line: Line of the transcript table the row came from (0 if none).
        orig_sample_rate: Sample rate of the source file.
        orig_channels: Channel count of the source file.
        sha1: Hash of the decoded 16 kHz samples (duplicate detection).
        peak: Largest absolute sample value before quantisation.
        rms_db: RMS level in dBFS.
        clipped_fraction: Share of samples at or beyond full scale.
        nan_count: Non-finite samples found in the source (replaced by 0 in the cache).
        truncated: The file ended before its header said it would.
        split: "train", "dev" or "test" ("" before splitting).
    """

    id: str
    audio: str
    text: str
    speaker: str = ""
    duration: float = 0.0
    source: str = ""
    source_line: int = 0
    orig_sample_rate: int = 0
    orig_channels: int = 0
    sha1: str = ""
    peak: float = 0.0
    rms_db: float = -120.0
    clipped_fraction: float = 0.0
    nan_count: int = 0
    truncated: bool = False
    split: str = ""
    extra: dict = field(default_factory=dict)

    def with_split(self, split: str) -> Utterance:
        """Return a copy assigned to ``split``."""
        return replace(self, split=split)


_FIELD_NAMES = {f.name for f in fields(Utterance)}


def utterance_from_dict(record: dict) -> Utterance:
    """Build an Utterance from a JSON record, keeping unknown keys in ``extra``."""
    known = {k: v for k, v in record.items() if k in _FIELD_NAMES}
    unknown = {k: v for k, v in record.items() if k not in _FIELD_NAMES}
    if unknown:
        known["extra"] = {**known.get("extra", {}), **unknown}
    return Utterance(**known)


def write_manifest(path: Path, utterances: Iterable[Utterance]) -> None:
    """Write utterances to a JSONL manifest atomically."""
    write_jsonl_atomic(path, (asdict(u) for u in utterances))


def read_manifest(path: Path) -> list[Utterance]:
    """Read a JSONL manifest; a missing file reads as empty."""
    return list(iter_manifest(path))


def iter_manifest(path: Path) -> Iterator[Utterance]:
    """Yield utterances from a JSONL manifest, one line at a time."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield utterance_from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as err:
                from workbench.errors import WorkbenchError

                raise WorkbenchError(
                    f"{path}, line {number}: not a valid utterance record ({err}). "
                    "Re-run `workbench prepare` to rebuild the manifests."
                ) from err


def total_duration(utterances: Iterable[Utterance]) -> float:
    """Sum of utterance durations in seconds."""
    return float(sum(u.duration for u in utterances))
