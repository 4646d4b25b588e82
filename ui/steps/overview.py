"""Where a workspace stands in the flow: one line per step and the next thing to do."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from ui.jobs import active_job
from ui.messages import badge
from ui.workspaces import workspace_title
from workbench.errors import WorkbenchError
from workbench.lm.store import list_lms
from workbench.run import find_run, list_runs, planned_steps, training_now
from workbench.vocab import vocab_is_stale
from workbench.workspace import Workspace


@dataclass(frozen=True)
class StepState:
    """One step of the flow: done or not, and what to say about it."""

    step: str
    done: bool
    detail: str
    optional: bool = False  # never "to do": the flow goes on without it
    number: int = 0  # its tab's number (0: its place in the list)


def overview(ws: Workspace) -> list[StepState]:
    """Where the workspace stands in the flow, one entry per step."""
    utterances = ws.read_all() if ws.manifest_path("train").exists() else {}
    total = sum(len(u) for u in utterances.values())
    minutes = sum(u.duration for us in utterances.values() for u in us) / 60
    runs = list_runs(ws)
    finished = [r for r in runs if r.finished]
    evaluated = [r for r in runs if r.report_path.is_file()]
    lms = list_lms(ws)
    return [
        StepState("Data", total > 0, f"{total} utterances, {minutes:.1f} min" if total
                  else "upload recordings with their transcripts"),
        StepState("Check", ws.audit_path.is_file(), "data checked" if ws.audit_path.is_file()
                  else "run the check"),
        StepState("Alphabet", ws.vocab_path.is_file() and not vocab_is_stale(ws),
                  _vocab_detail(ws)),
        StepState("Train", bool(finished), f"{len(finished)} finished run(s)" if finished
                  else "train a model"),
        StepState("Language model", bool(lms), _lm_detail(lms), optional=True),
        StepState("Evaluate", bool(evaluated), f"{len(evaluated)} run(s) evaluated"
                  if evaluated else "score a run on the test split"),
        _untranscribed_state(ws),
    ]


def _untranscribed_state(ws: Workspace) -> StepState:
    from data_recipes.untranscribed import read_untranscribed

    pieces = read_untranscribed(ws)
    detail = (f"{sum(p.duration for p in pieces) / 60:.1f} min in {len(pieces)} pieces"
              if pieces else "add recordings nobody has transcribed (optional)")
    return StepState("Untranscribed audio", bool(pieces), detail, optional=True, number=9)


def _lm_detail(names: list[str]) -> str:
    if not names:
        return "build one from the community's text (optional)"
    return f"{len(names)} built ({', '.join(names[:3])}{'...' if len(names) > 3 else ''})"


def _vocab_detail(ws: Workspace) -> str:
    if not ws.vocab_path.is_file():
        return "check the alphabet and build the vocabulary"
    if vocab_is_stale(ws):
        return "the data or the profile changed since the vocabulary was built: build it again"
    try:
        return f"{len(json.loads(ws.vocab_path.read_text(encoding='utf-8')))} labels"
    except (OSError, ValueError):
        return "vocabulary unreadable: build it again"


def overview_markdown(ws: Workspace) -> str:
    """The overview as one Markdown line per step, the training going on, and the next thing
    to do. Steps are marked with words ("done", "to do"), which every font renders and every
    screen reader reads, not with emoji."""
    steps = overview(ws)
    lines = [f"**Workspace: {html.escape(workspace_title(ws.root))}**  "]
    lines += [f"{badge(_state(s))} {s.number or i}. {s.step}: {s.detail}  "
              for i, s in enumerate(steps, start=1)]
    training = training_line(ws)
    if training:
        lines.append(training + "  ")
    busy = untranscribed_line(ws)
    if busy:
        lines.append(busy + "  ")
    todo = next((s for s in steps if not s.done and not s.optional), None)
    lines.append(f"**Next:** {todo.step} — {todo.detail}." if todo else
                 "**Next:** try your model on new recordings (step 7) or export it (step 8).")
    return "\n".join(lines)


def _state(step: StepState) -> str:
    return "done" if step.done else "optional" if step.optional else "to do"


def is_training(ws: Workspace) -> bool:
    """A run is being trained in the workspace (by the page or the command line)."""
    return training_now(ws) is not None or active_job(ws) is not None


def training_line(ws: Workspace) -> str:
    """What is being trained now, for the top of the page ("" when nothing is)."""
    job = active_job(ws)
    holder = training_now(ws)
    run = (job.job.run if job else "") or str((holder or {}).get("run", ""))
    if job is None and holder is None:
        return ""
    where = "by this page" if job else "outside this page (on the command line)"
    return (f"{badge('training')} {_run_progress(ws, run)}, started {where}: follow it in "
            "step 4, Train.")


def untranscribed_line(ws: Workspace) -> str:
    """Pretraining or pseudo-labelling going on ("" when neither is)."""
    from ui.jobs import PRETRAIN, PSEUDOLABEL

    for kind, what in ((PRETRAIN, "pretraining"), (PSEUDOLABEL, "pseudo-labelling")):
        job = active_job(ws, kind)
        if job is not None:
            name = f" ({job.job.run})" if job.job.run else ""
            return f"{badge('training')} {what}{name}: follow it in step 9, Untranscribed."
    return ""


def _run_progress(ws: Workspace, run: str) -> str:
    """"run NAME, step N of M" as far as its metrics tell."""
    if not run:
        return "a new run (loading the model)"
    try:
        records = find_run(ws, run, allow_path=False).read_metrics()
    except WorkbenchError:
        return f"run {run}"
    total = planned_steps(records)
    step = max((int(r.get("step", 0)) for r in records if r.get("event") in ("train", "eval")),
               default=0)
    return f"run {run}, step {step} of {total}" if total else f"run {run}"

