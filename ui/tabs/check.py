"""Step 2, Check: the audit as tables and plots, and every utterance to listen to."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ui.steps import check
from ui.steps.utterances import UTTERANCE_COLUMNS, utterance_audio, utterance_table
from ui.tabs.common import Context, shows_errors
from workbench.workspace import Workspace

INTRO = """The check looks at every clip and transcript: too long, silent, clipped, empty, too
short for its transcript, duplicated, a speaking rate that does not fit. Clips **set aside**
are left out of training, each with its reason and what to do. Click a row of either table to
listen."""
# Shares of the page's width (1280 px and up): no column cut off, long cells wrap.
SET_ASIDE_WIDTHS = ["15%", "7%", "23%", "24%", "21%", "10%"]
FINDING_WIDTHS = ["14%", "24%", "26%", "26%", "10%"]


def build(ctx: Context) -> None:
    """The Check tab."""
    with gr.Tab("2. Check") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            max_seconds = gr.Number(label="Longest clip kept (seconds)", value=20.0,
                                    minimum=1.0)
            run_button = gr.Button("Run the check", variant="primary")
        summary = gr.Markdown()
        splits = gr.Dataframe(label="Per split", headers=check.SPLIT_COLUMNS, interactive=False)
        with gr.Row():
            histogram = gr.BarPlot(x="seconds", y="utterances", color="status",
                                   title="Clip durations", y_title="utterances",
                                   color_map={"kept": "#2e7d32", "set aside": "#c62828"})
            speakers = gr.BarPlot(x="speaker", y="minutes", color="split",
                                  title="Minutes per speaker (kept)", x_label_angle=-45)
        set_aside = gr.Dataframe(label="Set aside or flagged, with the reason",
                                 headers=check.SET_ASIDE_COLUMNS, interactive=False, wrap=True,
                                 max_height=420, column_widths=SET_ASIDE_WIDTHS)
        findings = gr.Dataframe(label="About the corpus as a whole", interactive=False,
                                headers=check.FINDING_COLUMNS, wrap=True,
                                column_widths=FINDING_WIDTHS)
        gr.Markdown("### Listen to any utterance")
        table = gr.Dataframe(label="Utterances (click a row)", headers=UTTERANCE_COLUMNS,
                             interactive=False, wrap=True, max_height=360)
        with gr.Row():
            utterance_id = gr.Textbox(label="Utterance id", scale=3)
            play_button = gr.Button("Play", scale=1)
        with gr.Row():
            audio = gr.Audio(label="Clip (16 kHz mono, as the model hears it)", type="numpy",
                             interactive=False)
            transcript = gr.Markdown()

    check_outputs = [summary, splits, histogram, speakers, set_aside, findings, table]

    @shows_errors
    def run_check(name: str, max_seconds: float):
        ws = ctx.ws(name)
        return _view(check.run_check(ws, max_seconds or 20.0), ws)

    @shows_errors
    def play(name: str, utterance_id: str):
        return utterance_audio(ctx.ws(name), (utterance_id or "").strip())

    @shows_errors
    def play_row(name: str, evt: gr.SelectData):
        row = list(evt.row_value or [])
        if not row or (len(row) > 1 and row[1] == check.NOT_IMPORTED):
            gr.Info("This item was never imported, so there is no clip to play.")
            return gr.skip(), gr.skip(), gr.skip()
        clip, text = utterance_audio(ctx.ws(name), str(row[0]))
        return str(row[0]), clip, text

    def refresh(name: str):
        if not name:
            return _empty("", None)
        ws = ctx.ws(name)
        if not ws.manifest_path("train").exists():
            return _empty("Import data first (step 1).", None)
        view = check.saved_check(ws)
        if view is None:
            return _empty("Not checked yet: press **Run the check**.", ws)
        return _view(view, ws)

    event = ctx.action(run_button, run_check, inputs=[ctx.workspace, max_seconds],
                       outputs=check_outputs, busy="Checking every clip...",
                       api_name="run_check")
    ctx.then_overview(event)
    play_button.click(play, inputs=[ctx.workspace, utterance_id], outputs=[audio, transcript],
                      api_name="play_utterance")
    for frame in (table, set_aside):
        frame.select(play_row, inputs=[ctx.workspace], outputs=[utterance_id, audio, transcript],
                     api_visibility="private")
    ctx.register(tab, refresh, check_outputs)


def _empty(summary: str, ws: Workspace | None) -> tuple:
    """Nothing checked yet: the note, no plots, and tables with their headers only."""
    view = check.empty_view(summary)
    utterances = utterance_table(ws) if ws is not None else pd.DataFrame(
        columns=UTTERANCE_COLUMNS)
    return (view.summary, view.splits, None, None, view.set_aside, view.findings, utterances)


def _view(view: check.CheckView, ws: Workspace) -> tuple:
    labels = list(dict.fromkeys(view.histogram["seconds"]))
    speakers = list(view.speakers.groupby("speaker", sort=False)["minutes"].sum()
                    .sort_values(ascending=False).index)
    return (view.summary, view.splits, gr.BarPlot(value=view.histogram, sort=labels or None),
            gr.BarPlot(value=view.speakers, sort=speakers or None), view.set_aside,
            view.findings, utterance_table(ws))
