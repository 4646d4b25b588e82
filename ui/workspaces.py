"""Which workspaces a browser session may open: names under one root folder, never paths.

The server is started on a root folder (``workbench ui --root DIR``, by default the parent of
``-w WS``). A session opens a workspace by *name*; the name must match
:data:`WORKSPACE_NAME` and always maps to ``<root>/<name>``, so nothing typed in the browser
is ever used as a path on the server. The workspace given with ``-w`` is always available
under its folder name, wherever it lies.

Who sees what: the page is a single-user local tool. Every session of one server (every tab,
and everyone who can open the page) works on the same workspaces under the root, and can
open, change, export or stop the training of any of them; the workspace a session has open
is only its current choice. With several accounts (``--auth`` given more than once), each
user has their own root, ``<root>/<user>/``: a handler runs inside :func:`handling` for the
logged-in user, and every name resolves under that user's folder, so users never see or
touch each other's workspaces.

What the page says: :func:`page_text` names files relative to the workspace (or by file
name), never by the server's absolute paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Files or folders that mark a folder as a workspace (any one is enough).
WORKSPACE_MARKERS = ("workbench.yaml", "manifests", "orthography.yaml", "runs")
MODELS_FOLDER = "models"  # default home of local checkpoints, under the root
# An absolute path left in a message (POSIX with two or more parts, or a Windows drive).
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.~-])/(?:[^\s/'\"`<>]+/)+[^\s/'\"`<>]+"
                            r"|\b[A-Za-z]:\\(?:[^\s\\'\"`<>]+\\)*[^\s\\'\"`<>]+")
_PATH_END = r"(?=$|[\s'\"`:;,.)<>])"


@dataclass
class Call:
    """One handler call of a browser session: who asks, and the folders it was given.

    Attributes:
        user: The logged-in user (None without ``--auth``).
        folders: Served folders the call resolved -> how the page names the folder itself
            and what stands before a path inside it ("" for a workspace: relative to it).
    """

    user: str | None = None
    folders: dict[Path, tuple[str, str]] = field(default_factory=dict)


_CALL: ContextVar[Call | None] = ContextVar("workbench_ui_call", default=None)


@contextmanager
def handling(user: str | None) -> Iterator[Call]:
    """Run a handler for ``user``: workspaces resolve under their folder, messages name
    files relative to what it opened (see :func:`page_text`)."""
    call = Call(user)
    token = _CALL.set(call)
    try:
        yield call
    finally:
        _CALL.reset(token)


def current_call() -> Call | None:
    """The handler call running now (None outside one)."""
    return _CALL.get()


def page_text(message: str) -> str:
    """``message`` as the page may show it: no absolute server path left in it.

    Paths inside the folders this call resolved (its workspace, the user's root) become
    relative to them; any other absolute path (Gradio's upload cache, a library's files)
    is cut to its last part, the file name the user knows.
    """
    call = _CALL.get()
    folders = call.folders if call else {}
    for folder in sorted(folders, key=lambda f: len(str(f)), reverse=True):
        name, prefix = folders[folder]
        for form in dict.fromkeys((str(folder), str(folder.resolve()))):
            message = message.replace(form + "/", prefix)
            message = re.sub(re.escape(form) + _PATH_END, name, message)
    return _ABSOLUTE_PATH.sub(lambda m: _last_part(m.group()), message)


def _last_part(path: str) -> str:
    return PureWindowsPath(path).name if "\\" in path else path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WorkspaceRoot:
    """The folder whose workspaces the UI serves, and the operator's default workspace.

    Attributes:
        root: Folder holding the workspaces (``<root>/<name>``).
        default: The workspace given with ``-w`` (None: the session starts without one).
        models_dir: Folder of local checkpoints offered in the Train step (one per
            subfolder); None: ``<root>/models``.
        per_user: Each logged-in user works under ``<root>/<user>/`` (several accounts).
    """

    root: Path
    default: Path | None = None
    models_dir: Path | None = None
    per_user: bool = False

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

    @property
    def home(self) -> Path:
        """The folder this call's workspaces live in: the root, or ``<root>/<user>``.

        Raises:
            WorkbenchError: Users have their own folders and no user is logged in.
        """
        if not self.per_user:
            return self.root
        call = _CALL.get()
        user = call.user if call else None
        if not user or not WORKSPACE_NAME.fullmatch(user) or user == MODELS_FOLDER:
            raise WorkbenchError("Log in to see your workspaces (reload the page).")
        return self.root / user

    def names(self) -> list[str]:
        """The default workspace first, then every workspace folder under the home, sorted
        (none when there is no home: users have their own and nobody is logged in)."""
        try:
            home = self.home
        except WorkbenchError:
            return []
        found = []
        if home.is_dir():
            found = sorted(p.name for p in home.iterdir()
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
        return self._served(path)

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
        return self._served(path)

    def _path(self, name: str) -> Path:
        if self.default is not None and name == self.default_name and not self.per_user:
            return self.default
        if not WORKSPACE_NAME.fullmatch(name or "") or name == MODELS_FOLDER:
            raise WorkbenchError(
                f"{name!r} is not a workspace name: use 1 to 64 letters, digits, '-' or '_' "
                f"(and not {MODELS_FOLDER!r})."
            )
        return self.home / name

    def _served(self, path: Path) -> Workspace:
        """The workspace at ``path``, noted for this call's messages (see page_text)."""
        call = _CALL.get()
        if call is not None:
            call.folders.setdefault(self.home, ("the workspaces folder", ""))
            call.folders.setdefault(self.models_folder, (MODELS_FOLDER, MODELS_FOLDER + "/"))
            call.folders[path] = (path.name, "")
        return Workspace.at(path)
