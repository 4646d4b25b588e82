"""Which workspaces a browser session may open: names under one root folder, never paths.

The server is started on a root folder (``workbench ui --root DIR``, by default the parent of
``-w WS``). A session opens a workspace by its *folder name*, which :func:`is_folder_name`
accepts only as one safe path component (letters of any script, marks, digits, '-' and '_';
NFC) and which always maps to ``<root>/<name>``, so nothing typed in the browser is ever used
as a path on the server. A new workspace gets its folder name from the name the user typed
(:func:`folder_name`: "Māori project" -> ``Māori-project``); that name, as typed, is kept in
the workspace (:data:`TITLE_FILE`) and shown in the page. The workspace given with ``-w`` is
always available under its folder name, wherever it lies.

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
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from workbench.errors import WorkbenchError
from workbench.fsio import write_text_atomic
from workbench.workspace import Workspace

USER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a user's folder (several accounts)
MAX_NAME = 64  # characters of a workspace's name and folder name
TITLE_FILE = "title.txt"  # the workspace's name as the user typed it
# Files or folders that mark a folder as a workspace (any one is enough).
WORKSPACE_MARKERS = (TITLE_FILE, "workbench.yaml", "manifests", "orthography.yaml", "runs")
NAME_RULE = ("use letters (of any script), digits, spaces, '-' or '_', at most "
             f"{MAX_NAME} characters")
MODELS_FOLDER = "models"  # default home of local checkpoints, under the root
# An absolute path left in a message (POSIX with two or more parts, or a Windows drive).
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.~-])/(?:[^\s/'\"`<>]+/)+[^\s/'\"`<>]+"
                            r"|\b[A-Za-z]:\\(?:[^\s\\'\"`<>]+\\)*[^\s\\'\"`<>]+")
_PATH_END = r"(?=$|[\s'\"`:;,.)<>])"


def is_folder_name(name: str) -> bool:
    """True for a workspace folder name: one safe path component of letters (any script),
    marks, digits, '-' and '_', in NFC, starting with a letter, digit or '_'."""
    if not name or len(name) > MAX_NAME or unicodedata.normalize("NFC", name) != name:
        return False
    if not (_name_char(name[0]) and unicodedata.category(name[0])[0] != "M"
            and name[0] != "-"):
        return False
    return all(_name_char(c) for c in name)


def _name_char(char: str) -> bool:
    return char in "-_" or unicodedata.category(char)[0] in "LMN"


def folder_name(title: str) -> str:
    """The folder name for a workspace called ``title`` (NFC; spaces become '-'; other
    punctuation is left out).

    Raises:
        WorkbenchError: Nothing of the name is left, or it is too long.
    """
    title = unicodedata.normalize("NFC", (title or "").strip())
    if len(title) > MAX_NAME:
        raise WorkbenchError(f"{title[:20]}… is too long for a workspace name: {NAME_RULE}.")
    if title.startswith(".") or any(c in "/\\" or not c.isprintable() for c in title):
        raise WorkbenchError(f"{title!r} is not a workspace name (no '/', '\\' or leading "
                             f"'.'): {NAME_RULE}.")
    kept = "".join(c if _name_char(c) else "-" if c.isspace() else "" for c in title)
    kept = re.sub("-{2,}", "-", kept).strip("-")
    while kept and not is_folder_name(kept):  # e.g. it starts with a mark
        kept = kept[1:]
    if not kept:
        raise WorkbenchError(f"{title!r} cannot be a workspace name: {NAME_RULE}.")
    return kept


def workspace_title(folder: Path) -> str:
    """The name a workspace was created with (its folder name when none was kept)."""
    try:
        text = (folder / TITLE_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return folder.name
    return text[:MAX_NAME] or folder.name


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
        if not user or not USER_NAME.fullmatch(user) or user == MODELS_FOLDER:
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
                           if p.is_dir() and is_folder_name(p.name)
                           and p.name != MODELS_FOLDER
                           and any((p / marker).exists() for marker in WORKSPACE_MARKERS))
        head = [self.default_name] if self.default else []
        return head + [name for name in found if name not in head]

    def choices(self) -> list[tuple[str, str]]:
        """(name as shown, folder name) of every workspace, in the order of :meth:`names`."""
        return [(self.title(name), name) for name in self.names()]

    def title(self, name: str) -> str:
        """The name of workspace ``name`` as its user typed it (else its folder name)."""
        try:
            return workspace_title(self._path(name))
        except WorkbenchError:
            return name

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
        """Open the workspace ``name`` (its folder name, or the name it was created with),
        creating it when asked.

        Raises:
            WorkbenchError: The name is not allowed, or it does not exist and ``create`` is
                False.
        """
        title = unicodedata.normalize("NFC", (name or "").strip())
        if not title:
            raise WorkbenchError("Type a name for the new workspace first." if create else
                                 "Choose a workspace, or type a name and press Create.")
        folder = title if is_folder_name(title) else folder_name(title)
        path = self._path(folder)
        if not path.is_dir():
            if not create:
                raise WorkbenchError(f"There is no workspace {title!r}. Type its name under "
                                     "'New workspace' and press Create to start one.")
            path.mkdir(parents=True)
        if create and not (path / TITLE_FILE).is_file():
            write_text_atomic(path / TITLE_FILE, title + "\n")
        return self._served(path)

    def _path(self, name: str) -> Path:
        if self.default is not None and name == self.default_name and not self.per_user:
            return self.default
        if not is_folder_name(name or "") or name == MODELS_FOLDER:
            raise WorkbenchError(
                f"{name!r} is not a workspace name: {NAME_RULE} (and not {MODELS_FOLDER!r}).")
        return self.home / name

    def _served(self, path: Path) -> Workspace:
        """The workspace at ``path``, noted for this call's messages (see page_text)."""
        call = _CALL.get()
        if call is not None:
            call.folders.setdefault(self.home, ("the workspaces folder", ""))
            call.folders.setdefault(self.models_folder, (MODELS_FOLDER, MODELS_FOLDER + "/"))
            call.folders[path] = (path.name, "")
        return Workspace.at(path)
