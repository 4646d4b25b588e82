"""Step 4, Train, as plain functions: models offered, settings, and a run's progress.

The settings the page shows are generated from the run configuration's dataclasses
(``workbench.config.SECTIONS``); what the user changed becomes ``key=value`` overrides of
`workbench train`, which runs as a job (``ui/jobs.py``). A run's progress comes from its
metrics (``workbench.run.Run.read_metrics``: events start, train, eval, diverged, end); whether
it is being trained, finished or stopped from ``workbench.run`` too. A run trained outside the
page (on the command line) is one that holds the workspace's training lock while no page job
runs it.
"""

from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from ui import jobs
from ui.jobs import JobStatus
from ui.messages import badge, for_page
from ui.steps import chosen_run
from ui.workspaces import page_text
from workbench import run as runs
from workbench.errors import WorkbenchError
from workbench.estimate import duration_text, remaining_seconds
from workbench.vocab import require_current_vocab, vocab_is_stale
from workbench.workspace import Workspace

BASE_PREFIX = "base:"  # a model choice naming a base of the workspace (continued pretraining)
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")  # org/name
EXTERNAL = "external"  # a run being trained outside the page (on the command line)
NOT_STARTED = runs.NOT_STARTED  # a run that ended before its first checkpoint
LOG_EVENTS = ("train", "eval")
# A run no page job follows: its state from workbench.run, as the page names it.
RUN_STATES = {runs.TRAINING: EXTERNAL, runs.FINISHED: jobs.FINISHED,
              runs.STOPPED: jobs.STOPPED, runs.NOT_STARTED: NOT_STARTED}
# What a large model costs on a CPU, until the measured estimate of the training modes: one
# step of XLS-R 300M (315M parameters) over 16 s of audio took 80-110 s on 2 cores.
CPU_STEP_SECONDS = (80.0, 110.0)
CPU_REFERENCE = (315.0, 16.0, 2)  # millions of parameters, seconds of audio, cores
LARGE_MILLIONS = 50.0  # from this size on a CPU run takes hours
OFFLINE_CHOICES = ("demo-base (works offline; for demos, not real recognition), or copy a "
                   "downloaded checkpoint folder into the models folder and choose it "
                   "(listed as \"local: NAME\")")


# --------------------------------------------------------------------------- models, settings


def model_choices(models_folder: Path, ws: Workspace | None = None) -> list[tuple[str, str]]:
    """(label, value) of every model the Train step offers, XLS-R 300M first.

    Values are registry names, ``local:<folder>`` for a checkpoint folder found in
    ``models_folder``, or ``base:<name>`` for a base that continued pretraining made in
    ``ws`` (``workbench pretrain``).
    """
    from workbench.models import REGISTRY

    offline = {name for name, m in REGISTRY.items() if not m.hub_id}
    choices = [(f"{name} — {m.description}", name)
               for name, m in REGISTRY.items() if name not in offline]
    choices += [(f"{name} — offline: {m.description}", name)
                for name, m in REGISTRY.items() if name in offline]
    choices += [(f"local: {name} (in {models_folder})", f"local:{name}")
                for name in local_models(models_folder)]
    if ws is not None:
        choices += [(f"base: {name} (pretrained further on this workspace's untranscribed "
                     "audio)", f"{BASE_PREFIX}{name}") for name in workspace_bases(ws)]
    return choices


def workspace_bases(ws: Workspace) -> list[str]:
    """Names of the bases continued pretraining wrote in ``ws``, newest first."""
    from workbench.pretrain import BASES

    folder = ws.root / BASES
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and (p / "config.json").is_file()), reverse=True)


def local_models(models_folder: Path) -> list[str]:
    """Names of the checkpoint folders (with a config.json) in ``models_folder``."""
    if not models_folder.is_dir():
        return []
    return sorted(p.name for p in models_folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file())


