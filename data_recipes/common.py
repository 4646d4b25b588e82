"""What every recipe shares: rows naming audio and text -> decoded, cached, split manifests.

A recipe's only job is to read its source format into ``SourceRow`` objects and report what
it could not read; ``import_rows`` does the rest the same way for every format.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from workbench.audio import (
    AudioDecodeError,
    content_hash,
    decode_audio,
    signal_stats,
    write_clip,
)
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance, write_json_atomic, write_manifest
from workbench.split import split_utterances
from workbench.workspace import Workspace

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aif", ".aiff", ".webm"}
)
DECODE_WORKERS = 2  # decoding and resampling release the GIL; more threads than cores won't help


@dataclass(frozen=True)
class SourceRow:
    """One transcribed item as the source names it."""

    audio: Path
    text: str
    speaker: str = ""
    item: str = ""  # "file:line" for the user's reports
    line: int = 0
    utterance_id: str = ""


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
    for row in rows:
        base = row.utterance_id or _path_id(row.audio, root)
        candidate = safe_id(base)
        count = seen.get(candidate, 0)
        seen[candidate] = count + 1
        ids.append(candidate if count == 0 else f"{candidate}-{count + 1}")
    return ids


def _path_id(audio: Path, root: Path | None) -> str:
    try:
        relative = audio.resolve().relative_to(root.resolve()) if root else Path(audio.name)
    except ValueError:
        relative = Path(audio.name)
    return str(relative.with_suffix("")).replace("/", "__")


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
) -> ImportResult:
    """Decode, cache and split ``rows``; write the manifests and import.json.

    Rows whose audio is missing or undecodable are reported, never silently dropped.
    """
    issues = list(issues)
    ids = unique_ids(rows, id_root)
    _reset_cache(ws)
    jobs = list(zip(rows, ids, strict=True))
    with ThreadPoolExecutor(DECODE_WORKERS) as pool:
        outcomes = pool.map(lambda job: _import_one(job[0], job[1], ws), jobs)
        outcomes = list(tqdm(outcomes, total=len(jobs), desc="Importing audio", unit="clip",
                             disable=not progress))
    utterances = [o for o in outcomes if isinstance(o, Utterance)]
    issues += [o for o in outcomes if isinstance(o, ImportIssue)]
    if not utterances:
        raise WorkbenchError(_nothing_imported_message(rows, issues))
    split = split_utterances(utterances, dev_fraction=dev_fraction,
                             test_fraction=test_fraction, seed=seed)
    result = ImportResult(split.utterances, issues, split.warnings)
    _write_outputs(ws, result, split.speaker_disjoint)
    return result


def _reset_cache(ws: Workspace) -> None:
    # The cache holds only what imports wrote (never the user's files), so it is safe to clear.
    if ws.audio_dir.exists():
        shutil.rmtree(ws.audio_dir)
    ws.audio_dir.mkdir(parents=True)


def _import_one(row: SourceRow, utterance_id: str, ws: Workspace) -> Utterance | ImportIssue:
    item = row.item or str(row.audio)
    if not row.audio.is_file():
        return ImportIssue(item, "row_without_audio",
                           f"audio file {row.audio} not found; check the path in the table")
    try:
        decoded = decode_audio(row.audio)
    except AudioDecodeError as err:
        return ImportIssue(item, "unreadable_audio", str(err))
    relative = Path("audio") / f"{utterance_id}.wav"
    write_clip(ws.root / relative, decoded.samples)
    return Utterance(
        id=utterance_id, audio=str(relative), text=row.text, speaker=row.speaker,
        duration=round(decoded.duration, 4), source=str(row.audio), source_line=row.line,
        orig_sample_rate=decoded.orig_sample_rate, orig_channels=decoded.orig_channels,
        sha1=content_hash(decoded.samples), nan_count=decoded.nan_count,
        truncated=decoded.truncated, **signal_stats(decoded.samples),
    )


def _nothing_imported_message(rows: list[SourceRow], issues: list[ImportIssue]) -> str:
    if not rows:
        return "The source lists no transcribed audio: no rows were found."
    shown = "; ".join(f"{i.item}: {i.detail}" for i in issues[:3])
    return f"None of the {len(rows)} rows could be imported. First problems: {shown}"


def _write_outputs(ws: Workspace, result: ImportResult, speaker_disjoint: bool) -> None:
    for split in SPLITS:
        write_manifest(ws.manifest_path(split), [u for u in result.utterances if u.split == split])
    write_json_atomic(ws.import_report_path, {
        "issues": [asdict(issue) for issue in result.issues],
        "warnings": result.warnings,
        "speaker_disjoint": speaker_disjoint,
        "summary": {k: v for k, v in result.summary().items() if k not in ("issues", "warnings")},
    })
    # A new import invalidates an older audit.
    ws.audit_path.unlink(missing_ok=True)
