"""Source-format recipes: each module turns one kind of source into workspace manifests.

Every recipe module has ``read_<format>(source, **options) -> SourceRead`` (parse only, no
audio decoded) and ``prepare_<format>(source, workspace, **options) -> ImportResult``. Readers
are registered here by name, so ``workbench prepare --format NAME`` finds them, and
``prepare_sources`` imports several sources (of any formats) into one workspace. The options
the readers take are described once, in ``data_recipes.options``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from data_recipes.archive import archive_stem, extract_archive, is_archive
from data_recipes.common import ImportResult, SourceRead, import_sources
from data_recipes.commonvoice import language_folder, read_commonvoice
from data_recipes.elan import read_elan
from data_recipes.hf_dataset import is_dataset_folder, is_hub_id, read_hf_dataset
from data_recipes.kaldi import is_kaldi_dir, read_kaldi
from data_recipes.table import METADATA_NAMES, read_audiofolder, read_csv, read_tsv
from data_recipes.textgrid import read_textgrid
from data_recipes.unknown import unknown_folder_error
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

Reader = Callable[..., SourceRead]

READERS: dict[str, Reader] = {
    "audiofolder": read_audiofolder,
    "csv": read_csv,
    "tsv": read_tsv,
    "commonvoice": read_commonvoice,
    "kaldi": read_kaldi,
    "elan": read_elan,
    "textgrid": read_textgrid,
    "hf-dataset": read_hf_dataset,
}
RECIPES = READERS  # the registered format names
ARCHIVE = "archive"  # detect_format's answer for a zip/tar file: its content is detected
SOURCES_DIR = "sources"  # where archives are extracted (and dataset audio written) in a workspace
ANNOTATION_SUFFIXES = {"eaf": "elan", "textgrid": "textgrid"}  # suffix -> format


def detect_format(source: Path) -> str:
    """Guess the recipe for ``source``; raise a readable error when it is ambiguous."""
    source = Path(source)
    if source.is_dir():
        if is_dataset_folder(source):
            return "hf-dataset"
        if any((source / name).is_file() for name in METADATA_NAMES):
            return "audiofolder"
        if language_folder(source) is not None:
            return "commonvoice"
        if is_kaldi_dir(source):
            return "kaldi"
        annotation_format = _annotation_folder_format(source)
        if annotation_format:
            return annotation_format
        raise unknown_folder_error(source, list(READERS))
    suffix = source.suffix.lower().lstrip(".")
    if suffix in ("csv", "tsv"):
        return suffix
    if suffix in ANNOTATION_SUFFIXES:
        return ANNOTATION_SUFFIXES[suffix]
    if not source.exists():
        if is_hub_id(source):  # user/name: read from the Hub (a clear message offline)
            return "hf-dataset"
        raise WorkbenchError(f"{source}: no such file or folder.")
    if is_archive(source):
        return ARCHIVE
    raise WorkbenchError(
        f"{source}: cannot tell the format from its name. Choose one with --format "
        "(" + ", ".join(READERS) + ")."
    )


def _annotation_folder_format(folder: Path) -> str | None:
    """'elan' or 'textgrid' for a folder of annotation files; both kinds: ask."""
    found = {ANNOTATION_SUFFIXES[p.suffix.lower().lstrip(".")] for p in folder.rglob("*")
             if p.suffix.lower().lstrip(".") in ANNOTATION_SUFFIXES}
    if len(found) > 1:
        raise WorkbenchError(
            f"{folder}: this folder holds both ELAN (.eaf) and Praat (.TextGrid) files. "
            "Choose which to import with --format elan or --format textgrid."
        )
    return found.pop() if found else None


def source_path(text: str) -> Path:
    """A source as given on the command line: a local path, resolved; a Hub dataset id
    (``user/name`` where no such local path exists) as it is."""
    path = Path(text).expanduser()
    return path if is_hub_id(path) else path.resolve()


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``."""
    try:
        return READERS[name]
    except KeyError:
        raise WorkbenchError(
            f"Unknown format {name!r}; choose one of {', '.join(READERS)}."
        ) from None


get_recipe = get_reader


