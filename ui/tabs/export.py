"""Step 7, Export: the model (Hugging Face format, zipped) and the evaluation report."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from ui.steps import export as steps
from ui.tabs.common import Context, shows_errors
from workbench.run import run_names

EXPORT_PREFIX = "workbench-export-"
EXPORT_MAX_AGE_S = 24 * 3600  # staging folders of earlier exports older than this are removed
INTRO = """Download the trained model as a zip: a standard Hugging Face folder
(`model.safetensors`, `config.json` and the processor) that `transformers` loads with
`pipeline("automatic-speech-recognition", model=FOLDER)`, with the run's settings and
scores. The report holds WER/CER and every utterance's reference and transcript.
The ONNX model runs with ONNX Runtime on a CPU without PyTorch; with int8 matrix products it
is smaller and faster, at nearly the same accuracy (it takes a while to prepare)."""


def build(ctx: Context) -> None:
    """The Export tab."""
    with gr.Tab("7. Export") as tab:
        gr.Markdown(INTRO)
        run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True)
        with gr.Row():
            model_button = gr.Button("Prepare the model zip", variant="primary")
            report_button = gr.Button("Prepare the evaluation report")
        with gr.Row():
            onnx_button = gr.Button("Prepare an ONNX model for CPUs")
            int8 = gr.Checkbox(label="int8 (smaller, faster)", value=True)
        model_file = gr.DownloadButton("Download the model", visible=False)
        onnx_file = gr.DownloadButton("Download the ONNX model", visible=False)
        report_files = gr.File(label="Evaluation report", file_count="multiple",
                               interactive=False)

    @shows_errors
    def export_model(name: str, run: str | None):
        if not run:
            raise gr.Error("Choose a run first.")
        path = steps.export_model(ctx.ws(name), run, _staging())
        return gr.DownloadButton(f"Download {path.name}", value=str(path), visible=True)

    @shows_errors
    def export_onnx(name: str, run: str | None, quantize: bool):
        if not run:
            raise gr.Error("Choose a run first.")
        path = steps.export_onnx_model(ctx.ws(name), run, _staging(), int8=quantize)
        return gr.DownloadButton(f"Download {path.name}", value=str(path), visible=True)

    @shows_errors
    def export_report(name: str, run: str | None):
        if not run:
            raise gr.Error("Choose a run first.")
        return [str(p) for p in steps.export_report(ctx.ws(name), run, _staging())]

    def refresh(name: str):
        runs = run_names(ctx.ws(name), with_model=True) if name else []
        return (gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                gr.DownloadButton(visible=False), gr.DownloadButton(visible=False), None)

    model_button.click(export_model, inputs=[ctx.workspace, run], outputs=[model_file],
                       api_name="export_model")
    onnx_button.click(export_onnx, inputs=[ctx.workspace, run, int8], outputs=[onnx_file],
                      api_name="export_onnx")
    report_button.click(export_report, inputs=[ctx.workspace, run], outputs=[report_files],
                        api_name="export_report")
    ctx.register(tab, refresh, [run, model_file, onnx_file, report_files])


def _staging() -> Path:
    """A fresh folder for one export; Gradio copies the files it serves into its own cache.

    The server may only hand out files from its temporary folder (never from a workspace
    directly), so exports are written there; old export folders are cleared on the way.
    """
    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{EXPORT_PREFIX}*"):
        try:
            if time.time() - old.stat().st_mtime > EXPORT_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
