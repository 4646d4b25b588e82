"""Source-format recipes: each module turns one kind of source into workspace manifests.

Every recipe module has ``read_<format>(source, **options) -> SourceRead`` (parse only, no
audio decoded) and ``prepare_<format>(source, workspace, **options) -> ImportResult``. Readers
are registered here by name, so ``workbench prepare --format NAME`` finds them, and
``prepare_sources`` imports several sources (of any formats) into one workspace.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from data_recipes.common import ImportResult, SourceRead, import_sources
from data_recipes.table import read_audiofolder, read_csv, read_tsv
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

Reader = Callable[..., SourceRead]

READERS: dict[str, Reader] = {
    "audiofolder": read_audiofolder,
    "csv": read_csv,
    "tsv": read_tsv,
}
RECIPES = READERS  # the registered format names


def detect_format(source: Path) -> str:
    """Guess the recipe for ``source``; raise a readable error when it is ambiguous."""
    source = Path(source)
    if source.is_dir():
        if any((source / name).is_file() for name in ("metadata.csv", "metadata.tsv")):
            return "audiofolder"
        raise WorkbenchError(
            f"{source}: cannot tell the format of this folder (no metadata.csv or "
            "metadata.tsv). Choose one with --format (" + ", ".join(READERS) + ")."
        )
    suffix = source.suffix.lower().lstrip(".")
    if suffix in ("csv", "tsv"):
        return suffix
    if not source.exists():
        raise WorkbenchError(f"{source}: no such file or folder.")
    raise WorkbenchError(
        f"{source}: cannot tell the format from its name. Choose one with --format "
        "(" + ", ".join(READERS) + ")."
    )


def get_reader(name: str) -> Reader:
    """The reader registered as ``name``."""
    try:
        return READERS[name]
    except KeyError:
        raise WorkbenchError(
            f"Unknown format {name!r}; choose one of {', '.join(READERS)}."
        ) from None


get_recipe = get_reader


def read_source(source: Path, fmt: str | None = None, **options) -> SourceRead:
    """Read one source with its reader, passing only the options that reader takes."""
    fmt = fmt or detect_format(source)
    reader = get_reader(fmt)
    accepted = inspect.signature(reader).parameters
    read = reader(Path(source), **{k: v for k, v in options.items()
                                   if k in accepted and v is not None})
    read.name = read.name or Path(source).stem
    return read


def prepare_sources(sources: list[Path], workspace: Workspace, *, fmt: str | None = None,
                    seed: int = 0, progress: bool = True, **options) -> ImportResult:
    """Import ``sources`` (each of ``fmt``, or detected) into one workspace."""
    reads = [read_source(source, fmt, **options) for source in sources]
    return import_sources(reads, workspace, seed=seed, progress=progress)
