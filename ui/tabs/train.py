"""Step 4, Train: model, preset and settings; start, stop, resume; live progress and curves.

Training never runs in the UI process: Start launches `workbench train` as a job
(``ui/jobs.py``). The page follows the job with a timer and finds it again after a reload or a
restart of the UI, since everything about it is on disk.
"""

from __future__ import annotations

import gradio as gr

from ui import jobs
from ui.steps import train as training
from ui.tabs.common import Context, shows_errors
from workbench.config import DEFAULT_MODEL, PRESETS, TrainConfig
from workbench.run import run_names
from workbench.workspace import Workspace

DEFAULT_CHOICE = "xls-r-300m"
POLL_SECONDS = 2.0
INTRO = f"""Fine-tune a pretrained speech model on your training split. **XLS-R 300M**
({DEFAULT_MODEL}, 128 languages) is the default; it is downloaded from the Hugging Face Hub
the first time, or put a downloaded checkpoint folder in the models folder and choose it as
`local:`. The offline models (`tiny`, `small`, `demo-base`) need no download and show the
flow on a CPU but do not make a useful recogniser. Training runs as its own process: you can
close this page and come back."""


def build(ctx: Context) -> None:
    """The Train tab."""
    with gr.Tab("4. Train") as tab:
        gr.Markdown(INTRO)
        readiness = gr.Markdown()
        with gr.Row():
            model = gr.Dropdown(label="Model", value=DEFAULT_CHOICE, scale=3,
                                choices=training.model_choices(ctx.root.models_folder),
                                allow_custom_value=True,
                                info="or type a Hugging Face Hub id, e.g. facebook/mms-300m")
            preset = gr.Radio(["auto", *PRESETS], value="auto", label="Preset", scale=2,
                              info="sized for the amount of training audio")
        preset_note = gr.Markdown()
        with gr.Row():
            mode = gr.Radio(["full", "top"], value="full", label="Mode", scale=3,
                            info="full: every layer trains; top (laptop mode): the lower "
                                 "layers are cached, the top ones train, much faster on a "
                                 "CPU but less accurate (1.1-1.4x the error on demo-base); "
                                 "adapter: MMS adapters only (models with adapters)")
            estimate_button = gr.Button("Estimate", scale=1)
        estimate_note = gr.Markdown()
        estimate_table = gr.Dataframe(headers=training.ESTIMATE_COLUMNS, interactive=False,
                                      visible=False, label="On this machine")
        with gr.Accordion("Settings: resolved for this preset and model, edit any", open=False):
            gr.Markdown("Changing the model, the preset or the mode resets these to its "
                        "values.")
            settings = _setting_widgets()
        with gr.Row():
            start_button = gr.Button("Start training", variant="primary")
            stop_button = gr.Button("Stop", variant="stop")
            resume_button = gr.Button("Resume the chosen run")
        gr.Markdown("### Progress")
        run = gr.Dropdown(label="Run", choices=[], value=None, allow_custom_value=True)
        status = gr.Markdown()
        progress = gr.HTML()
        with gr.Row():
            loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss")
            score_plot = gr.LinePlot(x="step", y="value", color="metric", y_lim=[0, None],
                                     title="Dev CER, GER and WER (lower is better)")
        with gr.Accordion("Log of the job", open=False):
            log = gr.Textbox(lines=10, max_lines=20, show_label=False, interactive=False)
        job = gr.State("")
        # What the settings widgets show (dotted key -> value): the user's edits are the
        # differences, applied on top of the preset when training starts.
        shown = gr.State(_defaults())
        timer = gr.Timer(POLL_SECONDS, active=False)

    view_outputs = [run, status, progress, loss_plot, score_plot, log, timer]

    @shows_errors
    def resolve(name: str, model: str, preset: str):
        ws = ctx.ws(name)
        if not ws.manifest_path("train").exists():
            return ("Import data first (step 1).",) + (gr.skip(),) * (len(resolve_outputs) - 1)
        return _resolved(ctx, ws, model, preset)

    @shows_errors
    def start(name: str, model: str, preset: str, shown: dict, **values):
        ws = ctx.ws(name)
        chosen = {key: values[training.parameter_name(key)] for key in settings
                  if training.parameter_name(key) in values}
        edits = training.changed_settings(shown or {}, chosen)
        started = training.start_training(ws, model, preset, edits, ctx.root.models_folder,
                                          mode=str((shown or {}).get("model.mode", "full")))
        gr.Info("Training started. It goes on if you close this page.")
        return started.job.id, *_view(ws, "", started.job.id, force_run=True)

    @shows_errors
    def estimate(name: str, model: str, preset: str, shown: dict, **values):
        ws = ctx.ws(name)
        chosen = {key: values[training.parameter_name(key)] for key in settings
                  if training.parameter_name(key) in values}
        edits = training.changed_settings(shown or {}, chosen)
        table, suggested, note = training.estimate_modes(ws, model, preset, edits,
                                                         ctx.root.models_folder)
        return gr.Dataframe(value=table, visible=True), note, suggested, suggested

    @shows_errors
    def choose_mode(name: str, model: str, preset: str, choice: str):
        """A mode brings its own defaults (top mode: 3x the learning rate): shown here."""
        ws = ctx.ws(name)
        if not ws.manifest_path("train").exists():
            return (gr.skip(),) * len(resolve_outputs)
        return _resolved(ctx, ws, model, preset, choice)

    def modes_for(name: str, model: str):
        ws = ctx.ws(name) if name else None
        choices = training.mode_choices(model or DEFAULT_CHOICE, ctx.root.models_folder, ws)
        return gr.Radio(choices=choices, value="full"), gr.Dataframe(visible=False), ""

    @shows_errors
    def stop(name: str, job_id: str, run: str | None):
        ws = ctx.ws(name)
        target = job_id or _active_id(ws)
        if not target:
            raise gr.Error("No training job is running in this workspace.")
        jobs.stop_job(ws, target)
        return target, *_view(ws, run, target, force_run=True)

    @shows_errors
    def resume(name: str, run: str | None):
        ws = ctx.ws(name)
        if not run:
            raise gr.Error("Choose the run to resume first.")
        started = training.resume_training(ws, run)
        return started.job.id, *_view(ws, run, started.job.id, force_run=True)

    @shows_errors
    def poll(name: str, run: str | None, job_id: str):
        if not name:
            return (gr.skip(),) * len(view_outputs)
        return _view(ctx.ws(name), run, job_id)

    @shows_errors
    def choose_run(name: str, run: str | None):
        ws = ctx.ws(name)
        followed = jobs.job_for_run(ws, run) if run else None
        job_id = followed.job.id if followed and followed.active else ""
        return job_id, *_view(ws, run, job_id)

    def refresh(name: str):
        if not name:
            return (gr.skip(),) * 2 + ("",) + (gr.skip(),) * len(view_outputs)
        ws = ctx.ws(name)
        active = jobs.active_job(ws)
        job_id = active.job.id if active else ""
        model_update = gr.Dropdown(choices=training.model_choices(ctx.root.models_folder, ws))
        return (model_update, training.readiness(ws), job_id,
                *_view(ws, _shown_run(ws), job_id, force_run=True))

    def resolve_for_workspace(name: str, model: str, preset: str):
        """On load and workspace change: the model and preset of the run being trained (or
        of the latest run), so that Start never launches another model unnoticed."""
        if not name:
            return (gr.skip(),) * (2 + len(resolve_outputs))
        ws = ctx.ws(name)
        started = _shown_model(ws, ctx.root.models_folder)
        if started is not None:
            model, preset = started[0], started[1] if started[1] in PRESETS else "auto"
        return (model, preset, *resolve(name, model, preset))

    def resolve_once(name: str, model: str, preset: str, shown: dict):
        """On opening the tab: fill the settings if they never were (data came later)."""
        if not name or shown != _defaults():
            return (gr.skip(),) * len(resolve_outputs)
        return resolve(name, model, preset)

    widgets = list(settings.values())
    resolve_outputs = [readiness, preset_note, *widgets, shown]
    model.input(resolve, inputs=[ctx.workspace, model, preset], outputs=resolve_outputs,
                api_name="resolve_settings")
    preset.input(choose_mode, inputs=[ctx.workspace, model, preset, mode],
                 outputs=resolve_outputs, api_visibility="private")
    model.change(shows_errors(modes_for), inputs=[ctx.workspace, model],
                 outputs=[mode, estimate_table, estimate_note],
                 api_visibility="private", show_progress="hidden")
    mode.input(choose_mode, inputs=[ctx.workspace, model, preset, mode], outputs=resolve_outputs,
               api_visibility="private", show_progress="hidden")
    estimated = ctx.action(
        estimate_button, estimate, inputs=[ctx.workspace, model, preset, shown],
        outputs=[estimate_table, estimate_note, mode, settings["model.mode"]],
        busy="Measuring a few training steps...",
        inputs_kwargs={training.parameter_name(k): w for k, w in settings.items()},
        api_name="estimate_training")
    estimated.success(choose_mode, inputs=[ctx.workspace, model, preset, mode],
                      outputs=resolve_outputs, api_visibility="private",
                      show_progress="hidden")
    event = ctx.action(
        start_button, start, inputs=[ctx.workspace, model, preset, shown],
        outputs=[job, *view_outputs], busy="Starting...",
        inputs_kwargs={training.parameter_name(k): w for k, w in settings.items()},
        api_name="start_training")
    ctx.then_overview(event)
    ctx.action(stop_button, stop, inputs=[ctx.workspace, job, run], outputs=[job, *view_outputs],
               busy="Stopping...", api_name="stop_training")
    ctx.action(resume_button, resume, inputs=[ctx.workspace, run], outputs=[job, *view_outputs],
               busy="Resuming...", api_name="resume_training")
    timer.tick(poll, inputs=[ctx.workspace, run, job], outputs=view_outputs,
               api_name="training_status", show_progress="hidden")
    run.input(choose_run, inputs=[ctx.workspace, run], outputs=[job, *view_outputs],
              api_visibility="private")
    ctx.register(tab, refresh, [model, readiness, job, *view_outputs])
    ctx.on_workspace(resolve_for_workspace, [model, preset], [model, preset, *resolve_outputs])
    tab.select(shows_errors(resolve_once), inputs=[ctx.workspace, model, preset, shown],
               outputs=resolve_outputs, api_visibility="private", show_progress="hidden")


