"""Step 9, Untranscribed audio (optional): recordings nobody has transcribed yet, put to work.

The page's side of ``workbench prepare --untranscribed``, ``workbench pretrain`` and
``workbench pseudolabel``: uploaded recordings are kept in the workspace's uploads (as the Data
step keeps its own), cut at pauses and audited; continued pretraining and pseudo-labelling
run as jobs (``ui/jobs.py``, kinds ``pretrain`` and ``pseudolabel``) that outlive the page;
a fine-tune from a pretrained base or with a pseudo-label set starts the same training job as
step 4. The comparison lists every run with what it was trained from, scored on the same dev
and test splits, so the user sees whether a method helped on *their* data; the page never
claims it did (on the demo language neither method reached the 15% aim: bench/RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ui import jobs
from ui.steps import chosen_run
from ui.steps import train as training
from ui.uploads import stage_upload, upload_roots
from ui.workspaces import page_text
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

SET_ASIDE_COLUMNS = ["recording or piece", "check", "detail", "seconds"]
PRETRAIN_COLUMNS = ["pretraining run", "from", "step", "of", "loss", "codebook perplexity",
                    "code vectors used", "ended", "base for training"]
PSEUDO_COLUMNS = ["set", "made by run", "language model", "confidence threshold",
                  "pieces kept", "minutes kept", "dev CER kept / all"]
COMPARE_COLUMNS = ["run", "trained from", "pseudo-labels", "steps", "best dev CER (training)",
                   "dev CER", "test CER", "test WER"]
PRETRAIN_CHECKPOINT_EVERY = 25  # a page run checkpoints often: Stop keeps at most this many
DEFAULT_PRETRAIN_STEPS = 150  # about 3 epochs of an hour of audio (bench/untranscribed.py)
STEP_KINDS = (jobs.PRETRAIN, jobs.PSEUDOLABEL)


# --------------------------------------------------------------------------- import


def minutes_markdown(ws: Workspace) -> str:
    """Untranscribed minutes beside the transcribed ones."""
    from data_recipes.untranscribed import read_untranscribed

    pieces = read_untranscribed(ws)
    splits = ws.read_all() if ws.manifest_path("train").exists() else {}
    transcribed = {split: sum(u.duration for u in us) / 60 for split, us in splits.items()}
    parts = ", ".join(f"{split} {minutes:.1f}" for split, minutes in transcribed.items())
    text = (f"**Transcribed:** {sum(transcribed.values()):.1f} min ({parts})."
            if transcribed else "**Transcribed:** none yet (step 1).")
    untranscribed = sum(p.duration for p in pieces) / 60
    text += (f" **Untranscribed:** {untranscribed:.1f} min in {len(pieces)} pieces"
             + (f", {untranscribed / sum(transcribed.values()):.1f}× the transcribed audio."
                if transcribed and sum(transcribed.values()) else ".")
             if pieces else " **Untranscribed:** none yet: upload recordings below.")
    return text


def import_recordings(ws: Workspace, files: list[str | Path] | None, *,
                      progress: bool = False) -> tuple[str, pd.DataFrame]:
    """Keep the uploaded recordings (and archives) in the workspace, cut and audit them
    (``progress``: a bar per recording, which the page follows).

    Returns:
        The report (Markdown) and the table of what was set aside and why.

    Raises:
        WorkbenchError: Nothing uploaded, an unsafe archive, or no audio in the upload.
    """
    from data_recipes.archive import is_archive
    from data_recipes.common import AUDIO_EXTENSIONS
    from data_recipes.untranscribed import import_untranscribed

    upload = stage_upload(ws, files or [])
    folder, *archives = upload_roots(ws, upload)
    loose = sorted(p for p in folder.iterdir() if p.is_file())
    audio = [p for p in loose if p.suffix.lower() in AUDIO_EXTENSIONS]
    extracted = [p for p in archives if p.is_dir()]
    skipped = [p.name for p in loose if p not in audio and not is_archive(p)]
    if not audio and not extracted:
        raise WorkbenchError("The upload holds no recordings (audio files such as .wav, .mp3, "
                             ".flac, .ogg, .m4a, or a zip of them)"
                             + (f"; not audio: {', '.join(skipped)}" if skipped else "") + ".")
    result = import_untranscribed([*audio, *extracted], ws, progress=progress)
    summary = result.summary()
    lines = [f"**{summary['pieces']} pieces kept** ({summary['seconds'] / 60:.1f} min) from "
             f"{summary['files']} recording(s), cut at pauses into 2-15 s pieces."]
    if result.set_aside:
        reasons = ", ".join(f"{check} {count}" for check, count
                            in summary["set_aside_by_check"].items())
        lines.append(f"Set aside: {len(result.set_aside)} ({reasons}); the table says which "
                     "and why. Your recordings are kept as uploaded.")
    if skipped:
        lines.append(f"Not audio, left out: {', '.join(skipped)}.")
    return "\n\n".join(lines), set_aside_table(ws, result.set_aside)


def set_aside_table(ws: Workspace, items: list[dict]) -> pd.DataFrame:
    """What an import set aside, with workspace-relative names (never a server path)."""
    root = str(ws.root) + "/"
    rows = [{"recording or piece": str(item["item"]).replace(root, ""), "check": item["check"],
             "detail": str(item["detail"]).replace(root, ""),
             "seconds": round(float(item.get("seconds") or 0.0), 1)} for item in items]
    return pd.DataFrame(rows, columns=SET_ASIDE_COLUMNS)


# --------------------------------------------------------------------------- jobs


def start_pretraining(ws: Workspace, model_choice: str, steps: int,
                      models_folder: Path) -> jobs.JobStatus:
    """Start `workbench pretrain` on the untranscribed pieces as a job of the workspace.

    Raises:
        WorkbenchError: No untranscribed audio, a model that is not here, or a job running.
    """
    from data_recipes.untranscribed import read_untranscribed

    if not read_untranscribed(ws):
        raise WorkbenchError("Upload untranscribed recordings first (above).")
    steps = int(steps or 0)
    if steps < 1:
        raise WorkbenchError("Give the number of pretraining steps (at least 1).")
    training.require_available(model_choice, models_folder, ws)
    model = training.model_argument(model_choice, models_folder, ws)
    command = jobs.pretrain_command(ws, model=model, steps=steps, settings=[
        f"checkpoint_every={PRETRAIN_CHECKPOINT_EVERY}"])
    return jobs.job_status(ws, jobs.start_job(ws, command, kind=jobs.PRETRAIN).id)


def resume_pretraining(ws: Workspace, run: str | None) -> jobs.JobStatus:
    """Continue a stopped pretraining run from its last checkpoint.

    Raises:
        WorkbenchError: No such run, it has no checkpoint, or a job is running.
    """
    found = _pretraining_run(ws, run)
    if not (found / "checkpoint" / "state.pt").is_file():
        raise WorkbenchError(f"Pretraining run {found.name} stopped before its first "
                             "checkpoint: start a new one.")
    command = jobs.pretrain_command(ws, resume=found.name)
    return jobs.job_status(ws, jobs.start_job(ws, command, run=found.name, kind=jobs.PRETRAIN).id)


def start_pseudolabels(ws: Workspace, run: str | None, lm: str | None, threshold: float | None,
                       name: str | None) -> jobs.JobStatus:
    """Start `workbench pseudolabel` with ``run`` (and ``lm``) as a job of the workspace.

    Args:
        threshold: The confidence to keep a piece at (None or 0: chosen on dev).
        name: The set's name (empty: the run's, and the LM's).

    Raises:
        WorkbenchError: No untranscribed audio, no such run or LM, a bad name, a job running.
    """
    from data_recipes.untranscribed import read_untranscribed
    from ui.steps.language_model import chosen_lm, lm_names
    from ui.uploads import safe_file_name

    if not read_untranscribed(ws):
        raise WorkbenchError("Upload untranscribed recordings first (above).")
    found = chosen_run(ws, run, with_model=True)
    lm_name = chosen_lm(lm)
    if lm_name and lm_name not in lm_names(ws):
        raise WorkbenchError(f"There is no language model {lm_name!r} in this workspace.")
    if threshold is not None and not (0 <= float(threshold) < 1):
        raise WorkbenchError("The confidence threshold is between 0 and 1 (0: chosen on dev).")
    set_name = (name or "").strip() or f"{found.name}{'-' + lm_name if lm_name else ''}"
    if safe_file_name(set_name) != set_name:
        raise WorkbenchError(f"{set_name!r} cannot name a pseudo-label set: use letters, "
                             "digits, '-', '_' and '.'.")
    command = jobs.pseudolabel_command(ws, run=found.name, name=set_name, lm=lm_name or "",
                                       threshold=float(threshold) if threshold else None)
    return jobs.job_status(ws, jobs.start_job(ws, command, run=set_name,
                                              kind=jobs.PSEUDOLABEL).id)


def start_finetune(ws: Workspace, model_choice: str, pseudolabels: str | None, weight: float,
                   models_folder: Path) -> jobs.JobStatus:
    """Start a training job (as step 4 does, preset auto) from ``model_choice``, with a
    pseudo-label set at ``weight`` if one is chosen."""
    edits: dict[str, Any] = {}
    if pseudolabels:
        if pseudolabels not in pseudolabel_names(ws):
            raise WorkbenchError(f"There is no pseudo-label set {pseudolabels!r} here.")
        if not 0 < float(weight) <= 1:
            raise WorkbenchError("The weight of the pseudo-labels is above 0 and at most 1.")
        edits = {"data.pseudolabels": pseudolabels, "data.pseudo_weight": float(weight)}
    return training.start_training(ws, model_choice, "auto", edits, models_folder)


def stop_step_job(ws: Workspace) -> jobs.JobStatus:
    """Stop the running pretraining or pseudo-labelling job (pretraining keeps its last
    checkpoint and can be resumed).

    Raises:
        WorkbenchError: Neither is running.
    """
    for kind in STEP_KINDS:
        running = jobs.active_job(ws, kind)
        if running:
            return jobs.stop_job(ws, running.job.id)
    raise WorkbenchError("No pretraining or pseudo-labelling is running in this workspace.")


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class StepJobView:
    """The step's latest job (pretraining or pseudo-labelling) and where it stands."""

    status: str
    log: str
    curves: pd.DataFrame
    active: bool


