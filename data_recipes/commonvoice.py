"""Mozilla Common Voice: one language folder of a Common Voice release.

Layout read (the folder given, or a release folder holding exactly one language)::

    cv-corpus-17.0-2024-03-15/
      qu/
        validated.tsv      every clip the community validated
        train.tsv          Common Voice's own splits: subsets of validated.tsv, one
        dev.tsv            recording per sentence, speakers kept apart
        test.tsv
        other.tsv          not yet validated           } never imported
        invalidated.tsv    voted down by the community }
        clips/
          common_voice_qu_12345.mp3

Each TSV has a header row and the columns ``client_id path sentence up_votes down_votes age
gender accents locale segment`` (newer releases add ``variant``, ``sentence_id``...). Fields
are tab-separated and never quoted. ``client_id`` is the speaker and ``path`` the clip's
file name in ``clips/``; the clip's stem is the utterance id.
"""

from __future__ import annotations

import csv
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

SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
VALIDATED = "validated.tsv"
NEVER_IMPORTED = ("invalidated.tsv", "other.tsv")  # rows the community rejected or never checked
REQUIRED_COLUMNS = ("path", "sentence")


def language_folder(source: Path) -> Path | None:
    """The Common Voice language folder at or directly under ``source``, if there is one.

    Raises:
        WorkbenchError: ``source`` is a release folder holding several languages.
    """
    source = Path(source)
    if _is_language_folder(source):
        return source
    if not source.is_dir():
        return None
    found = sorted(p for p in source.iterdir() if p.is_dir() and _is_language_folder(p))
    if len(found) > 1:
        raise WorkbenchError(
            f"{source}: a Common Voice release with several languages "
            f"({', '.join(p.name for p in found)}); give one language folder, e.g. "
            f"{found[0]}."
        )
    return found[0] if found else None


def _is_language_folder(folder: Path) -> bool:
    if not (folder / "clips").is_dir():
        return (folder / VALIDATED).is_file()
    return (folder / VALIDATED).is_file() or (folder / SPLIT_FILES["train"]).is_file()


def read_commonvoice(source: Path, *, use_splits: bool = True) -> SourceRead:
    """Read a Common Voice language folder (see the module docstring).

    With ``use_splits`` and ``train.tsv``, ``dev.tsv`` and ``test.tsv`` present, only their
    rows are read, each keeping Common Voice's split; validated clips in none of them are
    counted in one ``validated_not_in_splits`` issue. Otherwise every row of
    ``validated.tsv`` is read and the workbench makes a speaker-disjoint split.
    ``invalidated.tsv`` and ``other.tsv`` are never read: their clips were voted down or
    never checked. Malformed rows are reported as ``file:line``; a missing clip is reported
    by the importer.

    Args:
        source: The language folder (``qu/``) or a release folder holding one language.
        use_splits: Keep Common Voice's own train/dev/test splits when it has them.

    Returns:
        The rows (``client_id`` as speaker, the clip stem as utterance id) and the issues.

    Raises:
        WorkbenchError: ``source`` is not a Common Voice language folder.
    """
    folder = language_folder(Path(source))
    if folder is None:
        raise WorkbenchError(
            f"{source}: not a Common Voice language folder: it needs validated.tsv (or "
            "train.tsv, dev.tsv and test.tsv) and a clips/ folder."
        )
    split_files = {split: folder / name for split, name in SPLIT_FILES.items()}
    if use_splits and all(path.is_file() for path in split_files.values()):
        rows, issues = _read_splits(folder, split_files)
    elif (folder / VALIDATED).is_file():
        rows, issues = read_cv_tsv(folder / VALIDATED)
    else:
        raise WorkbenchError(
            f"{folder}: no validated.tsv to read. Import with Common Voice's own splits "
            "(train.tsv, dev.tsv and test.tsv all present), or add validated.tsv."
        )
    return SourceRead(rows, issues, id_root=folder / "clips", name=folder.name)


