"""Step 2, Check: run the audit and turn its report into tables and plot data."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ui.steps import read_json
from workbench.audit import AuditOptions, run_audit
from workbench.workspace import Workspace


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
    return check_view(report.to_dict())


def saved_check(ws: Workspace) -> CheckView | None:
    """The view of the last audit.json (None when there is none)."""
    data = read_json(ws.audit_path)
    return check_view(data) if isinstance(data, dict) and "total" in data else None


def check_view(report: dict) -> CheckView:
    """Tables and plot data from an audit report (``AuditReport.to_dict()``)."""
    total = report["total"]
    counts = report.get("check_counts", {})
    excluded = len(report.get("excluded_ids", []))
    summary = (f"**{total['kept']} of {total['utterances']} utterances kept** "
               f"({total['kept_seconds'] / 60:.1f} of {total['seconds'] / 60:.1f} min); "
               f"{excluded} set aside from training.")
    if counts:
        summary += " Checks that flagged something: " + ", ".join(
            f"{check} ({n})" for check, n in counts.items()) + "."
    summary += " **Next:** step 3, Alphabet."
    return CheckView(summary, _audit_splits(report), _histogram(report),
                     _speaker_minutes(report), _set_aside(report), _findings(report))


def _audit_splits(report: dict) -> pd.DataFrame:
    rows = []
    for name, stats in [*report["splits"].items(), ("total", report["total"])]:
        rows.append({"split": name, "utterances": stats["utterances"], "kept": stats["kept"],
                     "set aside": stats["excluded"], "minutes kept":
                     round(stats["kept_seconds"] / 60, 2), "speakers": len(stats["speakers"])})
    return pd.DataFrame(rows)


def _histogram(report: dict) -> pd.DataFrame:
    """Long format for a stacked bar plot: one row per bin and status."""
    rows = []
    for row in report["histogram"]:
        label = f"{row['start']:g}–{row['end']:g} s"
        rows.append({"seconds": label, "status": "kept", "utterances": row["kept"]})
        rows.append({"seconds": label, "status": "set aside",
                     "utterances": row["count"] - row["kept"]})
    return pd.DataFrame(rows, columns=["seconds", "status", "utterances"])


def _speaker_minutes(report: dict) -> pd.DataFrame:
    """Long format: kept minutes per speaker and split."""
    rows = []
    for row in report.get("speaker_minutes", []):
        for split, minutes in row["split_kept_minutes"].items():
            rows.append({"speaker": row["speaker"] or "(unknown)", "split": split,
                         "minutes": round(minutes, 3)})
    return pd.DataFrame(rows, columns=["speaker", "split", "minutes"])


def _set_aside(report: dict) -> pd.DataFrame:
    rows = [{"id": i["id"], "split": i["split"], "check": i["check"], "action": i["action"],
             "detail": i["detail"]} for i in report.get("issues", [])]
    rows += [{"id": str(i.get("item", "")), "split": "(import)", "check": str(i.get("check", "")),
              "action": str(i.get("action", "")), "detail": str(i.get("detail", ""))}
             for i in report.get("import_issues", [])]
    return pd.DataFrame(rows, columns=["id", "split", "check", "action", "detail"])


def _findings(report: dict) -> pd.DataFrame:
    rows = [{"check": f["check"], "about": f["subject"], "detail": f["detail"]}
            for f in report.get("findings", [])]
    return pd.DataFrame(rows, columns=["check", "about", "detail"])
