"""Where a workspace stands in the flow: one line per step and the next thing to do."""

from __future__ import annotations

import json
from dataclasses import dataclass

from workbench.run import list_runs
from workbench.vocab import vocab_is_stale
from workbench.workspace import Workspace


@dataclass(frozen=True)
class StepState:
    """One step of the flow: done or not, and what to say about it."""

    step: str
    done: bool
    detail: str


def overview(ws: Workspace) -> list[StepState]:
    """Where the workspace stands in the flow, one entry per step."""
    utterances = ws.read_all() if ws.manifest_path("train").exists() else {}
    total = sum(len(u) for u in utterances.values())
    minutes = sum(u.duration for us in utterances.values() for u in us) / 60
    runs = list_runs(ws)
    finished = [r for r in runs if r.finished]
    evaluated = [r for r in runs if r.report_path.is_file()]
    return [
        StepState("Data", total > 0, f"{total} utterances, {minutes:.1f} min" if total
                  else "upload recordings with their transcripts"),
        StepState("Check", ws.audit_path.is_file(), "data checked" if ws.audit_path.is_file()
                  else "run the check"),
        StepState("Alphabet", ws.vocab_path.is_file() and not vocab_is_stale(ws),
                  _vocab_detail(ws)),
        StepState("Train", bool(finished), f"{len(finished)} finished run(s)" if finished
                  else "train a model"),
        StepState("Evaluate", bool(evaluated), f"{len(evaluated)} run(s) evaluated"
                  if evaluated else "score a run on the test split"),
    ]


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
    """The overview as one Markdown line per step, and the next thing to do."""
    steps = overview(ws)
    lines = [f"**Workspace `{ws.root.name}`**  "]
    lines += [f"{'✅' if s.done else '⬜'} {i}. {s.step}: {s.detail}  "
              for i, s in enumerate(steps, start=1)]
    todo = next((s for s in steps if not s.done), None)
    lines.append(f"**Next:** {todo.step} — {todo.detail}." if todo else
                 "**Next:** try your model on new recordings (step 6) or export it (step 7).")
    return "\n".join(lines)
