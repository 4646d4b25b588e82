"""What the annotation-file recipes (ELAN, TextGrid) and the upload page share.

An annotation file holds the transcript of one recording as segments; a folder holds many
such files, each read on its own: a file that cannot be used is reported and the others are
still read (``read_each``). Recordings are found by name (``media_beside``, ``audio_by_name``)
and segments that overlap are reported, never dropped (``overlaps_within``,
``overlaps_between``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from data_recipes.common import AUDIO_EXTENSIONS, ImportIssue, SourceRead, SourceRow
from workbench.errors import WorkbenchError

# When several recordings share a name, the first of these is used.
PREFERRED_AUDIO = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
                   ".wma", ".webm")
MAX_LISTED_PROBLEMS = 3  # problems quoted in an error when a whole folder gave nothing
MAX_FILES_INSPECTED = 200  # annotation files parsed to list a source's choices (the first)
MAX_OVERLAPS_LISTED = 20  # overlaps between speakers listed one by one per file


class FileSkipped(WorkbenchError):
    """A problem with one file of a folder: reported, and the other files still read.

    Reading a single file raises it like any ``WorkbenchError``.
    """

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


# --------------------------------------------------------------------------- folders


def annotation_files(folder: Path, suffix: str) -> list[Path]:
    """Files under ``folder`` whose suffix is ``suffix`` (any case), sorted."""
    suffix = suffix.lower()
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == suffix and p.is_file())


def inspected_files(source: Path, suffix: str) -> list[Path]:
    """The annotation files to inspect for a source's choices: the file, or a folder's first
    ``MAX_FILES_INSPECTED``."""
    files = [source] if source.is_file() else annotation_files(source, suffix)
    return files[:MAX_FILES_INSPECTED]


def file_key(path: Path, folder: Path) -> str:
    """The id part naming ``path``: relative to ``folder``, without suffix, '/' -> '__'."""
    return "__".join(path.relative_to(folder).with_suffix("").parts)


FileReader = Callable[[Path], tuple[list[SourceRow], list[ImportIssue]]]


def read_each(folder: Path, files: list[Path], read_one: FileReader) -> SourceRead:
    """Read every file of a folder; a file that cannot be used becomes one issue.

    Raises:
        WorkbenchError: no file gave any row (the first problems are quoted).
    """
    rows: list[SourceRow] = []
    issues: list[ImportIssue] = []
    for path in files:
        try:
            file_rows, file_issues = read_one(path)
        except FileSkipped as err:
            issues.append(ImportIssue(str(path), err.check, str(err), "file not imported"))
            continue
        rows += file_rows
        issues += file_issues
    require_rows(folder, rows, issues)
    return SourceRead(rows, issues, id_root=folder, name=folder.name)


def require_rows(source: Path, rows: list[SourceRow], issues: list[ImportIssue]) -> None:
    """Stop with the reasons when a source gave no segment at all.

    Raises:
        WorkbenchError: ``rows`` is empty; the first problems are quoted.
    """
    if rows:
        return
    shown = "\n".join(f"- {issue.item}: {issue.detail}" if issue.item not in issue.detail
                      else f"- {issue.detail}" for issue in issues[:MAX_LISTED_PROBLEMS])
    raise WorkbenchError(f"{source}: no transcribed segment could be read. First problems:\n"
                         f"{shown or '- (none reported)'}")


# --------------------------------------------------------------------------- recordings


def media_beside(path: Path, prefer: str = "") -> Path | None:
    """A recording with the same name as ``path`` (any audio extension) in its folder.

    Args:
        path: the annotation file (or the recording it names).
        prefer: the extension to take first when several share the name (".wav"); then
            the order of ``PREFERRED_AUDIO``.
    """
    found = {p.suffix.lower(): p for p in sorted(path.parent.glob(f"{_glob_escape(path.stem)}.*"))
             if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()}
    order = (prefer.lower(), *PREFERRED_AUDIO) if prefer else PREFERRED_AUDIO
    return next((found[ext] for ext in order if ext in found), None)


def audio_by_name(root: Path, max_depth: int | None = None) -> dict[str, list[Path]]:
    """Audio files under ``root`` by file name, each list sorted (nearest folders first).

    Args:
        root: the folder to search.
        max_depth: how many folder levels below ``root`` to search (None: all).
    """
    found: dict[str, list[Path]] = {}
    for folder, subfolders, names in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        if max_depth is not None and depth >= max_depth:
            subfolders.clear()
        subfolders.sort()
        for name in names:
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.setdefault(name, []).append(Path(folder) / name)
    return {name: sorted(paths, key=lambda p: (len(p.parts), p))
            for name, paths in found.items()}


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


# --------------------------------------------------------------------------- overlaps


def overlaps_within(rows: list[SourceRow]) -> list[ImportIssue]:
    """Segments of one tier that overlap an earlier one (the one reaching furthest)."""
    issues = []
    ordered = sorted(rows, key=lambda r: (r.start, r.end))
    reaching: SourceRow | None = None  # the earlier segment that ends last
    for row in ordered:
        if reaching is not None and row.start < reaching.end:
            issues.append(ImportIssue(
                row.item, "overlapping_annotations",
                f"{row.start:.3f}-{row.end:.3f} s overlaps {reaching.item.rsplit(', ', 1)[-1]}"
                f" ({reaching.start:.3f}-{reaching.end:.3f} s); both kept, the shared audio "
                "is in both clips", "kept (warning)"))
        if reaching is None or row.end > reaching.end:
            reaching = row
    return issues


def overlaps_between(file: Path, groups: dict[str, list[SourceRow]]) -> list[ImportIssue]:
    """Segments of different speakers' tiers of one recording that overlap in time.

    Overlapping speech usually means each clip holds the other speaker's voice too. One
    issue per overlapping pair, at most ``MAX_OVERLAPS_LISTED`` per file and then one line
    counting the rest.

    Args:
        file: the annotation file, for the summary line.
        groups: the rows of each tier (or speaker), by its name.
    """
    timed = sorted(((row, name) for name, rows in groups.items() for row in rows
                    if row.start is not None and row.end is not None),
                   key=lambda pair: (pair[0].start, pair[0].end))
    issues: list[ImportIssue] = []
    count = 0
    active: list[tuple[SourceRow, str]] = []  # earlier segments not yet ended
    for row, name in timed:
        active = [(other, o) for other, o in active if other.end > row.start]
        for other, other_name in active:
            if other_name == name:
                continue
            count += 1
            if len(issues) < MAX_OVERLAPS_LISTED:
                issues.append(ImportIssue(
                    row.item, "speaker_overlap",
                    f"{row.start:.3f}-{row.end:.3f} s overlaps "
                    f"{other.item.removeprefix(f'{file}: ')} "
                    f"({other.start:.3f}-{other.end:.3f} s) of another speaker; both kept, "
                    "but each clip may hold the other speaker's voice too. Set the clips "
                    "aside if the overlap is long", "kept (warning)"))
        active.append((row, name))
    if count > MAX_OVERLAPS_LISTED:
        issues.append(ImportIssue(
            str(file), "speaker_overlap",
            f"{count - MAX_OVERLAPS_LISTED} more overlaps between speakers in this file (the "
            f"first {MAX_OVERLAPS_LISTED} are listed); all kept", "kept (warning)"))
    return issues
