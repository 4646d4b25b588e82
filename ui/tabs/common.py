"""What every tab shares: the session's workspace, error display, and refresh hooks.

Lists of runs, uploads, models and columns change while a page is open, so their dropdowns
accept any value (``allow_custom_value``); the handlers check every value against what
exists before using it.
"""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ui.messages import for_page
from ui.workspaces import WorkspaceRoot, current_call, handling, page_text
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

log = logging.getLogger("workbench.ui")


REQUEST_PARAMETER = "_request"  # the gr.Request Gradio passes to every wrapped handler


def shows_errors(fn: Callable) -> Callable:
    """Run a handler for the logged-in user and turn its exceptions into a message.

    The one place the page's errors come from: a :class:`WorkbenchError` is shown as it is,
    anything else as an unexpected error with the traceback in the server's log; either way
    in the page's words (:func:`ui.messages.for_page`: steps and fields, not commands and
    options) and with the server's folders left out (:func:`ui.workspaces.page_text`: files
    relative to the workspace, or by name). The wrapper keeps ``fn``'s signature, which
    Gradio reads to name the API parameters, plus a ``gr.Request`` parameter Gradio fills
    in: the handler runs inside :func:`ui.workspaces.handling` for the request's user, so
    workspace names resolve under that user's folder when users have their own.
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args, request = _without_request(args, kwargs)
        with _handling(request):
            try:
                return fn(*args, **kwargs)
            except gr.Error as err:
                err.message = _popup(page_text(for_page(str(err.message))))
                raise
            except WorkbenchError as err:
                raise gr.Error(_popup(page_text(for_page(err))), print_exception=False) from err
            except Exception as err:  # noqa: BLE001 - the page gets a message, the log the trace
                log.exception("unexpected error in %s", fn.__name__)
                raise gr.Error(page_text(
                    f"Unexpected {type(err).__name__}: {err}. This is a bug in the "
                    "workbench; the server's log has the details.")) from err

    wrapper.__signature__ = _with_request(inspect.signature(fn))
    wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}),
                               REQUEST_PARAMETER: gr.Request}
    return wrapper


def _popup(message: str) -> str:
    """A message as the error popup shows it (it renders HTML): escaped, lines kept."""
    return html.escape(message, quote=False).replace("\n", "<br>")


def _with_request(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` plus a ``gr.Request`` parameter after the positional ones."""
    params = list(signature.parameters.values())
    at = next((i for i, p in enumerate(params)
               if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)), len(params))
    request = inspect.Parameter(REQUEST_PARAMETER, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None, annotation=gr.Request)
    return signature.replace(parameters=[*params[:at], request, *params[at:]])


def _without_request(args: tuple, kwargs: dict) -> tuple[tuple, gr.Request | None]:
    """The handler's own arguments, and the request Gradio added among them (if any)."""
    request = kwargs.pop(REQUEST_PARAMETER, None)
    for arg in args:
        if request is None and isinstance(arg, gr.Request):
            request = arg
    return tuple(a for a in args if not isinstance(a, gr.Request)), request


def _handling(request: gr.Request | None) -> contextlib.AbstractContextManager:
    """The user's call context; a handler called by another keeps its caller's."""
    if request is None and current_call() is not None:
        return contextlib.nullcontext()
    return handling(getattr(request, "username", None))


@dataclass(frozen=True)
class Refresher:
    """How a tab redraws itself for the session's workspace: ``fn(*inputs)``, the first
    input being the workspace name."""

    fn: Callable
    inputs: list
    outputs: list


