"""Step 5, Language model (optional): build an n-gram from text, tune it on dev, compare."""

from __future__ import annotations

import gradio as gr

from ui.steps import language_model as steps
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names

INTRO = """Optional. A community usually has far more **text** than transcribed audio:
school readers, stories, translations, dictionaries. A language model learnt from that text
lets the recogniser choose words that exist, and often halves the word error rate.
Upload plain text files (any encoding; one sentence or paragraph a line); the text is
spelled with the workspace's orthography profile, and dev or test sentences found in it are
left out, so the scores stay honest. **Word** models suit languages whose new speech mostly
uses words that are in the text; **character** models suit rich morphology (many word forms
never seen). Then **Tune on dev** chooses how much weight the model gets, using the dev split
only, and shows greedy decoding against decoding with the model on dev and test."""


def build(ctx: Context) -> None:
    """The Language model tab."""
    with gr.Tab("5. Language model") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            files = gr.File(label="Text files", file_count="multiple", type="filepath",
                            scale=3)
            with gr.Column(scale=2):
                name = gr.Textbox(label="Name", value="community")
                unit = gr.Radio(["word", "char"], value="word", label="Unit")
                order = gr.Dropdown([("automatic (word 3, char 6)", 0), ("3", 3), ("4", 4),
                                     ("5", 5), ("6", 6)], value=0, label="Order")
                transcripts = gr.Checkbox(label="Use the training transcripts too",
                                          value=False)
        build_button = gr.Button("Build the language model", variant="primary")
        report = gr.Markdown()
        gr.Markdown("### Tune and compare")
        with gr.Row():
            lm = gr.Dropdown(label="Language model", choices=[], value=None, scale=2,
                             allow_custom_value=True)
            run = gr.Dropdown(label="Run", choices=[], value=None, scale=3,
                              allow_custom_value=True)
            tune_button = gr.Button("Tune on dev", variant="primary", scale=1)
        tuning = gr.Markdown()
        comparison = gr.Dataframe(label="Greedy against the language model",
                                  headers=steps.TUNING_COLUMNS, interactive=False)
        models = gr.Dataframe(label="Language models of this workspace",
                              headers=steps.LM_COLUMNS, interactive=False, wrap=True)

    @shows_errors
    def build_lm(name_: str, uploaded: list[str] | None, lm_name: str, lm_unit: str,
                 lm_order: int, use_transcripts: bool):
        ws = ctx.ws(name_)
        text = steps.build_language_model(ws, uploaded, name=lm_name, unit=lm_unit,
                                          order=lm_order, transcripts=use_transcripts)
        names = steps.lm_names(ws)
        chosen = (lm_name or "").strip() or "community"
        return text, gr.Dropdown(choices=names, value=chosen), steps.lm_table(ws)

    @shows_errors
    def tune(name_: str, lm_name: str | None, run_name: str | None):
        ws = ctx.ws(name_)
        text, table = steps.tune_language_model(ws, lm_name, run_name)
        return text, table, steps.lm_table(ws)

    def refresh(name_: str):
        if not name_:
            return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None), \
                steps.lm_table_empty()
        ws = ctx.ws(name_)
        names, runs = steps.lm_names(ws), run_names(ws, with_model=True)
        return (gr.Dropdown(choices=names, value=names[0] if names else None),
                gr.Dropdown(choices=runs, value=runs[0] if runs else None), steps.lm_table(ws))

    event = ctx.action(build_button, build_lm,
                       [ctx.workspace, files, name, unit, order, transcripts],
                       [report, lm, models], busy="Building the language model...",
                       api_name="build_lm")
    ctx.then_overview(event)
    event = ctx.action(tune_button, tune, [ctx.workspace, lm, run], [tuning, comparison, models],
                       busy="Tuning on dev...", api_name="tune_lm")
    ctx.then_overview(event)
    ctx.register(tab, refresh, [lm, run, models])
