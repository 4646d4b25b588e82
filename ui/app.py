"""The browser front end: one page, eight steps (and an optional ninth), over one workspace.

``build_app`` assembles the page from ``ui/tabs`` (one module per step); ``serve`` starts it
the way `workbench ui` does: on 127.0.0.1, with no public link unless asked, an upload size
limit, no telemetry and no network call of its own.

Each browser session keeps the name of its open workspace in ``gr.State``; every handler
resolves that name under the served root (``ui/workspaces.py``). The browser remembers the
open workspace and step (``page_memory``), so a reload or a server restart comes back to
them. Gradio's temporary files live under the root (``ui/tempfiles.py``), and messages are in
the page's words (``ui/messages.py``). The page is a single-user
local tool: all sessions of one server share the workspaces under the root (any session
may open, export or stop the training of any of them). With several accounts (``--auth``
more than once, or ``--auth-file``) each user works in their own folder ``<root>/<user>/``
and cannot reach another's. What guards the server (host names, same-origin writes, login
throttling) is in ``ui/security.py``. Training runs as a separate process (``ui/jobs.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

# ui/__init__.py, imported before this module, has turned Gradio's telemetry off.
import gradio as gr

from ui import security
from ui.steps.overview import is_training, overview_markdown
from ui.tabs import (
    alphabet,
    check,
    data,
    evaluate,
    export,
    language_model,
    train,
    try_it,
    untranscribed,
)
from ui.tabs.common import Context, shows_errors
from ui.tempfiles import use_private_temp_dir
from ui.workspaces import MODELS_FOLDER, USER_NAME, WorkspaceRoot
from workbench.errors import WorkbenchError
from workbench.fsio import write_text_atomic

TITLE = "Speech recogniser workbench"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_FILE_SIZE = "4gb"  # one upload; a zipped corpus of a few hours fits
CACHE_CLEANUP = (3600, 24 * 3600)  # every hour, delete served copies older than a day
OVERVIEW_SECONDS = 10.0  # the top of the page follows a training this often
STEP_IDS = ("data", "check", "alphabet", "train", "language-model", "evaluate", "try-it",
            "export", "untranscribed")
MEMORY_KEY = "workbench-page"  # the browser's local storage entry of the page's memory
PAGE_KEY_FILE = ".workbench-page-key"  # in the root: the key of that entry
CLICK_STEP = """(step) => {
  const tab = step && document.querySelector(
    `button[role="tab"][data-tab-id="${CSS.escape(step)}"]`);
  if (tab && tab.getAttribute("aria-selected") !== "true") tab.click();
  return [];
}"""
CSS = """
.wb-alphabet { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
.wb-chip { display: inline-block; padding: 2px 8px; border-radius: 12px; margin-right: 4px;
           border: 1px solid #9e9e9e; font-size: 1.05em; }
.wb-ok { background: #e8f5e9; }
.wb-rare { background: #fff3c4; border-color: #f0a500; }
.wb-unseen { background: #ffd6d6; border-color: #c62828; }
.wb-legend { margin-top: 6px; font-size: 0.85em; }
.wb-badge { display: inline-block; min-width: 3.6em; padding: 0 6px; margin-right: 4px;
            border-radius: 8px; border: 1px solid; font-size: 0.8em; font-weight: 600;
            text-align: center; }
.wb-done { background: #e8f5e9; color: #1b5e20; border-color: #2e7d32; }
.wb-todo { background: #eceff1; color: #37474f; border-color: #90a4ae; }
.wb-busy { background: #e3f2fd; color: #0d47a1; border-color: #1565c0; }
.wb-note { background: #fff3c4; color: #5d4037; border-color: #f0a500; }
.wb-progress { position: relative; height: 26px; border-radius: 6px; background: #eceff1;
               overflow: hidden; }
.wb-bar { height: 100%; background: #4caf50; transition: width 0.5s; }
.wb-progress span { position: absolute; top: 3px; left: 10px; font-weight: 600; }
del { background: #ffd6d6; }
ins { background: #fff3c4; text-decoration: underline; }
mark { background: #ffab91; }
"""


@dataclass(frozen=True)
class ServeOptions:
    """How the server listens (the operator's choices from the command line).

    Attributes:
        host: Interface to bind; 127.0.0.1 keeps the page on this machine.
        port: Port (None: Gradio picks a free one from 7860 on).
        share: Make a public *.gradio.live link (off unless asked).
        auth: (user, password) required to open the page, or several such pairs (then each
            user works in ``<root>/<user>/``), or None.
        max_file_size: Largest upload, e.g. "4gb".
        allowed_hosts: Host names the page answers to besides the loopback names and
            ``host`` (e.g. a reverse proxy's name).
    """

    host: str = DEFAULT_HOST
    port: int | None = DEFAULT_PORT
    share: bool = False
    auth: tuple[str, str] | Sequence[tuple[str, str]] | None = None
    max_file_size: str = MAX_FILE_SIZE
    allowed_hosts: tuple[str, ...] = ()

    def accounts(self) -> dict[str, str]:
        """User -> password ({} when the page asks for none).

        Raises:
            WorkbenchError: A user is given twice.
        """
        if not self.auth:
            return {}
        pairs = [self.auth] if isinstance(self.auth[0], str) else list(self.auth)
        accounts: dict[str, str] = {}
        for user, password in pairs:
            if user in accounts:
                raise WorkbenchError(f"The user {user!r} is given twice; give each user once.")
            accounts[user] = password
        return accounts


def parse_auth(text: str | None, where: str = "--auth") -> tuple[str, str] | None:
    """``USER:PASS`` as a (user, password) pair.

    Args:
        text: The account as written.
        where: Where it was written, for the message (``--auth``, a file's line).

    Raises:
        WorkbenchError: The text has no colon, or an empty user or password.
    """
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise WorkbenchError(f"{where}: write USER:PASS, e.g. maria:s3cret.")
    return user.strip(), password


def parse_auth_file(path: str | Path) -> list[tuple[str, str]]:
    """The accounts in a file of ``USER:PASS`` lines (blank lines and ``#`` comments skipped).

    Raises:
        WorkbenchError: The file cannot be read, a line is not USER:PASS, or it holds no
            account.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as err:
        raise WorkbenchError(f"Cannot read the accounts file {path} ({err.strerror}).") from err
    accounts = [parse_auth(line.strip(), f"{path}, line {number}")
                for number, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not accounts:
        raise WorkbenchError(f"{path} holds no account: write one USER:PASS per line.")
    return accounts


def served_root(root: WorkspaceRoot, accounts: Mapping[str, str]) -> WorkspaceRoot:
    """``root`` as the page serves it: with several users, each in ``<root>/<user>/``.

    Raises:
        WorkbenchError: Several users and a default workspace (it would be shared), or a
            user name that cannot be a folder name.
    """
    if len(accounts) < 2:
        return root
    if root.default is not None:
        raise WorkbenchError(
            "-w opens one workspace for everyone, but with several users each has their "
            f"own folder under the root ({root.root}/<user>/). Leave out -w; give --root.")
    for user in accounts:
        if not USER_NAME.fullmatch(user) or user == MODELS_FOLDER:
            raise WorkbenchError(
                f"With several users each user name is also a folder name: {user!r} is not "
                f"one. Use 1 to 64 letters, digits, '-' or '_' (and not {MODELS_FOLDER!r}).")
    return replace(root, per_user=True)


def build_app(root: WorkspaceRoot) -> gr.Blocks:
    """The page: workspace choice, where the workspace stands, and the steps.

    The open workspace and step are kept in the browser's storage (:func:`page_memory`), so
    a reload or a restart of the server comes back to them.
    """
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(f"# {TITLE}\nTurn a little transcribed speech into a speech recogniser "
                    "for your language. Work through the steps from left to right.")
        workspace = gr.State(root.default_name)
        memory = page_memory(root)
        with gr.Row(equal_height=True):
            choose = gr.Dropdown(label="Workspace", choices=root.choices(), scale=3,
                                 value=root.default_name or None, allow_custom_value=True,
                                 info="one folder per language project, in the workspaces "
                                      "folder")
            new_name = gr.Textbox(label="New workspace", scale=2,
                                  placeholder="a name, e.g. Māori project")
            create_button = gr.Button("Create", scale=1)
        overview = gr.Markdown()
        overview_timer = gr.Timer(OVERVIEW_SECONDS, active=False)
        ctx = Context(root, workspace, overview, overview_timer)
        with gr.Tabs() as tabs:
            for tab in (data, check, alphabet, train, language_model, evaluate, try_it, export,
                        untranscribed):
                tab.build(ctx)
        steps = [child for child in tabs.children if isinstance(child, gr.Tab)]
        for tab, step in zip(steps, STEP_IDS, strict=True):
            tab.id = step  # what the page remembers and selects on load
        _wire_workspace(app, ctx, choose, new_name, create_button, memory, tabs)
    return app


def page_memory(root: WorkspaceRoot) -> gr.BrowserState:
    """The browser's memory of this page: {"workspace": folder name, "step": tab id}.

    It is kept in the browser's local storage, encrypted with a key that lives in the root
    (``.workbench-page-key``), so it survives a reload and a restart of the server.
    """
    return gr.BrowserState({"workspace": "", "step": ""}, storage_key=MEMORY_KEY,
                           secret=_page_key(root.root))


def _page_key(folder: Path) -> str:
    """The key of the page's memory, made once per root (0600)."""
    path = folder / PAGE_KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        key = ""
    if len(key) < 32:
        key = secrets.token_urlsafe(32)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, key + "\n")
        path.chmod(0o600)
    return key


def _wire_workspace(app: gr.Blocks, ctx: Context, choose: gr.Dropdown, new_name: gr.Textbox,
                    create_button: gr.Button, memory: gr.BrowserState, tabs: gr.Tabs) -> None:
    """Opening, creating and (on page load) restoring a workspace redraws every step; the
    workspace and step are remembered in the browser."""
    root = ctx.root

    @shows_errors
    def open_workspace(name: str, remembered: dict | None = None):
        ws = root.open(name)
        return (ws.root.name, overview_markdown(ws), gr.Timer(active=is_training(ws)),
                {**(remembered or {}), "workspace": ws.root.name})

    @shows_errors
    def create_workspace(name: str, remembered: dict | None = None):
        ws = root.open(name, create=True)
        return (ws.root.name, gr.Dropdown(choices=root.choices(), value=ws.root.name),
                overview_markdown(ws), gr.Timer(active=is_training(ws)), "",
                {**(remembered or {}), "workspace": ws.root.name})

    labels = {tab.label: tab.id for tab in tabs.children if isinstance(tab, gr.Tab)}

    def remember_step(remembered: dict, evt: gr.SelectData):
        step = labels.get(evt.value) or getattr(evt, "id", None) or ""
        if not step and isinstance(evt.index, int) and evt.index < len(STEP_IDS):
            step = STEP_IDS[evt.index]
        return {**(remembered or {}), "step": step}

    def on_load(name: str, remembered: dict):
        name = _restorable(root, (remembered or {}).get("workspace")) or name
        if not name:
            return (name, gr.Dropdown(choices=root.choices(), value=None),
                    "Choose a workspace above, or create one for your language project.",
                    gr.Timer(active=False))
        ws = root.resolve(name)
        return (name, gr.Dropdown(choices=root.choices(), value=name), overview_markdown(ws),
                gr.Timer(active=is_training(ws)))

    def restore_step(remembered: dict) -> str:
        step = (remembered or {}).get("step")
        return step if step in STEP_IDS else ""

    events = [
        choose.input(open_workspace, inputs=[choose, memory],
                     outputs=[ctx.workspace, ctx.overview, ctx.overview_timer, memory],
                     api_name="open_workspace"),
        create_button.click(create_workspace, inputs=[new_name, memory],
                            outputs=[ctx.workspace, choose, ctx.overview, ctx.overview_timer,
                                     new_name, memory],
                            api_name="create_workspace"),
        app.load(shows_errors(on_load), inputs=[ctx.workspace, memory],
                 outputs=[ctx.workspace, choose, ctx.overview, ctx.overview_timer],
                 api_visibility="private"),
    ]
    # The step is selected by clicking its tab in the browser (a Tabs(selected=) update on
    # load is undone by the redraws that follow it), which also redraws that step.
    step = gr.Textbox(visible=False)
    events[-1].then(restore_step, inputs=[memory], outputs=[step], api_visibility="private",
                    show_progress="hidden").then(None, inputs=[step], js=CLICK_STEP)
    tabs.select(remember_step, inputs=[memory], outputs=[memory], api_visibility="private",
                show_progress="hidden", queue=False)
    ctx.overview_timer.tick(shows_errors(ctx.redraw_overview), inputs=[ctx.workspace],
                            outputs=[ctx.overview, ctx.overview_timer],
                            api_visibility="private", show_progress="hidden")
    for event in events:
        for hook in ctx.refreshers:
            event.success(hook.fn, inputs=hook.inputs, outputs=hook.outputs,
                          api_visibility="private", show_progress="hidden")


def _restorable(root: WorkspaceRoot, name: object) -> str:
    """A remembered workspace name, if it is still one this user can open ("" if not)."""
    if not isinstance(name, str) or not name:
        return ""
    try:
        root.resolve(name)
    except WorkbenchError:
        return ""
    return name


def serve(root: WorkspaceRoot, options: ServeOptions | None = None, *,
          prevent_thread_lock: bool = False, quiet: bool = False) -> gr.Blocks:
    """Build the page and start the server (blocks until stopped, unless asked not to).

    Every route answers only to this server's host names and refuses requests from other
    sites (``ui/security.py``); with accounts, repeated wrong passwords are slowed down.

    Args:
        root: The workspaces to serve.
        options: Host, port, sharing, accounts, upload limit and extra host names.
        prevent_thread_lock: Return once the server runs (tests).
        quiet: Print nothing on start.

    Returns:
        The running app (``app.close()`` stops it).

    Raises:
        WorkbenchError: The accounts do not fit the root (see :func:`served_root`).
    """
    options = options or ServeOptions()
    accounts = options.accounts()
    use_private_temp_dir(root.root)  # Gradio's temporary files under <root>/.workbench-tmp
    app = build_app(served_root(root, accounts))
    app.queue()
    hosts = security.host_policy(options.host, options.allowed_hosts)
    app.launch(server_name=options.host, server_port=options.port, share=options.share,
               auth=security.LoginThrottle(accounts).check if accounts else None,
               max_file_size=options.max_file_size, css=CSS,
               app_kwargs={"middleware": [security.guard_middleware(hosts)]},
               num_workers=0,  # file workers would serve uploads outside the guard
               show_error=True, ssr_mode=False, mcp_server=False, pwa=False,
               prevent_thread_lock=True, quiet=True, inbrowser=False)
    if app.share_url:
        hosts.add(urlsplit(app.share_url).hostname)
    if not quiet:
        print(f"The workbench page is at {app.local_url}" + (
            f" and {app.share_url}" if app.share_url else "") +
            "\nOpen it in a browser. Ctrl+C stops the page; training jobs keep running.")
    if not prevent_thread_lock:
        app.block_thread()
    return app
