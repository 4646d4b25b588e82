"""The page's redraw hooks (run by the browser on load, workspace change and tab change)."""

import asyncio

import gradio as gr

from tests.ui.conftest import RUN
from ui.app import build_app
from ui.steps import check
from ui.workspaces import WorkspaceRoot

REDRAWS = ("refresh", "resolve_for_workspace", "on_load", "redraw_overview")


def redraw_functions(app: gr.Blocks):
    """Event functions the browser calls with the session's workspace and widget values."""
    for block_fn in app.fns.values():
        if (block_fn.fn is not None and block_fn.api_visibility == "private"
                and block_fn.inputs and isinstance(block_fn.inputs[0], gr.State)
                and not block_fn.collects_event_data):
            yield block_fn


def call(block_fn, name):
    args = [name] + [getattr(block, "value", None) for block in block_fn.inputs[1:]]
    return block_fn.fn(*args)


def test_every_redraw_fills_its_outputs(ws_with_run):
    check.run_check(ws_with_run, 20.0)
    root = WorkspaceRoot.create(None, ws_with_run.root)
    app = build_app(root)
    functions = list(redraw_functions(app))
    assert len(functions) > 10
    for name in (ws_with_run.root.name, ""):
        for block_fn in functions:
            if not name and block_fn.name not in REDRAWS:
                continue  # a user's action without a workspace: an error message is right
            result = call(block_fn, name)
            expected = len(block_fn.outputs)
            if expected != 1:
                assert isinstance(result, tuple) and len(result) == expected, block_fn.name
    refresh_try = next(f for f in functions if f.name == "refresh"
                       and f.fn.__qualname__.startswith("build.<locals>")
                       and f.fn.__module__ == "ui.tabs.try_it")
    runs, decoding = call(refresh_try, ws_with_run.root.name)
    assert runs.value == RUN  # "Try it" offers the run, decoded greedily by default
    assert decoding.value == "greedy (no language model)"


def browser_values(app: gr.Blocks, name: str) -> dict:
    """What the browser gets from each redraw: (tab module, function name) -> the outputs
    after Gradio's postprocessing, one per output widget (the first such function)."""
    from gradio.state_holder import SessionState

    values = {}
    for block_fn in redraw_functions(app):
        result = call(block_fn, name)
        predictions = list(result) if len(block_fn.outputs) > 1 else result
        sent = asyncio.run(app.postprocess_data(block_fn, predictions, SessionState(app)))
        assert len(sent) == len(block_fn.outputs), block_fn.name
        values.setdefault((block_fn.fn.__module__.rsplit(".", 1)[-1], block_fn.name), sent)
    return values


def test_a_fresh_workspace_redraws_without_errors(tmp_path):
    root = WorkspaceRoot.create(None, tmp_path / "new")
    values = browser_values(build_app(root), "new")
    assert len(values) > 10
    overview = values[("common", "redraw_overview")][0]
    assert overview.startswith("**Workspace: new**") and "**Next:** Data" in overview
    assert values[("check", "refresh")][0] == "Import data first (step 1)."
    assert values[("data", "refresh")][2].startswith("Nothing imported yet")
    for tab in ("evaluate", "try_it", "export", "language_model"):
        runs = values[(tab, "refresh")][1 if tab == "language_model" else 0]
        assert (runs["choices"], runs["value"]) == ([], None), tab
    train = values[("train", "refresh")]
    assert train[4].startswith("No training run yet") and train[-1]["active"] is False


def test_every_redraw_is_accepted_by_its_widgets(ws_with_run):
    """Gradio turns each returned value into what the browser gets, and it is the workspace's."""
    from ui.steps.overview import overview_markdown

    check.run_check(ws_with_run, 20.0)
    values = browser_values(build_app(WorkspaceRoot.create(None, ws_with_run.root)),
                            ws_with_run.root.name)
    assert values[("common", "redraw_overview")][0] == overview_markdown(ws_with_run)
    summary, *_, table = values[("check", "refresh")]
    assert summary == check.saved_check(ws_with_run).summary
    assert [row[0] for row in table["data"]] == [
        u.id for us in ws_with_run.read_all().values() for u in us]
    for tab in ("evaluate", "try_it", "export"):
        runs = values[(tab, "refresh")][0]
        assert (runs["choices"], runs["value"]) == ([[RUN, RUN]], RUN), tab
    assert values[("evaluate", "refresh")][2] == (
        f"Run {RUN} has not been evaluated on test yet: press **Evaluate**.")
    for tab in ("evaluate", "try_it"):
        decoding = values[(tab, "refresh")][1]
        assert decoding["choices"] == [["greedy (no language model)"] * 2], tab
    lms, runs, table = values[("language_model", "refresh")]
    assert (lms["choices"], runs["value"]) == ([], RUN)
    assert table["headers"][:3] == ["name", "unit", "order"] and table["data"] in ([], [[]])
    train = values[("train", "refresh")]
    assert train[3]["value"] == RUN and train[4].startswith("**Finished**")


def test_clicking_a_row_plays_its_clip(ws_with_run):
    root = WorkspaceRoot.create(None, ws_with_run.root)
    app = build_app(root)
    utt = ws_with_run.read_split("test")[0]
    players = [f for f in app.fns.values() if f.name == "play_row"]
    assert len(players) == 3  # two tables of the Check step, one of Evaluate
    for block_fn in players:
        row = gr.SelectData(None, {"index": [0, 0], "value": utt.id,
                                   "row_value": [utt.id, "test", "x"]})
        result = block_fn.fn(ws_with_run.root.name, row)
        clip = result[-2]
        assert clip[0] == 16_000 and len(clip[1]) > 0
    never_imported = gr.SelectData(None, {"index": [0, 0], "value": "a.csv:3",
                                          "row_value": ["a.csv:3", "(import)", "x"]})
    check_player = players[0]
    assert all(isinstance(x, type(gr.skip())) for x in
               check_player.fn(ws_with_run.root.name, never_imported))