def _defaults() -> dict:
    """Every setting's default (dotted key -> value), what the widgets show at first."""
    defaults = TrainConfig()
    return {key: getattr(getattr(defaults, key.split(".")[0]), item.name)
            for key, item in training.setting_fields()}


def _setting_widgets() -> dict:
    """One widget per run setting, generated from the config dataclasses (key -> widget)."""
    widgets = {}
    section = ""
    defaults = _defaults()
    for key, item in training.setting_fields():
        if key.split(".")[0] != section:
            section = key.split(".")[0]
            gr.Markdown(f"**{section}**")
        value = defaults[key]
        help_text = item.metadata.get("help", "")
        if isinstance(value, bool):
            widgets[key] = gr.Checkbox(label=key, value=value, info=help_text)
        elif isinstance(value, int):
            widgets[key] = gr.Number(label=key, value=value, precision=0, info=help_text)
        elif isinstance(value, float):
            widgets[key] = gr.Number(label=key, value=value, info=help_text)
        else:
            widgets[key] = gr.Textbox(label=key, value=str(value), info=help_text)
    return widgets


def _resolved(ctx: Context, ws: Workspace, model: str | None, preset: str,
              mode: str = "full") -> tuple:
    """Readiness text, the preset and model note and every setting's value for this model,
    preset and mode."""
    model = model or DEFAULT_CHOICE
    argument = training.model_argument(model, ctx.root.models_folder, ws)
    resolved_preset, values = training.resolved_settings(ws, preset, argument, mode)
    minutes = training.train_minutes(ws)
    steps = training.estimated_steps(ws, values)
    note = (f"Preset **{resolved_preset}**" + (" (chosen by auto)" if preset == "auto" else "")
            + f" for {minutes:.1f} min of training audio: about {steps} steps.\n\n"
            + training.model_note(model, ctx.root.models_folder, steps,
                                  values["data.max_batch_seconds"], ws))
    return (training.readiness(ws), note, *values.values(), values)


