"""Step 8, Export: the model (Hugging Face format, zipped) and the evaluation report."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui.messages import badge
from ui.steps import export as steps
from ui.steps import language_model as lm_steps
from ui.tabs.common import Context, shows_errors
from ui.tempfiles import new_export_folder
from workbench.run import run_names

INTRO = """Download the trained model as a zip: a standard Hugging Face folder
(`model.safetensors`, `config.json` and the processor) that `transformers` loads with
`pipeline("automatic-speech-recognition", model=FOLDER)`, with the run's settings and
scores. The report holds WER/CER and every utterance's reference and transcript.
The ONNX model runs with ONNX Runtime on a CPU without PyTorch; with int8 matrix products it
is smaller and faster, at nearly the same accuracy (it takes a while to prepare). Both come
with a model card (`README.md`: training data, settings, scores, limits) and, if you choose
one, the language model of step 5, which then decodes wherever the folder is used."""
NOT_PREPARED = "Nothing was prepared: the message on the page says why."


def build(ctx: Context) -> None:
    """The Export tab."""
    with gr.Tab("8. Export") as tab:
        gr.Markdown(INTRO)
        run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True)
        with gr.Row():
            model_button = gr.Button("Prepare the model zip", variant="primary")
            report_button = gr.Button("Prepare the evaluation report")
        with gr.Row():
            onnx_button = gr.Button("Prepare an ONNX model for CPUs")
            int8 = gr.Checkbox(label="int8 (smaller, faster)", value=True)
            lm = gr.Dropdown(label="Language model to include", choices=[lm_steps.GREEDY],
                             value=lm_steps.GREEDY, allow_custom_value=True)
        status = gr.Markdown()
        model_file = gr.DownloadButton("Download the model", visible=False)
        onnx_file = gr.DownloadButton("Download the ONNX model", visible=False)
        report_files = gr.File(label="Evaluation report", file_count="multiple",
                               interactive=False)
        # What the last export made, for the status once it is done. Inside the tab: a
        # component between two tabs shifts Gradio's tab list (the next tab drew twice).
        made = gr.State("")

    @shows_errors
    def export_model(name: str, run: str | None, lm_choice: str | None = None):
        path = steps.export_model(ctx.ws(name), _chosen(run), new_export_folder(),
                                  lm=lm_steps.chosen_lm(lm_choice))
        return _download(path), prepared_text([path])

    @shows_errors
    def export_onnx(name: str, run: str | None, quantize: bool, lm_choice: str | None = None):
        path = steps.export_onnx_model(ctx.ws(name), _chosen(run), new_export_folder(),
                                       int8=quantize, lm=lm_steps.chosen_lm(lm_choice))
        return _download(path), prepared_text([path])

    @shows_errors
    def export_report(name: str, run: str | None):
        paths = steps.export_report(ctx.ws(name), _chosen(run), new_export_folder())
        return [str(p) for p in paths], prepared_text(paths)

    def refresh(name: str):
        ws = ctx.ws(name) if name else None
        runs = run_names(ws, with_model=True) if ws else []
        choices = lm_steps.decoding_choices(ws) if ws else [lm_steps.GREEDY]
        return (gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                gr.Dropdown(choices=choices, value=lm_steps.GREEDY),
                gr.DownloadButton(visible=False), gr.DownloadButton(visible=False), None, "")

    exports = (
        (model_button, export_model, [run, lm], model_file, "the model zip", "export_model"),
        (onnx_button, export_onnx, [run, int8, lm], onnx_file, "the ONNX model", "export_onnx"),
        (report_button, export_report, [run], report_files, "the evaluation report",
         "export_report"),
    )
    for button, handler, inputs, output, what, api_name in exports:
        _wire_export(ctx, button, handler, inputs, [output, made], status, what, api_name)
    ctx.register(tab, refresh, [run, lm, model_file, onnx_file, report_files, status])


def _wire_export(ctx: Context, button: gr.Button, handler, inputs: list, outputs: list,
                 status: gr.Markdown, what: str, api_name: str) -> None:
    """One export button: the status says what is being prepared, then what was made.

    ``outputs`` are the export's file output and a ``gr.State`` the handler puts the
    status in (states are not part of the API: the action still returns just the file).
    """
    quiet = {"api_visibility": "private", "show_progress": "hidden", "queue": False}
    button.click(lambda run: preparing_text(what, run), inputs=[inputs[0]], outputs=[status],
                 **quiet)
    event = ctx.action(button, handler, [ctx.workspace, *inputs], outputs,
                       busy=f"Preparing {what}...", api_name=api_name,
                       show_progress_on=[button, status])
    event.success(lambda text: text, inputs=[outputs[-1]], outputs=[status], **quiet)
    event.failure(lambda: NOT_PREPARED, outputs=[status], **quiet)


def _chosen(run: str | None) -> str:
    if not run:
        raise gr.Error("Choose a run first.")
    return run


def preparing_text(what: str, run: str | None) -> str:
    """The status while an export runs."""
    if not run:
        return ""
    return (f"{badge('working')} Preparing {what} of run **{run}**... (a big model takes a "
            "minute or more)")


def _download(path: Path) -> gr.DownloadButton:
    return gr.DownloadButton(f"Download {path.name}", value=str(path), visible=True)


def prepared_text(paths: list[Path]) -> str:
    """The status once an export is made: its files and their sizes."""
    made = ", ".join(f"**{p.name}** ({_size(p)})" for p in paths)
    files = "it" if len(paths) == 1 else "them"
    return f"{badge('ready')} Prepared {made}. Download {files} below."


def _size(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else 0
    for unit in ("bytes", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