def step_job_view(ws: Workspace) -> StepJobView:
    """What the step's newest job is doing (or how it ended), with the pretraining curves."""
    latest = _latest_step_job(ws)
    if latest is None:
        return StepJobView("", "", _curves([]), False)
    job = latest.job
    if job.kind == jobs.PSEUDOLABEL:
        status = {jobs.RUNNING: f"**Pseudo-labelling** into set {job.run}: transcribing the "
                                "untranscribed pieces (the dev split first, to choose the "
                                "threshold)...",
                  jobs.FINISHED: f"**Pseudo-labels ready:** set {job.run} (table below). "
                                 "Fine-tune with it below.",
                  jobs.STOPPED: f"Pseudo-labelling into {job.run} was stopped; nothing was "
                                "written.",
                  jobs.FAILED: f"**Pseudo-labelling failed:** {_last_line(latest.log_tail)}"
                  }[latest.state] if latest.state != jobs.STARTING else "Starting..."
        return StepJobView(page_text(status), page_text(latest.log_tail), _curves([]),
                           latest.active)
    records = _records(ws, job.run)
    return StepJobView(page_text(_pretrain_status(latest, records)),
                       page_text(latest.log_tail), _curves(records), latest.active)


def _latest_step_job(ws: Workspace) -> jobs.JobStatus | None:
    found = [s for s in (jobs.latest_job(ws, kind) for kind in STEP_KINDS) if s is not None]
    return max(found, key=lambda s: s.job.started) if found else None