def _shown_run(ws: Workspace) -> str | None:
    """The run the Train step shows on arrival: the one being trained, else the latest."""
    active = jobs.active_job(ws)
    if active and active.job.run:
        return active.job.run
    latest = run_names(ws)[:1]
    return latest[0] if latest else None


def _shown_model(ws: Workspace, models_folder) -> tuple[str, str] | None:
    """(model, preset) of the run being trained (also before its run folder exists), else of
    the latest run; None without runs."""
    active = jobs.active_job(ws)
    if active and not active.job.run:
        return training.job_model(active.job, models_folder, ws)
    shown = _shown_run(ws)
    return training.run_model(ws, shown, models_folder) if shown else None


def _active_id(ws: Workspace) -> str:
    active = jobs.active_job(ws)
    return active.job.id if active else ""


def _view(ws: Workspace, run: str | None, job_id: str, *,
          force_run: bool = False) -> tuple:
    """Outputs for the progress widgets (the run list only when the run changed)."""
    view = training.training_view(ws, run, job_id or None)
    if force_run or (view.run or None) != (run or None):
        run_update = gr.Dropdown(choices=run_names(ws), value=view.run or None)
    else:
        run_update = gr.skip()
    return (run_update, view.status, training.progress_html(view), view.loss, view.scores,
            view.log, gr.Timer(active=view.active))
