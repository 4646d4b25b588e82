"""Source-format recipes: each module turns one kind of source into workspace manifests.

Every recipe is ``prepare_<format>(source, workspace, **options) -> ImportResult`` and is
registered here by name, so ``workbench prepare --format NAME`` can find it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from data_recipes.common import ImportResult
from data_recipes.table import prepare_audiofolder, prepare_csv, prepare_tsv
from workbench.errors import WorkbenchError

Recipe = Callable[..., ImportResult]

RECIPES: dict[str, Recipe] = {
    "audiofolder": prepare_audiofolder,
    "csv": prepare_csv,
    "tsv": prepare_tsv,
}


def detect_format(source: Path) -> str:
    """Guess the recipe for ``source``; raise a readable error when it is ambiguous."""
    source = Path(source)
    if source.is_dir():
        if any((source / name).is_file() for name in ("metadata.csv", "metadata.tsv")):
            return "audiofolder"
        raise WorkbenchError(
            f"{source}: cannot tell the format of this folder (no metadata.csv or "
            "metadata.tsv). Choose one with --format (" + ", ".join(RECIPES) + ")."
        )
    suffix = source.suffix.lower().lstrip(".")
    if suffix in ("csv", "tsv"):
        return suffix
    if not source.exists():
        raise WorkbenchError(f"{source}: no such file or folder.")
    raise WorkbenchError(
        f"{source}: cannot tell the format from its name. Choose one with --format "
        "(" + ", ".join(RECIPES) + ")."
    )


def get_recipe(name: str) -> Recipe:
    """The recipe registered as ``name``."""
    try:
        return RECIPES[name]
    except KeyError:
        raise WorkbenchError(
            f"Unknown format {name!r}; choose one of {', '.join(RECIPES)}."
        ) from None