def _pretrain_status(latest: jobs.JobStatus, records: list[dict]) -> str:
    start = next((r for r in records if r.get("event") == "start"), {})
    steps = [r for r in records if r.get("event") == "train"]
    end = next((r for r in reversed(records) if r.get("event") == "end"), {})
    where = (f"step {end.get('step', steps[-1]['step'])} of {start.get('steps', '?')}, loss "
             f"{steps[-1]['loss']:.3f}, codebook perplexity {steps[-1]['perplexity']:.0f} of "
             f"{start.get('codebook', '?')}" if steps else "loading the model")
    run = latest.job.run or "a new run"
    if latest.state in (jobs.STARTING, jobs.RUNNING):
        fresh = (f" The base has no pretraining heads ({', '.join(start['fresh'])} start "
                 "fresh): the first steps learn a codebook from nothing."
                 if start.get("fresh") else "")
        return f"**Pretraining** {run}: {where}.{fresh}"
    if latest.state == jobs.FINISHED:
        return (f"**Pretraining {run} ended** ({end.get('stopped', 'schedule')}) at {where}. "
                f"Its base is offered below and in step 4 as `base:{run}`.")
    if latest.state == jobs.STOPPED:
        return (f"Pretraining {run} was stopped at {where}; **Resume** continues it from its "
                "last checkpoint.")
    return f"**Pretraining failed** at {where}: {_last_line(latest.log_tail)}"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "see the log"


