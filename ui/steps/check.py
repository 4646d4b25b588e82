"""Step 2, Check: run the audit and turn its report into tables and plot data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ui.steps import read_json
from ui.steps.reasons import page_detail, reason_for, user_path
from workbench.audit import AuditOptions, run_audit
from workbench.workspace import Workspace

NOT_IMPORTED = "(import)"  # the split of an item the import set aside (no clip to play)
FINDING_IDS_SHOWN = 3  # utterances named in the "about" cell of a finding
SPLIT_COLUMNS = ["split", "utterances", "kept", "set aside", "minutes kept", "speakers"]
HISTOGRAM_COLUMNS = ["seconds", "status", "utterances"]
SPEAKER_COLUMNS = ["speaker", "split", "minutes"]
SET_ASIDE_COLUMNS = ["utterance or file", "split", "reason", "what to do", "details", "check"]
FINDING_COLUMNS = ["about", "reason", "what to do", "details", "check"]


@dataclass(frozen=True)
class CheckView:
    """The audit as text, tables and plot data."""

    summary: str
    splits: pd.DataFrame
    histogram: pd.DataFrame
    speakers: pd.DataFrame
    set_aside: pd.DataFrame
    findings: pd.DataFrame


def run_check(ws: Workspace, max_seconds: float) -> CheckView:
    """Audit the workspace (writes audit.json) and return the view of the report."""
    ws.require_prepared()
    report = run_audit(ws, options=AuditOptions(max_duration=float(max_seconds)))
    return check_view(report.to_dict(), ws.root)


def saved_check(ws: Workspace) -> CheckView | None:
    """The view of the last audit.json (None when there is none)."""
    data = read_json(ws.audit_path)
    return check_view(data, ws.root) if isinstance(data, dict) and "total" in data else None


def empty_view(summary: str) -> CheckView:
    """A view with nothing checked yet: the summary, and empty tables with their headers."""
    return CheckView(summary, pd.DataFrame(columns=SPLIT_COLUMNS),
                     pd.DataFrame(columns=HISTOGRAM_COLUMNS),
                     pd.DataFrame(columns=SPEAKER_COLUMNS), pd.DataFrame(columns=SET_ASIDE_COLUMNS),
                     pd.DataFrame(columns=FINDING_COLUMNS))


def check_view(report: dict, workspace: Path | None = None) -> CheckView:
    """Tables and plot data from an audit report (``AuditReport.to_dict()``); server paths
    inside ``workspace`` are shown as the user uploaded them."""
    total = report["total"]
    counts = report.get("check_counts", {})
    excluded = len(report.get("excluded_ids", []))
    summary = (f"**{total['kept']} of {total['utterances']} utterances kept** "
               f"({total['kept_seconds'] / 60:.1f} of {total['seconds'] / 60:.1f} min); "
               f"{excluded} set aside from training.")
    if counts:
        summary += " Checks that flagged something: " + ", ".join(
            f"{reason_for(check).short} ({n})" for check, n in counts.items()) + "."
    summary += " **Next:** step 3, Alphabet."
    return CheckView(summary, _audit_splits(report), _histogram(report),
                     _speaker_minutes(report), _set_aside(report, workspace),
                     _findings(report))


def _audit_splits(report: dict) -> pd.DataFrame:
    rows = []
    for name, stats in [*report["splits"].items(), ("total", report["total"])]:
        rows.append({"split": name, "utterances": stats["utterances"], "kept": stats["kept"],
                     "set aside": stats["excluded"], "minutes kept":
                     round(stats["kept_seconds"] / 60, 2), "speakers": len(stats["speakers"])})
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def _histogram(report: dict) -> pd.DataFrame:
    """Long format for a stacked bar plot: one row per bin and status."""
    rows = []
    for row in report["histogram"]:
        label = bin_label(row)
        rows.append({"seconds": label, "status": "kept", "utterances": row["kept"]})
        rows.append({"seconds": label, "status": "set aside",
                     "utterances": row["count"] - row["kept"]})
    return pd.DataFrame(rows, columns=HISTOGRAM_COLUMNS)


def bin_label(row: dict) -> str:
    """A histogram bin as the plot names it: "2–3 s", or "≥ 12 s" for the open last bin."""
    if row.get("end") is None:
        return f"≥ {row['start']:g} s"
    return f"{row['start']:g}–{row['end']:g} s"


def _speaker_minutes(report: dict) -> pd.DataFrame:
    """Long format: kept minutes per speaker and split."""
    rows = []
    for row in report.get("speaker_minutes", []):
        for split, minutes in row["split_kept_minutes"].items():
            rows.append({"speaker": row["speaker"] or "(unknown)", "split": split,
                         "minutes": round(minutes, 3)})
    return pd.DataFrame(rows, columns=SPEAKER_COLUMNS)


def _set_aside(report: dict, workspace: Path | None) -> pd.DataFrame:
    """Utterances the audit set aside or flagged, then what the import set aside: each with
    its reason and what to do in plain words, the details, and the check's code last."""
    rows = [_reason_row(i["id"], i["split"], i["check"], i["action"], i["detail"], workspace)
            for i in report.get("issues", [])]
    rows += [_reason_row(user_path(str(i.get("item", "")), workspace), NOT_IMPORTED,
                         str(i.get("check", "")), str(i.get("action", "")),
                         str(i.get("detail", "")), workspace)
             for i in report.get("import_issues", [])]
    return pd.DataFrame(rows, columns=SET_ASIDE_COLUMNS)


def _reason_row(item: str, split: str, check: str, action: str, detail: str,
                workspace: Path | None) -> dict:
    reason = reason_for(check)
    return {"utterance or file": item, "split": split, "reason": reason.reason,
            "what to do": reason.todo, "details": f"{action}: {page_detail(detail, workspace)}",
            "check": check}


def _findings(report: dict) -> pd.DataFrame:
    """Findings about the corpus as a whole, in plain words, the code last."""
    rows = []
    for finding in report.get("findings", []):
        reason = reason_for(finding["check"])
        rows.append({"about": _subject(finding), "reason": reason.reason,
                     "what to do": reason.todo, "details": page_detail(finding["detail"]),
                     "check": finding["check"]})
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)


def _subject(finding: dict) -> str:
    """What a finding is about as the user knows it: a speaker, a transcript, utterances
    (not an audio hash), or the corpus."""
    ids = finding.get("ids") or []
    if finding["check"] == "audio_leak" and ids:
        return ", ".join(ids[:FINDING_IDS_SHOWN]) + (" ..." if len(ids) > FINDING_IDS_SHOWN
                                                      else "")
    return finding.get("subject") or "the whole corpus"