@dataclass
class Context:
    """What tabs need from the app: the served root and the session's workspace state.

    Attributes:
        root: The workspaces this server serves.
        workspace: ``gr.State`` holding the name of the session's open workspace.
        overview: Markdown at the top of the page saying where the workspace stands.
        overview_timer: Redraws the overview while a training runs (active only then).
        refreshers: Filled by the tabs; the app runs them when the workspace changes.
    """

    root: WorkspaceRoot
    workspace: gr.State
    overview: gr.Markdown
    overview_timer: gr.Timer
    refreshers: list[Refresher] = field(default_factory=list)

    def ws(self, name: str | None) -> Workspace:
        """The session's workspace (a readable error when none is open)."""
        return self.root.resolve(name)

    def register(self, tab: gr.Tab, fn: Callable, outputs: list) -> None:
        """Redraw ``outputs`` with ``fn`` when the tab is opened or the workspace changes."""
        wrapped = shows_errors(fn)
        self.refreshers.append(Refresher(wrapped, [self.workspace], outputs))
        tab.select(wrapped, inputs=[self.workspace], outputs=outputs,
                   api_visibility="private", show_progress="hidden")

    def on_workspace(self, fn: Callable, inputs: list, outputs: list) -> None:
        """Redraw ``outputs`` with ``fn(workspace_name, *inputs)`` when the workspace changes
        or the page loads (not when the tab is opened: that would undo the user's edits)."""
        self.refreshers.append(Refresher(shows_errors(fn), [self.workspace, *inputs], outputs))

    def redraw_overview(self, name: str) -> tuple:
        """The overview of workspace ``name``, and its timer: on while a training runs."""
        from ui.steps.overview import is_training, overview_markdown

        if not name:
            return "", gr.Timer(active=False)
        ws = self.ws(name)
        return overview_markdown(ws), gr.Timer(active=is_training(ws))

    def then_overview(self, event: Any) -> Any:
        """Chain a redraw of the overview after a successful step."""
        return event.success(shows_errors(self.redraw_overview), inputs=[self.workspace],
                             outputs=[self.overview, self.overview_timer],
                             api_visibility="private", show_progress="hidden")


    def action(self, button: gr.Button, fn: Callable, inputs: list, outputs: list, *,
               busy: str, api_name: str | None = None, **kwargs: Any) -> Any:
        """Wire ``button`` to a handler that may take a while (anything over a second).

        While it runs the button is disabled and says ``busy`` (e.g. "Preparing the ONNX
        model..."), with Gradio's progress (time, and a bar when the handler takes a
        ``gr.Progress`` parameter) drawn over it, or over ``show_progress_on`` if given;
        afterwards, also after an error, the button comes back. An error is shown as a
        message, never as "Error" badges over the outputs (they keep what they showed).
        The same action cannot run twice at once for one workspace: a second start (another
        tab, the API) is refused with a message (:func:`exclusive`).

        Args:
            button: The button that starts it (its label now is the label it gets back).
            fn: The handler, already wrapped in :func:`shows_errors`; its first input is
                the workspace name.
            inputs, outputs: As for ``button.click``.
            busy: The button's label while it runs.
            api_name: The API name of the action (``None``: private).
            kwargs: More arguments of the event (e.g. ``inputs_kwargs``).

        Returns:
            The event of the handler itself (chain ``.success`` on it).
        """
        idle = button.value
        quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
        disabled = button.click(lambda: gr.Button(value=busy, interactive=False),
                                outputs=[button], **quiet)
        visibility = {"api_name": api_name} if api_name else {"api_visibility": "private"}
        kwargs.setdefault("show_progress_on", [button])
        event = disabled.then(exclusive(fn, idle), inputs=inputs, outputs=outputs,
                              show_progress=kwargs.pop("show_progress", "full"),
                              **visibility, **kwargs)
        def restore() -> gr.Button:
            return gr.Button(value=idle, interactive=True)

        event.success(restore, outputs=[button], **quiet)
        event.failure(restore, outputs=[button], **quiet)  # `then` does not follow an error
        return event


def exclusive(fn: Callable, what: str) -> Callable:
    """``fn``, refusing to start while it already runs for the same user and workspace.

    The first argument of ``fn`` is the workspace name; the message names the action by
    ``what`` (its button's label).
    """
    guard = threading.Lock()
    running: set[tuple] = set()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get(REQUEST_PARAMETER) or next(
            (a for a in args if isinstance(a, gr.Request)), None)
        key = (getattr(request, "username", None), args[0] if args else None)
        with guard:
            if key in running:
                raise gr.Error(f"“{what}” is already running for this workspace (in this or "
                               "another window). Wait for it to finish.")
            running.add(key)
        try:
            return fn(*args, **kwargs)
        finally:
            with guard:
                running.discard(key)

    return wrapper


def frame_or_empty(frame: Any, columns: list[str]) -> Any:
    """A DataFrame, or an empty one with ``columns`` (Gradio needs headers to draw a table)."""
    import pandas as pd

    return frame if frame is not None else pd.DataFrame(columns=columns)
