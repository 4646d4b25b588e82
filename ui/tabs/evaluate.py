"""Step 6, Evaluate: WER/CER on a split, worst utterances first, differences marked."""

from __future__ import annotations

import gradio as gr

from ui.steps import evaluate as steps
from ui.steps import language_model as lm_steps
from ui.steps.utterances import utterance_audio
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names
from workbench.workspace import Workspace

INTRO = """Transcribe the **test** split (speakers the model never heard, when the data has
at least three) with a run's best model and score it. **WER**: share of words wrong;
**CER**: share of characters wrong (Unicode code points); **GER**: share of the characters
a reader sees wrong (grapheme clusters, such as क्षि or ệ, count as one). For Thai, Lao,
Khmer, Myanmar, Chinese and Japanese, written without spaces between words, the WER means
little, so CER and GER come first. In the table, words missing from the output are
<del>struck through</del> and wrong or extra words are <ins>underlined</ins>, with the
differing letters <mark>marked</mark>. Click a row to hear the clip. With a language model
(step 5) as the **Decoding**, the table sets the greedy transcript and the one with the
language model side by side."""
# Shares of the page's width: the texts and their differences get room, and wrap.
COLUMN_WIDTHS = ["12%", "6%", "6%", "6%", "23%", "23%", "24%"]
TYPES = ["str", "number", "number", "number", "str", "str", "html"]


def build(ctx: Context) -> None:
    """The Evaluate tab."""
    with gr.Tab("6. Evaluate") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            run = gr.Dropdown(label="Run", choices=[], value=None, scale=3,
                              allow_custom_value=True)
            split = gr.Radio(["test", "dev", "train"], value="test", label="Split", scale=2)
            decoding = gr.Dropdown(label="Decoding", choices=[lm_steps.GREEDY],
                                   value=lm_steps.GREEDY, scale=2, allow_custom_value=True)
            evaluate_button = gr.Button("Evaluate", variant="primary", scale=1)
        summary = gr.Markdown()
        table = gr.Dataframe(label="Utterances, worst first (click a row to listen)",
                             headers=steps.EVAL_COLUMNS, interactive=False, wrap=True,
                             datatype=TYPES,
                             max_height=520, column_widths=COLUMN_WIDTHS)
        with gr.Row():
            audio = gr.Audio(label="Clip", type="numpy", interactive=False)
            transcript = gr.Markdown()

    @shows_errors
    def evaluate(name: str, run: str | None, split: str, decoding: str | None = None):
        if not run:
            raise gr.Error("Choose a run first (runs appear here once they have a model).")
        view = steps.evaluate(ctx.ws(name), run, split or "test", lm_steps.chosen_lm(decoding))
        # The decoding goes back with the answer: a slow evaluation that lands after the
        # choice was changed shows the choice it was made with, not a mismatched label.
        return view.summary, view.table, decoding or lm_steps.GREEDY

    @shows_errors
    def show_saved(name: str, run: str | None, split: str, decoding: str | None = None):
        return _saved(ctx.ws(name), run, split, lm_steps.chosen_lm(decoding))

    @shows_errors
    def play_row(name: str, evt: gr.SelectData):
        row = list(evt.row_value or [])
        if not row:
            return gr.skip(), gr.skip()
        return utterance_audio(ctx.ws(name), str(row[0]))

    def refresh(name: str):
        greedy = gr.Dropdown(choices=[lm_steps.GREEDY], value=lm_steps.GREEDY)
        if not name:
            return gr.Dropdown(choices=[], value=None), greedy, "", steps.empty_table()
        ws = ctx.ws(name)
        runs = run_names(ws, with_model=True)
        value = runs[0] if runs else None
        choices = gr.Dropdown(choices=lm_steps.decoding_choices(ws), value=lm_steps.GREEDY)
        return (gr.Dropdown(choices=runs, value=value), choices, *_saved(ws, value, "test"))

    event = ctx.action(evaluate_button, evaluate, inputs=[ctx.workspace, run, split, decoding],
                       outputs=[summary, table, decoding], busy="Evaluating...",
                       api_name="evaluate")
    ctx.then_overview(event)
    for trigger in (run.input, split.input, decoding.input):
        trigger(show_saved, inputs=[ctx.workspace, run, split, decoding],
                outputs=[summary, table], api_visibility="private")
    table.select(play_row, inputs=[ctx.workspace], outputs=[audio, transcript],
                 api_visibility="private")
    ctx.register(tab, refresh, [run, decoding, summary, table])


def _saved(ws: Workspace, run: str | None, split: str, lm: str | None = None) -> tuple:
    if not run:
        return "No run has a model yet: train one in step 4.", steps.empty_table()
    view = steps.saved_evaluation(ws, run, split or "test", lm)
    if view is None:
        how = f" with the language model {lm}" if lm else ""
        return (f"Run {run} has not been evaluated on {split}{how} yet: press **Evaluate**.",
                steps.empty_table())
    return view.summary, view.table
