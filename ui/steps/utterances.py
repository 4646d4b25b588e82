"""Every utterance of the workspace, as the Check and Evaluate steps list and play them."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ui.steps import read_json
from ui.steps.reasons import reason_for
from workbench.audio import SAMPLE_RATE, load_audio
from workbench.audit import EXCLUDED
from workbench.errors import WorkbenchError
from workbench.manifest import Utterance
from workbench.workspace import Workspace

UTTERANCE_COLUMNS = ["id", "split", "speaker", "seconds", "status", "transcript"]


def utterance_table(ws: Workspace) -> pd.DataFrame:
    """Every utterance with its split, speaker, length, status and transcript."""
    set_aside = _set_aside_reasons(ws)
    rows = [{"id": u.id, "split": split, "speaker": u.speaker, "seconds": round(u.duration, 2),
             "status": set_aside.get(u.id, "kept"), "transcript": u.text}
            for split, us in ws.read_all().items() for u in us]
    return pd.DataFrame(rows, columns=UTTERANCE_COLUMNS)


def _set_aside_reasons(ws: Workspace) -> dict[str, str]:
    data = read_json(ws.audit_path)
    reasons: dict[str, str] = {}
    for issue in data.get("issues", []) if isinstance(data, dict) else []:
        if issue.get("action") == EXCLUDED:
            reasons.setdefault(issue["id"], f"set aside: {reason_for(issue['check']).short}")
    return reasons


def find_utterance(ws: Workspace, utterance_id: str) -> Utterance:
    """The utterance with this id, from the manifests.

    Raises:
        WorkbenchError: No utterance has that id.
    """
    for utterances in ws.read_all().values():
        for utt in utterances:
            if utt.id == utterance_id:
                return utt
    raise WorkbenchError(f"There is no utterance {utterance_id!r} in this workspace.")


def utterance_audio(ws: Workspace, utterance_id: str) -> tuple[tuple[int, np.ndarray], str]:
    """The cached clip of an utterance as (rate, samples) and its transcript as Markdown."""
    utt = find_utterance(ws, utterance_id)
    samples = load_audio(ws.audio_path(utt))
    text = (f"**{html.escape(utt.id)}** ({utt.split}, speaker {html.escape(utt.speaker or '?')}, "
            f"{utt.duration:.2f} s)\n\n> {html.escape(utt.text)}")
    return (SAMPLE_RATE, samples), text