def _records(ws: Workspace, run: str) -> list[dict]:
    from workbench.pretrain import RUNS, read_pretraining_metrics

    return read_pretraining_metrics(ws.root / RUNS / run) if run else []


def _curves(records: list[dict]) -> pd.DataFrame:
    """Loss and codebook perplexity (as a share of the codebook) over the steps."""
    start = next((r for r in records if r.get("event") == "start"), {})
    size = float(start.get("codebook") or 0)
    rows = []
    for r in records:
        if r.get("event") == "train" and math.isfinite(r.get("loss", math.nan)):
            rows.append({"step": r["step"], "value": r["loss"], "series": "loss"})
            if size:
                rows.append({"step": r["step"], "value": r["perplexity"] / size,
                             "series": "perplexity / codebook"})
    return pd.DataFrame(rows, columns=["step", "value", "series"])


def _pretraining_run(ws: Workspace, run: str | None) -> Path:
    from workbench.pretrain import list_pretraining_runs

    runs = {p.name: p for p in list_pretraining_runs(ws)}
    if not runs:
        raise WorkbenchError("There is no pretraining run in this workspace yet.")
    if not run:
        return runs[max(runs)]
    if run not in runs:
        raise WorkbenchError(f"There is no pretraining run {run!r} in this workspace.")
    return runs[run]


# --------------------------------------------------------------------------- tables


def pretraining_names(ws: Workspace) -> list[str]:
    """The workspace's pretraining runs, newest first."""
    from workbench.pretrain import list_pretraining_runs

    return [p.name for p in reversed(list_pretraining_runs(ws))]


def pretraining_table(ws: Workspace) -> pd.DataFrame:
    """One row per pretraining run: its base, how far it got, its codebook, its result."""
    import json

    from workbench.pretrain import RUNS, read_pretraining_metrics

    bases = set(training.workspace_bases(ws))
    rows = []
    for name in pretraining_names(ws):
        folder = ws.root / RUNS / name
        records = read_pretraining_metrics(folder)
        settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
        start = next((r for r in records if r.get("event") == "start"), {})
        last = next((r for r in reversed(records) if r.get("event") == "train"), {})
        end = next((r for r in reversed(records) if r.get("event") == "end"), {})
        rows.append({"pretraining run": name, "from": Path(settings["model"]).name,
                     "step": end.get("step", last.get("step", 0)),
                     "of": start.get("steps", ""),
                     "loss": last.get("loss", ""), "codebook perplexity": last.get(
                         "perplexity", ""), "code vectors used": _share(last.get(
                             "codebook_used")), "ended": end.get("stopped", ""),
                     "base for training": f"base:{name}" if name in bases else ""})
    return pd.DataFrame(rows, columns=PRETRAIN_COLUMNS)


