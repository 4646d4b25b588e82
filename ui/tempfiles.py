"""Where the page's temporary files live: under the served root, never in the system's /tmp.

Recordings of a community's language are sensitive, so nothing the page receives or hands
out is left in a shared temporary folder::

    <root>/.workbench-tmp/                  private to the server's user (mode 0700)
        gradio/                             Gradio's uploads and the copies it serves
            <hash>/<file>                   an uploaded file until the upload copied it
            workbench-export-<random>/      one export (model zip, ONNX zip, report)

The dot folder is never a workspace (workspace names have no dot). An upload's files are
removed from ``gradio/`` once they are copied into the workspace
(:func:`remove_gradio_copies`); Gradio deletes what it served after a day and everything it
made when the server stops (``delete_cache`` in ``ui.app``); entries left by a server that
was killed are removed the next time a server starts (:func:`use_private_temp_dir`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

TEMP_FOLDER = ".workbench-tmp"
GRADIO_FOLDER = "gradio"
GRADIO_TEMP_VARIABLE = "GRADIO_TEMP_DIR"
EXPORT_PREFIX = "workbench-export-"
MAX_AGE_S = 24 * 3600  # what Gradio keeps at most (ui.app.CACHE_CLEANUP), and so do we
# Gradio modules that read GRADIO_TEMP_DIR once, at import (the multipart parser and the
# media routes write there): they get the private folder too.
TEMP_DIR_MODULES = ("gradio.route_utils", "gradio.routes", "gradio.screen_recording_utils",
                    "gradio.mcp")


def use_private_temp_dir(root: Path) -> Path:
    """Put Gradio's temporary files under ``<root>/.workbench-tmp/gradio`` (call before the
    app is built: Gradio reads the folder when its components and routes are made).

    One process serves one root: Gradio also reads the folder whenever it checks an upload,
    so a second call in the same process (a second server, as in tests) keeps the folder of
    the first rather than make the first server refuse its own uploads. Entries older than
    :data:`MAX_AGE_S` (left by a server that did not stop cleanly) are removed on the way.

    Args:
        root: The served root.

    Returns:
        Gradio's temporary folder, created with mode 0700.
    """
    folder = _folder_in_use() or Path(root).resolve() / TEMP_FOLDER / GRADIO_FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for private in (folder.parent, folder):
        private.chmod(0o700)
    os.environ[GRADIO_TEMP_VARIABLE] = str(folder)
    for name in TEMP_DIR_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "DEFAULT_TEMP_DIR"):
            module.DEFAULT_TEMP_DIR = str(folder)
    remove_stale(folder)
    return folder


def _folder_in_use() -> Path | None:
    """The private folder an earlier call of this process chose, if it still exists."""
    current = os.environ.get(GRADIO_TEMP_VARIABLE)
    if not current:
        return None
    folder = Path(current)
    ours = folder.name == GRADIO_FOLDER and folder.parent.name == TEMP_FOLDER
    return folder if ours and folder.is_dir() else None


def gradio_temp_dir() -> Path:
    """The folder Gradio keeps uploads and served files in (as Gradio itself finds it)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def remove_gradio_copies(paths: Iterable[str | Path | None]) -> int:
    """Delete Gradio's temporary copies of uploaded files, and their folders once empty.

    The paths come from the browser, so only files inside Gradio's temporary folder are
    deleted; any other path is left alone.

    Returns:
        How many files were deleted.
    """
    base = gradio_temp_dir()
    removed = 0
    for path in paths:
        target = _inside(base, path)
        if target is None or not target.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
            removed += 1
        with contextlib.suppress(OSError):  # not empty: another file of the same content
            if target.parent != base:
                target.parent.rmdir()
    return removed


def _inside(base: Path, path: str | Path | None) -> Path | None:
    """``path`` with its links resolved, if it lies strictly inside ``base``."""
    if not path:
        return None
    resolved = Path(os.path.realpath(path))
    return resolved if resolved != base and resolved.is_relative_to(base) else None


def new_export_folder() -> Path:
    """A fresh folder for one export, inside Gradio's temporary folder.

    Gradio serves files only from that folder (it would copy anything else there first), so
    an export written here is handed out as it is, once. Export folders older than
    :data:`MAX_AGE_S` are removed on the way.
    """
    base = gradio_temp_dir()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in base.glob(f"{EXPORT_PREFIX}*"):
        _remove_if_older(old, MAX_AGE_S)
    return Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX, dir=base))


def remove_stale(folder: Path, max_age_s: float = MAX_AGE_S) -> None:
    """Remove the entries of ``folder`` whose newest file is older than ``max_age_s``."""
    for entry in list(folder.iterdir()):
        _remove_if_older(entry, max_age_s)


def _remove_if_older(entry: Path, max_age_s: float) -> None:
    try:
        if time.time() - _newest_change(entry) <= max_age_s:
            return
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    except OSError:
        return


def _newest_change(entry: Path) -> float:
    """The latest modification time of ``entry`` and everything under it."""
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [p.lstat().st_mtime for p in entry.rglob("*")]
    return max(times)