def prepare_commonvoice(source: Path, workspace: Workspace, *, use_splits: bool = True,
                        seed: int = 0, progress: bool = True) -> ImportResult:
    """Import a Common Voice language folder into ``workspace`` (see ``read_commonvoice``)."""
    return import_sources([read_commonvoice(source, use_splits=use_splits)], workspace,
                          seed=seed, progress=progress)


def _read_splits(folder: Path,
                 split_files: dict[str, Path]) -> tuple[list[SourceRow], list[ImportIssue]]:
    """Rows of train/dev/test.tsv with their split; a clip listed twice is kept once."""
    rows, issues = [], []
    seen: dict[str, str] = {}
    for split, path in split_files.items():
        split_rows, split_issues = read_cv_tsv(path, split=split)
        issues += split_issues
        for row in split_rows:
            if row.utterance_id in seen:
                issues.append(ImportIssue(
                    row.item, "clip_in_several_splits",
                    f"clip {row.audio.name} is already in {seen[row.utterance_id]}.tsv; "
                    "kept there only, so no clip is both trained and tested on"))
                continue
            seen[row.utterance_id] = split
            rows.append(row)
    issues += _validated_left_out(folder / VALIDATED, seen)
    return rows, issues


def _validated_left_out(validated: Path, in_splits: dict[str, str]) -> list[ImportIssue]:
    """One issue counting the validated clips that Common Voice's splits leave out."""
    if not validated.is_file():
        return []
    rows, _ = read_cv_tsv(validated)
    left_out = sum(1 for row in rows if row.utterance_id not in in_splits)
    if not left_out:
        return []
    return [ImportIssue(
        str(validated), "validated_not_in_splits",
        f"{left_out} validated clips are in none of train/dev/test.tsv (Common Voice keeps "
        "one recording per sentence in its splits); import with --no-source-splits "
        "(use_splits=False) to use every validated clip and let the workbench split them")]


def read_cv_tsv(table: Path, *, split: str = "") -> tuple[list[SourceRow], list[ImportIssue]]:
    """Parse one Common Voice TSV; malformed rows become issues naming file and line.

    Args:
        table: ``validated.tsv``, ``train.tsv``...
        split: The split to give every row (``""``: let the workbench split).

    Returns:
        The rows and the issues.

    Raises:
        WorkbenchError: The file is not UTF-8 or lacks the ``path``/``sentence`` columns.
    """
    if table.name in NEVER_IMPORTED:
        raise WorkbenchError(f"{table}: clips in {table.name} are not imported (they were "
                             "voted down or never validated).")
    lines = _read_lines(table)
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise WorkbenchError(
            f"{table}:1: no {' or '.join(missing)} column; a Common Voice TSV has the "
            f"columns client_id, path, sentence... Columns found: {', '.join(header)}."
        )
    rows, issues = [], []
    for line_number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        row = _row(record, header, table, line_number, split)
        (rows if isinstance(row, SourceRow) else issues).append(row)
    return rows, issues


def _read_lines(table: Path) -> list[str]:
    return read_utf8_lines(table, "Common Voice TSVs are UTF-8, so the file may be "
                                  "damaged: download the release again.")


def _row(record: list[str], header: list[str], table: Path, line_number: int,
         split: str) -> SourceRow | ImportIssue:
    item = f"{table}:{line_number}"
    if len(record) != len(header):
        return ImportIssue(item, "malformed_row",
                           f"{len(record)} tab-separated fields where the header has "
                           f"{len(header)}; check for a tab or line break in the sentence")
    values = dict(zip(header, record, strict=True))
    clip = values["path"].strip()
    if not clip:
        return ImportIssue(item, "malformed_row", "the path (clip file name) is empty")
    audio = table.parent / "clips" / clip
    speaker = values.get("client_id", "").strip()
    return SourceRow(audio=audio, text=values["sentence"], speaker=speaker, item=item,
                     line=line_number, utterance_id=Path(clip).stem, split=split)