def _share(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else ""


def pseudolabel_names(ws: Workspace) -> list[str]:
    """The workspace's pseudo-label sets, by name."""
    from workbench.pseudolabel import pseudolabel_dir

    folder = pseudolabel_dir(ws)
    return sorted(p.parent.name for p in folder.glob("*/info.json")) if folder.is_dir() else []


def pseudolabel_table(ws: Workspace) -> pd.DataFrame:
    """One row per pseudo-label set: who made it, the threshold and what it kept."""
    import json

    from workbench.pseudolabel import pseudolabel_dir

    rows = []
    for name in pseudolabel_names(ws):
        info = json.loads((pseudolabel_dir(ws, name) / "info.json").read_text(encoding="utf-8"))
        t = info["threshold"]
        chosen = (f"{t['value']:.3f} (chosen on dev" + ("" if t.get("met", True) else
                  "; no level halves the dev CER") + ")" if t.get("dev_total") else
                  f"{t['value']:.3f} (given)")
        dev = (f"{t['dev_cer_kept']:.3f} / {t['dev_cer']:.3f}"
               if t.get("dev_cer") is not None and t.get("dev_cer_kept") is not None else "")
        rows.append({"set": name, "made by run": info["run"],
                     "language model": Path(info["lm"]).name if info["lm"] else "greedy",
                     "confidence threshold": chosen,
                     "pieces kept": f"{info['kept']} of {info['total']}",
                     "minutes kept": round(info["kept_seconds"] / 60, 1),
                     "dev CER kept / all": dev})
    return pd.DataFrame(rows, columns=PSEUDO_COLUMNS)


def comparison_table(ws: Workspace) -> pd.DataFrame:
    """Every run with a model, newest first: what it was trained from and its scores on the
    same dev and test splits (blank where not evaluated yet)."""
    from workbench.config import load_config
    from workbench.run import list_runs

    rows = []
    for run in reversed(list_runs(ws)):
        if not run.has_model:
            continue
        try:
            config = load_config(run.config_path)
        except (WorkbenchError, OSError, ValueError):
            continue
        reports = _reports(run)
        best = run.best() or {}
        result = run.read_result() or {}
        pseudo = config.data.pseudolabels
        rows.append({
            "run": run.name, "trained from": _origin(ws, config.model.name),
            "pseudo-labels": f"{pseudo} (weight {config.data.pseudo_weight:g})" if pseudo
            else "none",
            "steps": result.get("steps", best.get("step", "")),
            "best dev CER (training)": _rate(best.get("dev_cer")),
            "dev CER": _rate(reports.get("dev", {}).get("cer")),
            "test CER": _rate(reports.get("test", {}).get("cer")),
            "test WER": _rate(reports.get("test", {}).get("wer"))})
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _reports(run) -> dict:
    try:
        return run.read_reports()
    except WorkbenchError:
        return {}


def _origin(ws: Workspace, model: str) -> str:
    """A run's model as the page names it: a base of this workspace says what it continued."""
    import json

    from workbench.pretrain import BASES

    path = Path(model)
    if path.parent == ws.root / BASES:
        try:
            info = json.loads((path / "pretraining.json").read_text(encoding="utf-8"))
            return (f"base:{path.name} ({Path(info['base']).name} + {info['step']} steps of "
                    "pretraining here)")
        except (OSError, ValueError, KeyError):
            return f"base:{path.name}"
    return path.name if path.is_absolute() else model


def _rate(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else ""


def evaluate_unscored(ws: Workspace, progress: Any = None) -> str:
    """Score every finished run on dev and test where it was not yet (greedy decoding).

    Returns:
        What was scored (Markdown).
    """
    from workbench.evaluate import evaluate_run
    from workbench.run import list_runs

    ws.require_prepared()
    todo = [(run, split) for run in list_runs(ws) if run.has_model and run.finished
            for split in ("dev", "test") if split not in _reports(run)
            and ws.read_split(split)]
    if not todo:
        return "Every run is scored on dev and test already."
    for i, (run, split) in enumerate(todo):
        if progress is not None:
            progress(i / len(todo), desc=f"{run.name}: {split}")
        evaluate_run(ws, run.name, split, progress=False)
    return f"Scored {len(todo)} run-split pair(s) on the same dev and test splits."
