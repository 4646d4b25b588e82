"""Step 6, Try it: upload or record a recording and read what a run's model hears."""

from __future__ import annotations

import gradio as gr

from ui.steps.try_it import transcribe_recording
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names

INTRO = """Upload a recording (any format, sample rate or number of channels; long recordings
are transcribed in overlapping windows) or record one with the microphone, and read the
transcript from the chosen run's best model. The recording you gave last is the one
transcribed."""


def build(ctx: Context) -> None:
    """The Try it tab."""
    with gr.Tab("6. Try it") as tab:
        gr.Markdown(INTRO)
        run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True)
        with gr.Row(equal_height=True):
            uploaded = gr.Audio(label="Recording: upload a file", sources=["upload"],
                                type="filepath")
            recorded = gr.Audio(label="Recording: record with the microphone",
                                sources=["microphone"], type="filepath")
        transcribe_button = gr.Button("Transcribe", variant="primary")
        text = gr.Textbox(label="Transcript", lines=4, interactive=False)

    @shows_errors
    def transcribe(name: str, run: str | None, recording: str | None = None,
                   microphone: str | None = None):
        if not run:
            raise gr.Error("Choose a run first (runs appear here once they have a model).")
        return transcribe_recording(ctx.ws(name), run, microphone or recording)

    def refresh(name: str):
        runs = run_names(ctx.ws(name), with_model=True) if name else []
        return gr.Dropdown(choices=runs, value=runs[0] if runs else None)

    # One recording at a time: giving one empties the other, so the one given last is used.
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    uploaded.upload(lambda: None, outputs=[recorded], **quiet)
    recorded.stop_recording(lambda: None, outputs=[uploaded], **quiet)
    ctx.action(transcribe_button, transcribe, [ctx.workspace, run, uploaded, recorded], [text],
               busy="Transcribing...", api_name="transcribe")
    ctx.register(tab, refresh, [run])