def model_argument(choice: str, models_folder: Path, ws: Workspace | None = None) -> str:
    """What `workbench train --model` gets for a choice of :func:`model_choices`.

    Raises:
        WorkbenchError: The choice is not one of those offered.
    """
    from workbench.models import REGISTRY

    if choice in REGISTRY:
        return choice
    if choice.startswith("local:") and choice[len("local:"):] in local_models(models_folder):
        return str(models_folder / choice[len("local:"):])
    if choice.startswith(BASE_PREFIX) and ws is not None \
            and choice[len(BASE_PREFIX):] in workspace_bases(ws):
        from workbench.pretrain import BASES

        return str(ws.root / BASES / choice[len(BASE_PREFIX):])
    if HUB_ID.fullmatch(choice) and ".." not in choice:
        return choice
    raise WorkbenchError(f"Unknown model {choice!r}: choose one from the list, or type a "
                         "Hugging Face Hub id such as facebook/mms-300m (local checkpoints go "
                         f"in {models_folder}, one folder each).")


def choice_of_model(name: str, models_folder: Path, ws: Workspace | None = None) -> str:
    """The Model box's value for a run's ``model.name`` (the inverse of
    :func:`model_argument`): a registry name, ``local:<folder>``, ``base:<name>``, or the
    Hub id."""
    from workbench.models import DEMO_BASE, DEMO_BASE_DIR, REGISTRY

    if name in REGISTRY:
        return name
    path = Path(name)
    if path == DEMO_BASE_DIR:
        return DEMO_BASE
    if path.parent == models_folder and path.name in local_models(models_folder):
        return f"local:{path.name}"
    if ws is not None and path.parent.parent == ws.root and path.name in workspace_bases(ws):
        return f"{BASE_PREFIX}{path.name}"
    hub = {m.hub_id: short for short, m in REGISTRY.items() if m.hub_id}
    return hub.get(name, name)


def run_model(ws: Workspace, run: str, models_folder: Path) -> tuple[str, str] | None:
    """(Model box value, preset) a run was started with (None: its settings are unreadable)."""
    from workbench.config import load_config

    try:
        config = load_config(chosen_run(ws, run).config_path)
    except (WorkbenchError, OSError, ValueError):
        return None
    return choice_of_model(config.model.name, models_folder, ws), config.preset


def job_model(job: jobs.Job, models_folder: Path, ws: Workspace | None = None
              ) -> tuple[str, str] | None:
    """(Model box value, preset) of a new-run job, read from its command (None: a resume,
    or a command without them)."""
    command = job.command
    values = {flag: command[i + 1] for i, flag in enumerate(command[:-1])
              if flag in ("--model", "--preset")}
    if "--model" not in values:
        return None
    return (choice_of_model(values["--model"], models_folder, ws),
            values.get("--preset", "auto"))


def model_note(choice: str, models_folder: Path, steps: int, batch_seconds: float,
               ws: Workspace | None = None) -> str:
    """What the chosen model is, whether it is here, and what training it costs on this
    machine (Markdown; looks only on this machine, never on the network)."""
    import torch

    from workbench.models import REGISTRY, checkpoint_availability

    argument = model_argument(choice, models_folder, ws)
    found = checkpoint_availability(argument)
    entry = REGISTRY.get(choice)
    millions = entry.millions if entry else 0.0
    size = f" ({millions:g}M parameters)" if millions >= 1 else ""
    lines = [f"**Model:** {choice}{size}. " + (
        "Not available: " + found.reason + f". Choose {OFFLINE_CHOICES}." if not found.ok
        else found.reason + "." if found.reason else "On this machine.")]
    if not torch.cuda.is_available() and millions >= LARGE_MILLIONS:
        lines.append(cpu_cost(millions, steps, batch_seconds, torch.get_num_threads()))
    return "  \n".join(lines)


