"""Step 9, Untranscribed audio (optional): upload recordings, pretrain or pseudo-label, compare.

Pretraining and pseudo-labelling run as jobs (``ui/jobs.py``) that outlive the page; the
fine-tune they lead to is a training job like step 4's, followed there.
"""

from __future__ import annotations

import gradio as gr

from ui import tempfiles
from ui.steps import language_model as lm_steps
from ui.steps import train as training
from ui.steps import untranscribed as steps
from ui.tabs.common import Context, shows_errors
from workbench.models import DEMO_BASE
from workbench.run import run_names

POLL_SECONDS = 2.0
NO_PSEUDOLABELS = "none"
INTRO = """Optional. An archive usually holds hours of recordings nobody has transcribed yet.
Upload them here (any audio format, long recordings too, or a zip): they are cut at pauses
into 2-15 s pieces and checked (silence, clipping, duplicates of each other or of the
transcribed clips). Two ways to learn from them, each a run you can compare on the **same dev
and test** splits:
- **Continued pretraining** keeps training a base model with wav2vec 2.0's own
  self-supervised objective on your recordings, then step 4 (or the button below) fine-tunes
  that base. Hours on a CPU for large models.
- **Pseudo-labels**: a trained run transcribes the recordings, the ones it is most sure of
  (a confidence threshold chosen on dev) become extra training data with a lower weight.

Neither is sure to help: on the workbench's demo language (10 min transcribed, 60 min
untranscribed) 150 steps of pretraining lowered the error rate on new voices by 10% on
average over three fine-tunes, and pseudo-labels gave no gain. Judge by the comparison at the
bottom, on your own data, and fine-tune more than once: two fine-tunes of the same data can
differ by as much."""


