"""Step 7, Try it: upload or record a recording and read what a run's model hears."""

from __future__ import annotations

import gradio as gr

from ui.steps import language_model as lm_steps
from ui.steps.try_it import transcribe_recording
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names

INTRO = """Upload a recording (any format, sample rate or number of channels; long recordings
are transcribed in overlapping windows) or record one with the microphone, and read the
transcript from the chosen run's best model. The recording you gave last is the one
transcribed. With a language model (step 5) as the **Decoding**, the greedy transcript and
the one with the language model are shown side by side."""


def build(ctx: Context) -> None:
    """The Try it tab."""
    with gr.Tab("7. Try it") as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True,
                              scale=3)
            decoding = gr.Dropdown(label="Decoding", choices=[lm_steps.GREEDY], scale=2,
                                   value=lm_steps.GREEDY, allow_custom_value=True)
        with gr.Row(equal_height=True):
            uploaded = gr.Audio(label="Recording: upload a file", sources=["upload"],
                                type="filepath")
            recorded = gr.Audio(label="Recording: record with the microphone",
                                sources=["microphone"], type="filepath")
        transcribe_button = gr.Button("Transcribe", variant="primary")
        with gr.Row():
            text = gr.Textbox(label="Transcript (greedy: no language model)", lines=4,
                              interactive=False)
            lm_text = gr.Textbox(label="With the language model", lines=4, interactive=False,
                                 placeholder="Choose a language model as the Decoding to see "
                                             "its transcript beside the greedy one.")

    @shows_errors
    def transcribe(name: str, run: str | None, recording: str | None = None,
                   microphone: str | None = None, decoding: str | None = None):
        if not run:
            raise gr.Error("Choose a run first (runs appear here once they have a model).")
        lm = lm_steps.chosen_lm(decoding)
        result = transcribe_recording(ctx.ws(name), run, microphone or recording, lm)
        return result if lm else (result, "")

    def refresh(name: str):
        ws = ctx.ws(name) if name else None
        runs = run_names(ws, with_model=True) if ws else []
        choices = lm_steps.decoding_choices(ws) if ws else [lm_steps.GREEDY]
        return (gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                gr.Dropdown(choices=choices, value=lm_steps.GREEDY))

    # One recording at a time: giving one empties the other, so the one given last is used.
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    uploaded.upload(lambda: None, outputs=[recorded], **quiet)
    recorded.stop_recording(lambda: None, outputs=[uploaded], **quiet)
    ctx.action(transcribe_button, transcribe,
               [ctx.workspace, run, uploaded, recorded, decoding], [text, lm_text],
               busy="Transcribing...", api_name="transcribe")
    ctx.register(tab, refresh, [run, decoding])