def cpu_cost(millions: float, steps: int, batch_seconds: float, cores: int) -> str:
    """A rough duration of a training run of a large model on this CPU (Markdown)."""
    ref_millions, ref_seconds, ref_cores = CPU_REFERENCE
    scale = (millions / ref_millions) * (batch_seconds / ref_seconds) * (ref_cores / cores)
    low, high = (steps * s * scale / 3600 for s in CPU_STEP_SECONDS)
    return (f"**No GPU here:** on this CPU ({cores} threads) one training step of this model "
            f"takes minutes; {steps} steps would take roughly {_hours(low)} to "
            f"{_hours(high)} (from a measurement of XLS-R 300M on 2 cores). On a CPU, "
            "choose demo-base to see the whole flow, and train large models on a machine "
            "with a GPU.")


def _hours(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.0f} days"
    return f"{hours:.0f} hours" if hours >= 2 else f"{hours * 60:.0f} minutes"


def require_available(choice: str, models_folder: Path, ws: Workspace | None = None) -> None:
    """Refuse to start training on a model that cannot be loaded here (asks the Hub, once,
    for a Hub model not downloaded yet).

    Raises:
        WorkbenchError: The model is neither on this machine nor downloadable now.
    """
    from workbench.models import checkpoint_availability

    found = checkpoint_availability(model_argument(choice, models_folder, ws), ask_hub=True)
    if not found.ok:
        raise WorkbenchError(f"Training was not started: {found.reason}. Choose "
                             f"{OFFLINE_CHOICES}.")


def mode_choices(choice: str, models_folder: Path, ws: Workspace | None = None) -> list[str]:
    """The training modes the chosen model offers: full, top, and adapter when it has
    adapters (reads its config only)."""
    from workbench.estimate import offered_modes

    try:
        return offered_modes(model_argument(choice, models_folder, ws))
    except WorkbenchError:
        return ["full", "top"]


ESTIMATE_COLUMNS = ["mode", "expected duration", "peak memory", "fits in an hour", "basis"]


def estimate_modes(ws: Workspace, model_choice: str, preset: str, edits: dict[str, Any],
                   models_folder: Path) -> tuple[pd.DataFrame, str, str]:
    """Measure a few training steps of the chosen model here (or read the cached
    measurement) and estimate each mode's run.

    Returns:
        The table (one row per mode), the mode to preselect (the chosen one if it fits an
        hour, else the first that does), and a one-line note (Markdown).
    """
    from workbench.config import build_config
    from workbench.estimate import BASIS_TEXT, duration_text, plan, summary_line

    require_current_vocab(ws)
    model = model_argument(model_choice, models_folder, ws)
    resolved_preset, resolved = resolved_settings(ws, preset, model)
    overrides = settings_overrides(resolved, {**resolved, **edits})
    config = build_config(preset=resolved_preset, overrides=[f"model.name={model}", *overrides])
    found = plan(ws, config)
    rows = [{"mode": e.mode, "expected duration": duration_text(e.seconds),
             "peak memory": f"{e.peak_mb / 1024:.1f} GiB",
             "fits in an hour": "yes" if e.fits_hour else "no",
             "basis": BASIS_TEXT[e.basis]} for e in found.estimates]
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS), found.suggested, summary_line(found)


def estimated_steps(ws: Workspace, values: dict[str, Any]) -> int:
    """The run's number of steps for these settings and the training audio (as the trainer
    derives it; batches assumed full)."""
    from workbench.config import build_config, finish_steps, resolve_schedule

    config = build_config(preset="10min", overrides=[
        f"{key}={value}" for key, value in values.items()
        if key in ("optim.max_steps", "optim.min_steps", "optim.epochs", "model.mode",
                   "model.finish_epochs")])
    batch_seconds = max(1.0, float(values["data.max_batch_seconds"]))
    batches = math.ceil(train_minutes(ws) * 60 / batch_seconds)
    return resolve_schedule(config, batches).max_steps + finish_steps(config, batches)


def setting_fields() -> list[tuple[str, Any]]:
    """(dotted key, dataclass field) of every run setting the page shows (not model.name)."""
    from workbench.config import SECTIONS

    return [(f"{section}.{f.name}", f) for section, cls in SECTIONS.items()
            for f in fields(cls) if (section, f.name) != ("model", "name")]


