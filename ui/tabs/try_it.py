"""Step 6, Try it: record or upload a recording and read what a run's model hears."""

from __future__ import annotations

import gradio as gr

from ui.steps.try_it import transcribe_recording
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names

INTRO = """Record with the microphone or upload a file (any format, sample rate or number of
channels; long recordings are transcribed in overlapping windows) and read the transcript
from the chosen run's best model."""


def build(ctx: Context) -> None:
    """The Try it tab."""
    with gr.Tab("6. Try it") as tab:
        gr.Markdown(INTRO)
        run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True)
        recording = gr.Audio(label="Recording", sources=["microphone", "upload"],
                             type="filepath")
        transcribe_button = gr.Button("Transcribe", variant="primary")
        text = gr.Textbox(label="Transcript", lines=4, interactive=False)

    @shows_errors
    def transcribe(name: str, run: str | None, recording: str | None):
        if not run:
            raise gr.Error("Choose a run first (runs appear here once they have a model).")
        return transcribe_recording(ctx.ws(name), run, recording)

    def refresh(name: str):
        runs = run_names(ctx.ws(name), with_model=True) if name else []
        return gr.Dropdown(choices=runs, value=runs[0] if runs else None)

    transcribe_button.click(transcribe, inputs=[ctx.workspace, run, recording], outputs=[text],
                            api_name="transcribe")
    ctx.register(tab, refresh, [run])
