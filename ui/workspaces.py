"""Which workspaces a browser session may open: names under one root folder, never paths.

The server is started on a root folder (``workbench ui --root DIR``, by default the parent of
``-w WS``). A session opens a workspace by *name*; the name must match
:data:`WORKSPACE_NAME` and always maps to ``<root>/<name>``, so nothing typed in the browser
is ever used as a path on the server. The workspace given with ``-w`` is always available
under its folder name, wherever it lies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Files or folders that mark a folder as a workspace (any one is enough).
WORKSPACE_MARKERS = ("workbench.yaml", "manifests", "orthography.yaml", "runs")
MODELS_FOLDER = "models"  # default home of local checkpoints, under the root


@dataclass(frozen=True)
class WorkspaceRoot:
    """The folder whose workspaces the UI serves, and the operator's default workspace.

    Attributes:
        root: Folder holding the workspaces (``<root>/<name>``).
        default: The workspace given with ``-w`` (None: the session starts without one).
        models_dir: Folder of local checkpoints offered in the Train step (one per
            subfolder); None: ``<root>/models``.
    """

    root: Path
    default: Path | None = None
    models_dir: Path | None = None

    @classmethod
    def create(cls, root: str | Path | None = None, default: str | Path | None = None,
               models_dir: str | Path | None = None) -> WorkspaceRoot:
        """Resolve the folders given on the command line (the operator's, not a user's).

        Args:
            root: The root folder; None: the default workspace's parent, else ./workspaces.
            default: The default workspace folder (created when missing).
            models_dir: Folder of local checkpoints; None: ``<root>/models``.
        """
        default_path = Path(default).expanduser().resolve() if default else None
        if root is None:
            root = default_path.parent if default_path else Path("workspaces")
        root_path = Path(root).expanduser().resolve()
        if default_path is not None:
            default_path.mkdir(parents=True, exist_ok=True)
        models = Path(models_dir).expanduser().resolve() if models_dir else None
        return cls(root_path, default_path, models)

    @property
    def default_name(self) -> str:
        """Name of the default workspace ("" when there is none)."""
        return self.default.name if self.default else ""

    @property
    def models_folder(self) -> Path:
        """Where local checkpoints are looked for."""
        return self.models_dir or self.root / MODELS_FOLDER

    def names(self) -> list[str]:
        """The default workspace first, then every workspace folder under the root, sorted."""
        found = []
        if self.root.is_dir():
            found = sorted(p.name for p in self.root.iterdir()
                           if p.is_dir() and WORKSPACE_NAME.fullmatch(p.name)
                           and p.name != MODELS_FOLDER
                           and any((p / marker).exists() for marker in WORKSPACE_MARKERS))
        head = [self.default_name] if self.default else []
        return head + [name for name in found if name not in head]

    def resolve(self, name: str | None) -> Workspace:
        """The workspace a session named; it must exist.

        Raises:
            WorkbenchError: No workspace is open, the name is not allowed, or it does not
                exist.
        """
        if not name:
            raise WorkbenchError("No workspace is open. Choose or create one at the top of "
                                 "the page.")
        path = self._path(name)
        if not path.is_dir():
            raise WorkbenchError(f"There is no workspace {name!r}; create it first.")
        return Workspace.at(path)

    def open(self, name: str, *, create: bool = False) -> Workspace:
        """Open the workspace ``name``, creating its folder when asked.

        Raises:
            WorkbenchError: The name is not allowed, or it does not exist and ``create`` is
                False.
        """
        name = (name or "").strip()
        path = self._path(name)
        if not path.is_dir():
            if not create:
                raise WorkbenchError(f"There is no workspace {name!r}. Tick 'create' to start "
                                     "a new one.")
            path.mkdir(parents=True)
        return Workspace.at(path)

    def _path(self, name: str) -> Path:
        if self.default is not None and name == self.default_name:
            return self.default
        if not WORKSPACE_NAME.fullmatch(name or "") or name == MODELS_FOLDER:
            raise WorkbenchError(
                f"{name!r} is not a workspace name: use 1 to 64 letters, digits, '-' or '_' "
                f"(and not {MODELS_FOLDER!r})."
            )
        return self.root / name