def parameter_name(key: str) -> str:
    """The widget/API parameter name of a dotted setting key (``optim.learning_rate`` ->
    ``optim_learning_rate``)."""
    return key.replace(".", "_")


def train_minutes(ws: Workspace) -> float:
    """Minutes of training audio (what `auto` sizes the preset by)."""
    ws.require_prepared()
    return sum(u.duration for u in ws.read_split("train")) / 60


def resolved_settings(ws: Workspace, preset: str, model: str, mode: str = "full"
                      ) -> tuple[str, dict[str, Any]]:
    """The preset `auto` resolves to, and every setting's value for this preset, model and
    mode (a mode's own defaults included: top mode's higher learning rate)."""
    from workbench.config import build_config

    config = build_config(preset=preset, train_minutes=train_minutes(ws),
                          overrides=[f"model.name={model}", f"model.mode={mode or 'full'}"])
    values = {}
    for key, _ in setting_fields():
        section, name = key.split(".")
        values[key] = getattr(getattr(config, section), name)
    return config.preset, values


def changed_settings(shown: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The settings whose value differs from what the page showed (the user's edits)."""
    return {key: value for key, value in values.items()
            if value is not None and (key not in shown or not _same(shown[key], value))}


def settings_overrides(resolved: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """``key=value`` for each setting whose value differs from the resolved one."""
    overrides = []
    for key, default in resolved.items():
        value = values.get(key, default)
        if value is None or _same(default, value):
            continue
        overrides.append(f"{key}={_format_value(default, value)}")
    return overrides


def _same(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(default, str):
        return default == value
    try:
        return math.isclose(float(default), float(value), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _format_value(default: Any, value: Any) -> str:
    if isinstance(default, bool):
        return "true" if value else "false"
    if isinstance(default, int):
        number = float(value)
        if not number.is_integer():
            raise WorkbenchError(f"{value!r} is not a whole number.")
        return str(int(number))
    if isinstance(default, float):
        return repr(float(value))
    return str(value)


def readiness(ws: Workspace) -> str:
    """What stands in the way of training now (vocabulary, another training), and where it
    will run."""
    import torch

    lines = []
    if not ws.vocab_path.is_file():
        lines.append(f"{badge('to do')} No vocabulary yet: build it in step 3, Alphabet, first.")
    elif vocab_is_stale(ws):
        lines.append(f"{badge('to do')} The data or the orthography profile changed after "
                     "the vocabulary was built: build it again in step 3, Alphabet.")
    if runs.training_now(ws) is not None:
        lines.append(f"{badge('training')} {runs.busy_error(ws)}")
    device = ("a GPU" if torch.cuda.is_available() else
              "the CPU (no GPU found: only the offline models train in minutes here)")
    lines.append(f"Training will run on {device}.")
    return "\n\n".join(lines)


def start_training(ws: Workspace, model_choice: str, preset: str, edits: dict[str, Any],
                   models_folder: Path, mode: str = "full") -> JobStatus:
    """Start `workbench train` as a job: the preset's settings for this model and data, with
    the user's edits on top.

    Args:
        ws: The workspace.
        model_choice: A value of :func:`model_choices`, or a Hub id.
        preset: "auto" or a preset name.
        edits: Settings the user changed (dotted key -> value).
        models_folder: Where ``local:`` models are.
        mode: The training mode the settings were resolved for (full, top, adapter).

    Returns:
        The new job's :class:`~ui.jobs.JobStatus`.
    """
    require_current_vocab(ws)
    require_available(model_choice, models_folder, ws)
    model = model_argument(model_choice, models_folder, ws)
    mode = str(edits.get("model.mode") or mode or "full")
    resolved_preset, resolved = resolved_settings(ws, preset, model, mode)
    overrides = settings_overrides(resolved, {**resolved, **edits})
    if mode != "full" and not any(o.startswith("model.mode=") for o in overrides):
        overrides.insert(0, f"model.mode={mode}")  # the command applies the mode's defaults
    command = jobs.train_command(ws, model=model, preset=resolved_preset, overrides=overrides)
    job = jobs.start_job(ws, command)
    return jobs.job_status(ws, job.id)


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class TrainingView:
    """Where one run (or the job making it) stands, with its curves."""

    run: str
    state: str
    status: str
    step: int
    max_steps: int
    loss: pd.DataFrame
    scores: pd.DataFrame
    log: str
    active: bool
    remaining_s: float | None = None  # training time left (None: not known yet)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.max_steps) if self.max_steps else 0.0


def training_view(ws: Workspace, run: str | None, job_id: str | None = None) -> TrainingView:
    """The progress of a job's run, or of the chosen run when no job is followed."""
    status = jobs.job_status(ws, job_id) if job_id else None
    if status is None and run:
        status = jobs.job_for_run(ws, run)
    if status is not None:
        run = status.job.run  # "" while the job is still loading the model
    found = chosen_run(ws, run) if run else None
    records = found.read_metrics() if found else []
    state = _page_state(ws, status, found)
    step, max_steps = _steps(records)
    best = found.best() if found else None
    active = bool(status and status.active) or state == EXTERNAL
    left = remaining_seconds(records, now=time.time()) if active else None
    text = _status_text(state, records, best, step, max_steps, failure_reason(status))
    if left is not None:
        text += f" About {duration_text(left)} left."
    return TrainingView(
        run=run or "", state=state, status=text, step=step, max_steps=max_steps,
        loss=_loss_frame(records), scores=_score_frame(records),
        log=status.log_tail if status else "", active=active, remaining_s=left)


def run_state(ws: Workspace, run: str | None) -> str:
    """The state of a run no page job is running, as the page names it: being trained outside
    the page (:data:`EXTERNAL`), finished, stopped (resumable), or :data:`NOT_STARTED`."""
    if not run:
        return ""
    return RUN_STATES[chosen_run(ws, run).state(ws)]


def _page_state(ws: Workspace, status: JobStatus | None, found: runs.Run | None) -> str:
    """A live page job's state; else the run's own, unless the job's ending says more.

    A run is trained outside the page when another process (`workbench train` on the
    command line) holds the workspace's training lock for it while no page job runs it.
    """
    if status is not None and (status.active or found is None):
        return status.state
    if found is None:
        return ""
    state = RUN_STATES[found.state(ws)]
    if status is None or state == EXTERNAL:
        return state
    if status.state == jobs.STOPPED and state == NOT_STARTED:
        return NOT_STARTED  # stopped before its first checkpoint: nothing to resume
    return status.state


def resume_training(ws: Workspace, run: str) -> JobStatus:
    """Continue a stopped run from its last checkpoint, as a job.

    Raises:
        WorkbenchError: The run finished, is still training, has no checkpoint yet, or
            another run is being trained in the workspace.
    """
    found = chosen_run(ws, run)
    current = jobs.job_for_run(ws, run)
    state = runs.TRAINING if current and current.active else found.state(ws)
    if state == runs.TRAINING:
        raise WorkbenchError(f"Run {run} is still training; there is nothing to resume.")
    if state == runs.FINISHED:
        raise WorkbenchError(f"Run {run} has finished. Start a new run to train again.")
    if state == runs.NOT_STARTED:
        raise WorkbenchError(f"Run {run} stopped before its first checkpoint (saved at each dev "
                             "evaluation), so it cannot be resumed; start a new run.")
    job = jobs.start_job(ws, jobs.resume_command(ws, run), run=run)
    return jobs.job_status(ws, job.id)


def _steps(records: list[dict]) -> tuple[int, int]:
    step = max((int(r.get("step", 0)) for r in records if r.get("event") in (*LOG_EVENTS, "end")),
               default=0)
    return step, runs.planned_steps(records)


def failure_reason(status: JobStatus | None) -> str:
    """Why a failed job failed, in the page's words: the error its command printed last."""
    if status is None or status.state != jobs.FAILED:
        return ""
    from workbench.cli import PAGE_MESSAGE

    lines = status.log_tail.splitlines()
    worded = [line[len(PAGE_MESSAGE):] for line in lines if line.startswith(PAGE_MESSAGE)]
    errors = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    reason = (worded or errors or [""])[-1].strip()
    return page_text(for_page(reason)) if reason else ""


def _status_text(state: str, records: list[dict], best: dict | None, step: int,
                 max_steps: int, reason: str = "") -> str:
    if not state:
        return "No training run yet. Choose a model and press **Start training**."
    scores = ""
    if best:
        spaced = all(r.get("dev_wer_meaningful", True) for r in records if r.get("event") == "eval")
        wer = f", WER {best['dev_wer']:.3f}" if spaced and _finite(best.get("dev_wer")) else ""
        scores = f" Best dev CER {best['dev_cer']:.3f}{wer} at step {best['step']}."
    losses = [r for r in records if r.get("event") == "train"]
    loss = f", loss {losses[-1]['loss']:.3f}" if losses else ""
    where = f"step {step} of {max_steps}" if max_steps else "no step yet"
    diverged = next((r for r in records if r.get("event") == "diverged"), None)
    texts = {
        jobs.STARTING: "**Starting**: loading the model and the data (a large model can take "
                       "minutes). Training goes on if you close this page.",
        jobs.RUNNING: f"**Training**: {where}{loss}.{scores} Training goes on if you close "
                      "this page; come back any time.",
        jobs.FINISHED: f"**Finished**: {where}{loss}.{scores} **Next:** step 6, Evaluate "
                       "(or first step 5, a language model from your text).",
        jobs.STOPPED: f"**Stopped** at {where}.{scores} Press **Resume** to continue from the "
                      "last checkpoint.",
        jobs.FAILED: f"**Failed** at {where}.{scores} " + (
            f"Why: {reason}" if reason else "The end of its log says why (below)."),
        EXTERNAL: f"**Training outside this page** (e.g. on the command line): {where}{loss}."
                  f"{scores}",
        NOT_STARTED: f"**Stopped** at {where}, before its first checkpoint (saved at each dev "
                     "evaluation): it cannot be resumed; start a new run.",
    }
    text = texts.get(state, state)
    if diverged:
        text += (f" The loss became {diverged.get('loss')} at step {diverged.get('step')}: "
                 "try a lower optim.learning_rate.")
    return text


def _loss_frame(records: list[dict]) -> pd.DataFrame:
    rows = [{"step": r["step"], "loss": r["loss"]} for r in records
            if r.get("event") == "train" and _finite(r.get("loss"))]
    return pd.DataFrame(rows, columns=["step", "loss"])


def _score_frame(records: list[dict]) -> pd.DataFrame:
    """Dev CER, GER and WER per evaluation (no WER for a script written without spaces)."""
    rows = [{"step": r["step"], "metric": name, "value": r[key]}
            for r in records if r.get("event") == "eval"
            for key, name in (("dev_cer", "dev CER"), ("dev_ger", "dev GER"),
                              ("dev_wer", "dev WER"))
            if _finite(r.get(key))
            and not (key == "dev_wer" and r.get("dev_wer_meaningful") is False)]
    return pd.DataFrame(rows, columns=["step", "metric", "value"])


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def progress_html(view: TrainingView) -> str:
    """A progress bar for the run."""
    percent = 100 * view.fraction
    label = f"{view.step} / {view.max_steps} steps" if view.max_steps else "waiting for step 1"
    if view.remaining_s is not None:
        label += f", about {duration_text(view.remaining_s)} left"
    return (f'<div class="wb-progress"><div class="wb-bar" style="width:{percent:.1f}%"></div>'
            f'<span>{html.escape(label)} ({percent:.0f}%)</span></div>')
