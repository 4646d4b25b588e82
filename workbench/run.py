"""A training run's folder: its one owner, as ``Workspace`` owns the workspace.

Train, evaluate, transcribe, export, the CLI and the UI ask this module for a run's paths,
for the list of runs, for a run by name, and for its state; nothing else spells the file
names below. Every file here is written atomically (``workbench.fsio``)::

    <workspace>/runs/<run-id>/      <run-id> = <UTC start time>-<model>
      config.yaml           the resolved configuration (resume reads it back)
      checkpoints/last/     model.safetensors, training_state.pt, state.json (resume point)
      model/                the best model so far by dev CER, in Hugging Face format
      metrics.jsonl         one JSON line per logged step and per evaluation
      result.json           summary once the run ends
      report.json           evaluation reports, one per split
      onnx/, onnx-int8/     ONNX exports (``workbench export --onnx [--int8]``)
    <workspace>/runs/.training.lock   held by the process training in this workspace

A run is *being trained* while a process holds the workspace's training lock for it (an
``flock``: the kernel frees it when that process dies, even by SIGKILL, so a crash never
leaves a run looking busy).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.fsio import (
    HeldLock,
    existing_dir,
    fsync_dir,
    lock_holder,
    recover_dir,
    remove_temporaries,
    write_json_atomic,
)
from workbench.workspace import Workspace, new_stamped_dir

CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
LAST = "last"
MODEL = "model"
METRICS = "metrics.jsonl"
RESULT = "result.json"
REPORT = "report.json"
ONNX, ONNX_INT8 = "onnx", "onnx-int8"
TRAINING_LOCK = ".training.lock"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")

# States of a run, as the CLI and the page name them.
TRAINING = "training"  # a process is training it now
FINISHED = "finished"  # result.json written
STOPPED = "stopped"  # ended early (killed, stopped, failed) with a checkpoint to resume from
NOT_STARTED = "not started"  # no checkpoint yet and nobody training it


@dataclass(frozen=True)
class Run:
    """Paths and state of one run folder; creating the object touches nothing on disk."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """The resume point (or the copy set aside if a crash cut its replacement short)."""
        return existing_dir(self.checkpoints_dir / LAST)

    @property
    def model_dir(self) -> Path:
        """The best model so far, in Hugging Face format (see :attr:`has_model`)."""
        return existing_dir(self.root / MODEL)

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def result_path(self) -> Path:
        return self.root / RESULT

    @property
    def report_path(self) -> Path:
        return self.root / REPORT

    def onnx_dir(self, int8: bool = False) -> Path:
        """Where ``workbench export --onnx [--int8]`` puts this run's export."""
        return self.root / (ONNX_INT8 if int8 else ONNX)

    # ----------------------------------------------------------------------- state

    @property
    def has_model(self) -> bool:
        """A complete model/ (written at the first dev evaluation, then at every better one)."""
        folder = self.model_dir
        return (folder / "config.json").is_file() and any(
            (folder / name).is_file() for name in WEIGHTS_FILES)

    @property
    def finished(self) -> bool:
        """The run ended and wrote result.json (its whole schedule, or stopped early on
        purpose: run.stop_at_step or --max-minutes)."""
        return self.result_path.is_file()

    @property
    def completed(self) -> bool:
        """The run trained its whole schedule (nothing is left to resume)."""
        result = self.read_result()
        return bool(result) and result.get("stopped") == "max_steps"

    @property
    def has_checkpoint(self) -> bool:
        return (self.last_checkpoint / "state.json").is_file()

    def being_trained(self, ws: Workspace) -> bool:
        """Whether a live process is training this run now."""
        holder = training_now(ws)
        return bool(holder) and holder.get("run") == self.name

    def state(self, ws: Workspace) -> str:
        """:data:`TRAINING`, :data:`FINISHED`, :data:`STOPPED` or :data:`NOT_STARTED`."""
        if self.being_trained(ws):
            return TRAINING
        if self.finished:
            return FINISHED
        return STOPPED if self.has_checkpoint else NOT_STARTED

    def recover(self) -> None:
        """Put back a model or checkpoint whose replacement a crash cut short, and remove
        what a killed writer left half-written (only while holding the training lock)."""
        recover_dir(self.root / MODEL)
        recover_dir(self.checkpoints_dir / LAST)
        remove_temporaries(self.root)
        remove_temporaries(self.checkpoints_dir)

    # ----------------------------------------------------------------------- files

    def read_metrics(self) -> list[dict]:
        """The records of metrics.jsonl (a line cut short by a crash is skipped)."""
        try:
            text = self.metrics_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        records = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def append_metrics(self, record: dict) -> None:
        """Add one line to metrics.jsonl (appends are atomic for lines this short)."""
        with open(self.metrics_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()

    def metrics_size(self) -> int:
        """Bytes in metrics.jsonl now (a checkpoint records it; resume cuts back to it)."""
        try:
            return self.metrics_path.stat().st_size
        except OSError:
            return 0

    def truncate_metrics(self, size: int) -> None:
        """Drop the lines logged after a checkpoint (they are logged again on resume)."""
        if self.metrics_path.is_file() and self.metrics_size() > size:
            with open(self.metrics_path, "r+b") as out:
                out.truncate(size)
                os.fsync(out.fileno())

    def read_result(self) -> dict | None:
        """result.json, or None when the run has not ended."""
        return _read_json(self.result_path)

    def write_result(self, result: dict) -> None:
        write_json_atomic(self.result_path, result)

    def read_reports(self) -> dict[str, dict]:
        """Evaluation reports by split (empty when never evaluated).

        Raises:
            WorkbenchError: report.json exists but is not valid JSON.
        """
        if not self.report_path.exists():
            return {}
        try:
            data = json.loads(self.report_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise WorkbenchError(
                f"The report of run {self.name} is not valid JSON ({err}); run "
                "`workbench evaluate` again to rewrite it.") from err
        splits = data.get("splits") if isinstance(data, dict) else None
        return dict(splits) if isinstance(splits, dict) else {}

    def write_report(self, split: str, report: dict) -> Path:
        """Store ``report`` under ``splits[split]`` in report.json, keeping other splits."""
        try:
            splits = self.read_reports()
        except WorkbenchError:
            splits = {}  # unreadable: replaced
        splits[split] = report
        write_json_atomic(self.report_path, {"run": self.name, "splits": splits})
        return self.report_path

    def best(self) -> dict | None:
        """The best dev evaluation: step, dev_cer, dev_wer (from result.json or metrics)."""
        result = self.read_result()
        if result and result.get("best_dev_cer") is not None:
            return {"step": result.get("best_step"), "dev_cer": result["best_dev_cer"],
                    "dev_wer": result.get("best_dev_wer")}
        evals = [r for r in self.read_metrics() if r.get("event") == "eval"
                 and _finite(r.get("dev_cer"))]
        if not evals:
            return None
        best = min(evals, key=lambda r: (r["dev_cer"], r["step"]))
        return {"step": best["step"], "dev_cer": best["dev_cer"], "dev_wer": best.get("dev_wer")}


# --------------------------------------------------------------------------- listing, lookup


def list_runs(ws: Workspace) -> list[Run]:
    """Run folders (with a config.yaml), oldest first (their names start with the time)."""
    if not ws.runs_dir.is_dir():
        return []
    return [Run(p) for p in sorted(ws.runs_dir.iterdir(), key=lambda p: p.name)
            if p.is_dir() and not p.name.startswith(".") and (p / CONFIG).is_file()]


def planned_steps(records: list[dict]) -> int:
    """A run's steps in all, from its metrics: the latest schedule, and laptop mode's finish
    steps where its top stage announced them (0 before the run started)."""
    starts = [r for r in records if r.get("event") == "start"]
    return max((int(r.get("max_steps", 0)) + int(r.get("finish_steps", 0)) for r in starts),
               default=0)


def run_names(ws: Workspace, *, with_model: bool = False) -> list[str]:
    """Names of the runs, newest first (only those with a model when asked)."""
    return [r.name for r in reversed(list_runs(ws)) if not with_model or r.has_model]


def find_run(ws: Workspace, run: str | Path | None = None, *, with_model: bool = False,
             allow_path: bool = True) -> Run:
    """The run named ``run`` (a name under runs/, or a run folder); None: the latest one.

    Args:
        ws: The workspace.
        run: Run name or folder; None takes the newest run (with a model, if asked).
        with_model: The run must have a model/ (for evaluate, transcribe, export).
        allow_path: Accept a folder path as well as a name (False for names from a page).

    Raises:
        WorkbenchError: No such run, no run at all, or (``with_model``) no model yet.
    """
    runs = list_runs(ws)
    if run is not None and str(run):
        found = _named(ws, run, runs, allow_path)
    elif not runs:
        raise WorkbenchError(
            f"{ws.root.name} has no training runs yet. Train one with "
            f"`workbench train -w {ws.root}`.")
    elif with_model:
        finished = [r for r in runs if r.has_model]
        if not finished:
            raise WorkbenchError(
                f"No run in {ws.root.name} has a model yet (the latest, {runs[-1].name}, "
                "has none: it is still before its first dev evaluation, or stopped before "
                f"it). Wait for it, resume it, or train again with `workbench train -w "
                f"{ws.root}`.")
        found = finished[-1]
    else:
        found = runs[-1]
    if with_model and not found.has_model:
        raise WorkbenchError(
            f"Run {found.name} has no model yet: it is saved at the first dev evaluation. "
            "Wait for it, or resume the run.")
    return found


def _named(ws: Workspace, run: str | Path, runs: list[Run], allow_path: bool) -> Run:
    by_name = {r.name: r for r in runs}
    if str(run) in by_name:
        return by_name[str(run)]
    path = Path(run).expanduser()
    if allow_path and (path / CONFIG).is_file():
        return Run(path.resolve())
    latest = ", ".join(r.name for r in runs[-5:]) or "none"
    raise WorkbenchError(f"There is no run {str(run)!r} in {ws.root.name} (latest runs: "
                         f"{latest}).")


def run_of_model_dir(path: Path) -> Run | None:
    """The run a ``model/`` (or run) folder belongs to, if it is one."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return Run(path)
    if (path.parent / CONFIG).is_file():
        return Run(path.parent)
    return None


def new_run(ws: Workspace, model_name: str) -> Run:
    """A fresh run folder named ``<UTC time>-<model>`` (claimed atomically)."""
    short = Path(model_name.rstrip("/")).name.replace("wav2vec2-", "")[:24] or "model"
    folder = new_stamped_dir(ws.runs_dir, short)
    fsync_dir(ws.runs_dir)
    return Run(folder)


# --------------------------------------------------------------------------- training lock


def training_now(ws: Workspace) -> dict | None:
    """Who trains in this workspace now: {"run", "pid", "host", "started"}, or None."""
    return lock_holder(ws.runs_dir / TRAINING_LOCK)


class TrainingLock:
    """One training process per workspace; held for the whole of ``train()``."""

    def __init__(self, held: HeldLock):
        self.held = held

    @classmethod
    def acquire(cls, ws: Workspace, run: str = "") -> TrainingLock:
        """Take the workspace's training lock.

        Raises:
            WorkbenchError: Another process is training in this workspace (the message
                names its run).
        """
        owner = {"run": run, "pid": os.getpid(), "host": socket.gethostname(),
                 "started": time.time()}
        held = HeldLock.try_acquire(ws.runs_dir / TRAINING_LOCK, owner)
        if held is None:
            raise busy_error(ws)
        return cls(held)

    def name_run(self, run: str) -> None:
        """Record the run once its folder exists (or when resuming another)."""
        self.held.update({"run": run, "pid": os.getpid(), "host": socket.gethostname(),
                          "started": time.time()})

    def release(self) -> None:
        self.held.release()


def busy_error(ws: Workspace) -> WorkbenchError:
    """The message for a second training start in a workspace that has one running."""
    holder = training_now(ws) or {}
    run = holder.get("run") or "(a new run, still loading)"
    since = holder.get("started")
    when = time.strftime(" since %H:%M", time.localtime(since)) if since else ""
    return WorkbenchError(
        f"Run {run} is being trained in workspace {ws.root.name} (process "
        f"{holder.get('pid', '?')}{when}). One training at a time per workspace: wait for it "
        "to finish or stop it, then start again (or train in another workspace).")


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")