def read_source(source: Path, fmt: str | None = None, *, workspace: Workspace | None = None,
                archive_folder: str | None = None, **options) -> SourceRead:
    """Read one source with its reader, passing only the options that reader takes.

    An archive (zip, tar...) is first extracted safely into ``<workspace>/sources/`` (see
    ``data_recipes.archive``); its content is then read like a folder, as ``fmt`` or as
    detected.

    Args:
        source: A folder, file or archive.
        fmt: A registered format name (default: detected).
        workspace: The workspace an archive is extracted into, and a dataset's embedded
            audio written into (needed for those only).
        archive_folder: Folder name under ``sources/`` for an archive (default: its stem).
        **options: Reader options (``text_column``, ``use_splits``...); each reader gets
            those it takes.

    Returns:
        What the reader read.

    Raises:
        WorkbenchError: Unknown or undetectable format, unsafe archive, unreadable source.
    """
    source = Path(source)
    if fmt == ARCHIVE or (source.is_file() and is_archive(source)):
        return _read_archive(source, None if fmt == ARCHIVE else fmt, workspace,
                             archive_folder, options)
    fmt = fmt or detect_format(source)
    reader = get_reader(fmt)
    accepted = inspect.signature(reader).parameters
    if "workspace" in accepted:  # a reader that writes files (embedded audio) into it
        options = {**options, "workspace": workspace}
    read = reader(source, **{k: v for k, v in options.items()
                             if k in accepted and v is not None})
    read.name = read.name or source.stem
    return read


def _read_archive(archive: Path, fmt: str | None, workspace: Workspace | None,
                  folder_name: str | None, options: dict) -> SourceRead:
    """Extract ``archive`` into the workspace, then read its content."""
    if workspace is None:
        raise WorkbenchError(
            f"{archive}: an archive is extracted into the workspace before it is read; "
            "give the workspace (workbench prepare ARCHIVE -w WORKSPACE)."
        )
    content = extract_archive(archive, workspace.root / SOURCES_DIR, folder_name=folder_name)
    read = read_source(content, fmt or _detect_content(content, archive), **options)
    read.name = folder_name or archive_stem(archive)
    return read


def _detect_content(content: Path, archive: Path) -> str:
    """The format of an extracted archive: a known folder layout, or its single table."""
    try:
        return detect_format(content)
    except WorkbenchError as err:
        tables = [p for p in content.iterdir() if p.suffix.lower() in (".csv", ".tsv")]
        if len(tables) == 1:
            raise WorkbenchError(
                f"{archive}: holds one table, {tables[0].name}, but no metadata.csv; rename "
                "it metadata.csv (columns file_name,transcription[,speaker]; audio paths "
                "relative to it) and make the archive again, or extract it and give the table."
            ) from err
        raise WorkbenchError(f"{archive} (extracted to {content}): {err}") from err


def _archive_folders(sources: list[Path]) -> list[str | None]:
    """A distinct extraction folder name for each archive source (None for the others)."""
    used: set[str] = set()
    names: list[str | None] = []
    for source in sources:
        if not is_archive(Path(source)):
            names.append(None)
            continue
        stem = candidate = archive_stem(Path(source))
        count = 1
        while candidate in used:
            count += 1
            candidate = f"{stem}-{count}"
        used.add(candidate)
        names.append(candidate)
    return names


def prepare_sources(sources: list[Path], workspace: Workspace, *, fmt: str | None = None,
                    seed: int = 0, progress: bool = True, settings: dict | None = None,
                    **options) -> ImportResult:
    """Import ``sources`` (each of ``fmt``, or detected) into one workspace.

    Archives among them are extracted into ``<workspace>/sources/<archive stem>`` first
    (``<stem>-2``... when two archives share a stem). The new data replaces the workspace's
    in one step (an interrupted import leaves it as it was).

    Args:
        settings: Choices recorded in workbench.yaml together with the new data.
    """
    reads = [read_source(source, fmt, workspace=workspace, archive_folder=folder, **options)
             for source, folder in zip(sources, _archive_folders(sources), strict=True)]
    return import_sources(reads, workspace, seed=seed, progress=progress, settings=settings)