def build(ctx: Context) -> None:
    """The Untranscribed audio tab."""
    with gr.Tab("9. Untranscribed") as tab:
        gr.Markdown(INTRO)
        minutes = gr.Markdown()
        with gr.Row():
            files = gr.File(label="Untranscribed recordings (audio files or a zip)",
                            file_count="multiple", type="filepath", scale=4)
            import_button = gr.Button("Add the recordings", variant="primary", scale=1)
        import_report = gr.Markdown()
        set_aside = gr.Dataframe(label="Set aside, and why", headers=steps.SET_ASIDE_COLUMNS,
                                 interactive=False, wrap=True)
        gr.Markdown("### Continued pretraining")
        with gr.Row():
            base = gr.Dropdown(label="Base model", value=DEMO_BASE, scale=3,
                               choices=training.model_choices(ctx.root.models_folder),
                               allow_custom_value=True)
            pretrain_steps = gr.Number(label="Steps", value=steps.DEFAULT_PRETRAIN_STEPS,
                                       precision=0, scale=1, minimum=1)
            pretrain_button = gr.Button("Start pretraining", variant="primary", scale=1)
            resume_button = gr.Button("Resume the latest pretraining", scale=1)
        gr.Markdown("### Pseudo-labels")
        with gr.Row():
            run = gr.Dropdown(label="Run that transcribes", choices=[], value=None, scale=3,
                              allow_custom_value=True)
            decoding = gr.Dropdown(label="Decoding", choices=[lm_steps.GREEDY],
                                   value=lm_steps.GREEDY, scale=2, allow_custom_value=True)
            threshold = gr.Number(label="Confidence threshold", value=0, scale=1,
                                  info="0: chosen on dev")
            set_name = gr.Textbox(label="Set name", placeholder="the run's name", scale=2)
            pseudo_button = gr.Button("Make pseudo-labels", variant="primary", scale=1)
        with gr.Row():
            status = gr.Markdown()
            stop_button = gr.Button("Stop", variant="stop", scale=0)
        curves = gr.LinePlot(x="step", y="value", color="series", y_lim=[0, None],
                             title="Pretraining: loss and codebook perplexity (share of the "
                                   "codebook; a fall towards 0 is a collapse)")
        with gr.Accordion("Log of the job", open=False):
            log = gr.Textbox(lines=10, max_lines=20, show_label=False, interactive=False)
        pretrain_table = gr.Dataframe(label="Pretraining runs", headers=steps.PRETRAIN_COLUMNS,
                                      interactive=False)
        pseudo_table = gr.Dataframe(label="Pseudo-label sets", headers=steps.PSEUDO_COLUMNS,
                                    interactive=False, wrap=True)
        gr.Markdown("### Fine-tune with them")
        with gr.Row():
            model = gr.Dropdown(label="Model", value=DEMO_BASE, scale=3,
                                choices=training.model_choices(ctx.root.models_folder),
                                allow_custom_value=True,
                                info="a base: pretrained here, shown as base:...")
            pseudo = gr.Dropdown(label="Pseudo-labels", choices=[NO_PSEUDOLABELS],
                                 value=NO_PSEUDOLABELS, scale=2, allow_custom_value=True)
            weight = gr.Number(label="Their weight", value=0.5, scale=1, minimum=0.01,
                               maximum=1)
            finetune_button = gr.Button("Start fine-tuning", variant="primary", scale=1)
        finetune_note = gr.Markdown()
        gr.Markdown("### Compare runs")
        with gr.Row():
            evaluate_button = gr.Button("Score the finished runs on dev and test")
        compare_note = gr.Markdown()
        compare = gr.Dataframe(label="Runs, on the same dev and test", interactive=False,
                               headers=steps.COMPARE_COLUMNS, wrap=True)
        timer = gr.Timer(POLL_SECONDS, active=False)

    view_outputs = [status, curves, log, timer]
    table_outputs = [pretrain_table, pseudo_table, compare, minutes]

    def view(name: str) -> tuple:
        return _shown(steps.step_job_view(ctx.ws(name)))

    def tables(name: str) -> tuple:
        ws = ctx.ws(name)
        return (steps.pretraining_table(ws), steps.pseudolabel_table(ws),
                steps.comparison_table(ws), steps.minutes_markdown(ws))

    def choices(name: str) -> tuple:
        ws = ctx.ws(name)
        models = training.model_choices(ctx.root.models_folder, ws)
        runs = run_names(ws, with_model=True)
        sets = [NO_PSEUDOLABELS, *steps.pseudolabel_names(ws)]
        return (gr.Dropdown(choices=models), gr.Dropdown(choices=models),
                gr.Dropdown(choices=runs, value=runs[0] if runs else None),
                gr.Dropdown(choices=lm_steps.decoding_choices(ws)),
                gr.Dropdown(choices=sets))

    choice_outputs = [base, model, run, decoding, pseudo]

    @shows_errors
    def add(name: str, uploaded: list[str] | None,
            progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - how Gradio asks for it
        ws = ctx.ws(name)
        report, aside = steps.import_recordings(ws, uploaded, progress=True)
        tempfiles.remove_gradio_copies(uploaded or [])  # kept in the workspace now
        return report, aside, None, *tables(name)

    @shows_errors
    def pretrain(name: str, base_choice: str, count: float):
        ws = ctx.ws(name)
        steps.start_pretraining(ws, base_choice, int(count or 0), ctx.root.models_folder)
        gr.Info("Pretraining started. It goes on if you close this page.")
        return view(name)

    @shows_errors
    def resume(name: str):
        steps.resume_pretraining(ctx.ws(name), None)
        return view(name)

    @shows_errors
    def make_pseudolabels(name: str, run_name: str | None, decoder: str | None,
                          level: float | None, set_name_: str):
        steps.start_pseudolabels(ctx.ws(name), run_name, decoder, level or None, set_name_)
        return view(name)

    @shows_errors
    def stop(name: str):
        steps.stop_step_job(ctx.ws(name))
        return view(name)

    @shows_errors
    def poll(name: str):
        if not name:
            return (gr.skip(),) * (len(view_outputs) + len(table_outputs) + len(choice_outputs))
        found = steps.step_job_view(ctx.ws(name))
        if found.active:  # tables and lists change when a job ends
            return (*_shown(found), *(gr.skip(),) * (len(table_outputs) + len(choice_outputs)))
        return (*_shown(found), *tables(name), *choices(name))

    @shows_errors
    def finetune(name: str, model_choice: str, chosen: str | None, level: float):
        ws = ctx.ws(name)
        sets = None if not chosen or chosen == NO_PSEUDOLABELS else chosen
        started = steps.start_finetune(ws, model_choice, sets, level, ctx.root.models_folder)
        return (f"Training started (job {started.job.id}): follow it in step 4, Train. When "
                "it has finished, score it below and compare.")

    @shows_errors
    def score(name: str, progress=gr.Progress()):  # noqa: B008 - how Gradio asks for it
        ws = ctx.ws(name)
        return steps.evaluate_unscored(ws, progress), steps.comparison_table(ws)

    def refresh(name: str):
        if not name:
            return (gr.skip(),) * (len(view_outputs) + len(table_outputs) + len(choice_outputs))
        return (*view(name), *tables(name), *choices(name))

    event = ctx.action(import_button, add, [ctx.workspace, files],
                       [import_report, set_aside, files, *table_outputs],
                       busy="Cutting and checking the recordings...",
                       api_name="add_untranscribed")
    ctx.then_overview(event)
    ctx.action(pretrain_button, pretrain, [ctx.workspace, base, pretrain_steps], view_outputs,
               busy="Starting...", api_name="start_pretraining")
    ctx.action(resume_button, resume, [ctx.workspace], view_outputs, busy="Resuming...",
               api_name="resume_pretraining")
    ctx.action(pseudo_button, make_pseudolabels,
               [ctx.workspace, run, decoding, threshold, set_name], view_outputs,
               busy="Starting...", api_name="make_pseudolabels")
    ctx.action(stop_button, stop, [ctx.workspace], view_outputs, busy="Stopping...",
               api_name="stop_untranscribed_job")
    event = ctx.action(finetune_button, finetune, [ctx.workspace, model, pseudo, weight],
                       [finetune_note], busy="Starting...", api_name="start_finetune")
    ctx.then_overview(event)
    ctx.action(evaluate_button, score, [ctx.workspace], [compare_note, compare],
               busy="Scoring...", api_name="score_runs")
    timer.tick(poll, inputs=[ctx.workspace],
               outputs=[*view_outputs, *table_outputs, *choice_outputs],
               api_visibility="private", show_progress="hidden")
    ctx.register(tab, refresh, [*view_outputs, *table_outputs, *choice_outputs])


def _shown(found: steps.StepJobView) -> tuple:
    """The job's status, curves and log, and the poll timer: on while the job runs."""
    return found.status, found.curves, found.log, gr.Timer(active=found.active)
