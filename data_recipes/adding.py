"""More data into a prepared workspace, without touching what is there.

``prepare`` replaces a workspace's data and splits it anew. Adding is for data that comes
later (a long recording aligned with its transcript, ``workbench align --output
audiofolder``): the new utterances all go to one split (train by default) and every
utterance already there keeps its id, clip and split, so dev and test stay what earlier
runs were scored on. The existing clips are hard-linked (copied where links are not
possible) into the new version of the data, which replaces the old in one step like any
import: a failure or a kill leaves the workspace as it was.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from data_recipes.common import ImportIssue, ImportResult, SourceRead, _decode_all, _merge_sources
from workbench.errors import WorkbenchError
from workbench.fsio import write_json_atomic
from workbench.manifest import SPLITS, Utterance, write_manifest
from workbench.workspace import Workspace


def add_source(read: SourceRead | list[SourceRead], ws: Workspace, *, split: str = "train",
               progress: bool = True, settings: dict | None = None) -> ImportResult:
    """Add what ``read`` (one source or several) holds to the prepared workspace ``ws``,
    every new utterance in ``split``.

    Returns:
        The new utterances and the problems found in the new source.

    Raises:
        WorkbenchError: The workspace has no data yet (use ``prepare``), an unknown split,
            or nothing in the source could be imported.
    """
    if split not in SPLITS:
        raise WorkbenchError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    ws.require_prepared()
    existing = ws.read_all()
    taken = {u.id for utterances in existing.values() for u in utterances}
    reads = read if isinstance(read, list) else [read]
    rows, ids, issues = _merge_sources(reads)
    names = ", ".join(r.name or "a source" for r in reads)
    ids = [_free_id(i, taken) for i in ids]
    old_report = _read_report(ws)
    with ws.importing(settings) as staging:
        _link_clips(ws, staging, existing)
        outcomes = _decode_all(rows, ids, staging, None, progress)
        added = [replace(o, split=split) for o in outcomes if isinstance(o, Utterance)]
        issues += [o for o in outcomes if isinstance(o, ImportIssue)]
        if not added:
            raise WorkbenchError(f"{names}: nothing could be added; "
                                 + "; ".join(f"{i.item}: {i.detail}" for i in issues[:3]))
        for name in SPLITS:
            write_manifest(staging.manifest_path(name),
                           existing[name] + [u for u in added if u.split == name])
        note = (f"Added {len(added)} utterances ({sum(u.duration for u in added) / 60:.1f} "
                f"min) from {names} to {split}; the other splits are as "
                "they were. Rebuild the alphabet (vocabulary) if they bring new characters.")
        write_json_atomic(staging.import_report_path, {
            **old_report,
            "issues": old_report.get("issues", []) + [asdict(i) for i in issues],
            "warnings": old_report.get("warnings", []) + [note]})
    return ImportResult(added, issues, [note])


def _free_id(candidate: str, taken: set[str]) -> str:
    """``candidate``, or ``candidate-2``, ``-3``... when the workspace already has it."""
    unique, n = candidate, 1
    while unique in taken:
        n += 1
        unique = f"{candidate}-{n}"
    taken.add(unique)
    return unique


def _link_clips(ws: Workspace, staging: Workspace, existing: dict[str, list[Utterance]]
                ) -> None:
    for utterances in existing.values():
        for u in utterances:
            source, target = ws.audio_path(u), staging.audio_path(u)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)


def _read_report(ws: Workspace) -> dict:
    import json

    path = ws.import_report_path
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def keep_in_workspace(folder: Path, ws: Workspace) -> Path:
    """A copy of ``folder`` under ``<workspace>/sources/`` (a new name if taken), so the
    workspace keeps what was added even when ``folder`` was a temporary one."""
    base = ws.root / "sources"
    target, n = base / folder.name, 1
    while target.exists():
        n += 1
        target = base / f"{folder.name}-{n}"
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, target)
    return target
