"""Step 1, Data: what the workspace holds after an import (the uploads are ``ui/uploads.py``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ui.messages import badge, for_page
from ui.steps import read_json
from ui.steps.reasons import page_detail, reason_for, user_path
from workbench.manifest import Utterance
from workbench.workspace import Workspace


def data_summary(ws: Workspace) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """What the workspace holds now: a sentence, counts per split, and what was set aside."""
    splits = ws.read_all()
    total = sum(len(u) for u in splits.values())
    if not total:
        return ("Nothing imported yet. Upload a zip archive, or audio files together with "
                "their CSV/TSV table, ELAN or TextGrid files, then press Import.",
                split_frame({}), issues_frame([]))
    report = read_json(ws.import_report_path) or {}
    speakers = {u.speaker for us in splits.values() for u in us if u.speaker}
    minutes = sum(u.duration for us in splits.values() for u in us) / 60
    issues = report.get("issues", []) if isinstance(report, dict) else []
    text = (f"**{total} utterances** ({minutes:.1f} min, {len(speakers)} speakers) imported; "
            f"{len(issues)} item(s) set aside during the import (listed below). "
            "**Next:** step 2, Check.")
    warnings = report.get("warnings", []) if isinstance(report, dict) else []
    return text + warnings_markdown(warnings), split_frame(splits), issues_frame(issues, ws.root)


SPLIT_COLUMNS = ["split", "utterances", "minutes", "speakers"]


def split_frame(splits: dict[str, list[Utterance]]) -> pd.DataFrame:
    """Utterances, minutes and speakers per split."""
    rows = [{"split": split, "utterances": len(us),
             "minutes": round(sum(u.duration for u in us) / 60, 2),
             "speakers": len({u.speaker for u in us if u.speaker})}
            for split, us in splits.items()]
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


ISSUE_COLUMNS = ["file", "reason", "what to do", "details", "check"]


def issues_frame(issues: list[dict], workspace: Path | None = None) -> pd.DataFrame:
    """The importer's findings (``import.json``) as a table: the file as the user uploaded
    it, the reason and what to do in plain words, the details, and the check's code last."""
    rows = []
    for issue in issues:
        check = str(issue.get("check", ""))
        reason = reason_for(check)
        rows.append({"file": user_path(str(issue.get("item", "")), workspace),
                     "reason": reason.reason, "what to do": reason.todo,
                     "details": page_detail(str(issue.get("detail", "")), workspace),
                     "check": check})
    return pd.DataFrame(rows, columns=ISSUE_COLUMNS)


def warnings_markdown(warnings: list[str]) -> str:
    """The import's warnings as paragraphs in the page's words."""
    return "".join(f"\n\n{badge('note')} {for_page(w)}" for w in warnings)


def import_summary_markdown(summary: dict) -> str:
    """One paragraph about a finished import."""
    splits = ", ".join(f"{name} {info['utterances']}" for name, info in summary["splits"].items())
    text = (f"Imported **{summary['utterances']} utterances** ({summary['seconds'] / 60:.1f} "
            f"min, {summary['speakers']} speakers): {splits}. {len(summary['issues'])} item(s) "
            "set aside. **Next:** step 2, Check.")
    return text + warnings_markdown(summary["warnings"])
