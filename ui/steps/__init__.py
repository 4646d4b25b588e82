"""What the page's steps do, as plain functions: workspace in, tables and text out.

One module per step, named as its tab in ``ui/tabs``: the tab builds the widgets, the module
here does the work by calling the ``workbench`` library. ``overview`` says where a workspace
stands; ``utterances`` finds and plays the clips that several steps list. The upload side of
step 1 is ``ui/uploads.py``; training jobs are ``ui/jobs.py``.

Nothing here imports Gradio: every function takes a :class:`~workbench.workspace.Workspace`
and plain values and returns strings, pandas DataFrames or small dataclasses that the tabs
put into widgets. Bad input raises :class:`~workbench.errors.WorkbenchError` with a message
for the user; the tab shows it in the page. Names coming from the page (runs, utterances) are
only ever looked up among what exists (``workbench.run.find_run``), never joined into paths;
a run's files and state are asked of ``workbench.run``, never spelled here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.run import Run, find_run
from workbench.workspace import Workspace


def chosen_run(ws: Workspace, run: str | None, *, with_model: bool = False) -> Run:
    """The run the user chose on the page, looked up by name among the workspace's runs.

    Raises:
        WorkbenchError: No run chosen, no such run, or (``with_model``) it has no model yet.
    """
    if not run:
        raise WorkbenchError("Choose a run first.")
    return find_run(ws, run, with_model=with_model, allow_path=False)


def read_json(path: Path) -> Any:
    """A JSON file the library wrote (audit, import or vocabulary report), or None when it
    is missing or unreadable (the step then offers to make it again)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
