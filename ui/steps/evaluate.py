"""Step 6, Evaluate: score a split with a run's model; differences marked word by word."""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass

import pandas as pd

from ui.steps import chosen_run
from ui.steps.reasons import reason_for
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS
from workbench.scripts_info import graphemes
from workbench.workspace import Workspace

EVAL_COLUMNS = ["id", "WER", "CER", "GER", "reference", "hypothesis", "differences"]
NEXT = " Click a row to hear it. **Next:** step 7, Try it, or step 8, Export."
# Greedy and LM decoding side by side: the rates are the LM's, and its transcript is shown
# with its differences from the reference marked (same column types as EVAL_COLUMNS).
COMPARE_COLUMNS = ["id", "WER", "CER", "GER", "reference", "greedy", "with LM (differences)"]
# For scripts written without spaces between words: CER and GER lead, WER comes last.
UNSPACED_COLUMNS = ["id", "CER", "GER", "WER", "reference", "hypothesis", "differences"]


@dataclass(frozen=True)
class EvalView:
    """An evaluation report as a summary and a worst-first table."""

    summary: str
    table: pd.DataFrame


def evaluate(ws: Workspace, run: str, split: str, lm: str | None = None) -> EvalView:
    """Transcribe and score a split with a run's model (stored in the run's reports).

    With ``lm`` (a language model of the workspace) the split is decoded with it too, and
    the view sets greedy and LM decoding side by side (the greedy report is reused when the
    run already has one for this split).
    """
    from workbench.evaluate import evaluate_run

    _check_split(split)
    found = chosen_run(ws, run, with_model=True)
    saved = found.read_reports().get(split) if lm else None
    greedy = saved if isinstance(saved, dict) else evaluate_run(
        ws, found.root, split, progress=False).to_dict()
    if not lm:
        return eval_view(greedy)
    with_lm = evaluate_run(ws, found.root, split, progress=False, lm=lm).to_dict()
    return compare_view(greedy, with_lm)


def saved_evaluation(ws: Workspace, run: str, split: str, lm: str | None = None
                     ) -> EvalView | None:
    """The stored report of ``run`` on ``split`` (None if it was never evaluated); with
    ``lm``, greedy and LM side by side (None unless both are stored)."""
    from workbench.evaluate import report_key

    _check_split(split)
    reports = chosen_run(ws, run).read_reports()
    greedy = reports.get(split)
    if not isinstance(greedy, dict):
        return None
    if not lm:
        return eval_view(greedy)
    with_lm = reports.get(report_key(split, f"lm:{lm}"))
    return compare_view(greedy, with_lm) if isinstance(with_lm, dict) else None


def compare_view(greedy: dict, with_lm: dict) -> EvalView:
    """Greedy and LM decoding of one split side by side, worst (with the LM) first."""
    meaningful, _ = _wer_meaning(with_lm)
    summary = (f"**{with_lm['split']} split of run {with_lm['run']}**, "
               f"{with_lm['rates']['utterances']} utterances. Greedy: "
               f"**{_headline(greedy, meaningful)}**; with {_lm_label(with_lm)}: "
               f"**{_headline(with_lm, meaningful)}**.{_notes(with_lm)}{NEXT}")
    by_id = {u["id"]: u for u in greedy["utterances"]}
    rows = []
    for u in with_lm["utterances"]:
        g = by_id.get(u["id"], {})
        rows.append({"id": u["id"], "WER": round(u["wer"], 3), "CER": round(u["cer"], 3),
                     "GER": _rounded(u.get("ger")), "reference": u["reference"],
                     "greedy": g.get("hypothesis", ""),
                     "with LM (differences)": diff_html(u["reference"], u["hypothesis"])})
    return EvalView(summary, pd.DataFrame(rows, columns=COMPARE_COLUMNS))


def _lm_label(report: dict) -> str:
    """``lm:NAME (word LM, alpha 1, beta 0, beam 50)`` -> ``the language model NAME (...)``."""
    decoder = str(report.get("decoder", ""))
    return "the language model " + decoder[3:] if decoder.startswith("lm:") else decoder


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise WorkbenchError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


def eval_view(report: dict) -> EvalView:
    """Summary and per-utterance table (worst first) of a report (``EvalReport.to_dict()``).

    Where the WER is not meaningful (scripts written without spaces between words) the
    summary and the table lead with CER and GER, and the summary says why. Reports made
    before the GER existed show without it.
    """
    rates = report["rates"]
    meaningful, note = _wer_meaning(report)
    summary = (f"**{report['split']} split of run {report['run']}: "
               f"{_headline(report, meaningful)}** over {rates['utterances']} utterances "
               f"({report['audio_seconds'] / 60:.1f} min of audio).")
    if not meaningful:
        summary += f" _WER {report['wer']:.1%} is not meaningful: {note}_"
    summary += _notes(report) + NEXT
    rows = [{"id": u["id"], "WER": round(u["wer"], 3), "CER": round(u["cer"], 3),
             "GER": _rounded(u.get("ger")), "reference": u["reference"],
             "hypothesis": u["hypothesis"],
             "differences": diff_html(u["reference"], u["hypothesis"])}
            for u in report["utterances"]]
    columns = EVAL_COLUMNS if meaningful else UNSPACED_COLUMNS
    return EvalView(summary, pd.DataFrame(rows, columns=columns))


def _notes(report: dict) -> str:
    """What was not scored: unreadable clips, utterances the Check step set aside."""
    notes = ""
    if report.get("skipped"):
        notes += f" {len(report['skipped'])} clip(s) could not be read."
    left_out = report.get("left_out") or []
    if left_out:
        reasons = sorted({reason_for(u["reason"].split(":")[0]).short for u in left_out})
        notes += (f" {len(left_out)} utterance(s) the Check step set aside are not scored "
                  f"({', '.join(reasons)}).")
    return notes


def _wer_meaning(report: dict) -> tuple[bool, str]:
    """Whether the report's WER is meaningful, and why not (older reports: from the texts)."""
    from workbench.evaluate import wer_meaning

    if "wer_meaningful" not in report:
        report = wer_meaning([u["reference"] for u in report.get("utterances", [])])
    return bool(report["wer_meaningful"]), str(report.get("wer_note") or "")


def _headline(report: dict, wer_meaningful: bool) -> str:
    """The rates in bold: WER, CER, GER; only CER and GER where the WER means little."""
    ger = report.get("ger", report["rates"].get("ger"))
    rates = {"CER": report["cer"], **({"GER": ger} if ger is not None else {})}
    if wer_meaningful:
        rates = {"WER": report["wer"], **rates}
    return ", ".join(f"{name} {value:.1%}" for name, value in rates.items())


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 3)


def empty_table() -> pd.DataFrame:
    """The table before any evaluation: its headers, no rows."""
    return pd.DataFrame(columns=EVAL_COLUMNS)


def diff_html(reference: str, hypothesis: str) -> str:
    """Word-level differences: missing words struck through, wrong or extra words marked.

    Inside a substituted word the differing characters are marked too, so a single wrong
    letter stands out.
    """
    ref, hyp = reference.split(), hypothesis.split()
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape(" ".join(ref[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f"<del>{html.escape(' '.join(ref[i1:i2]))}</del>")
        if j2 > j1:
            parts.append(f"<ins>{_char_diff(' '.join(ref[i1:i2]), ' '.join(hyp[j1:j2]))}</ins>")
    return " ".join(parts)


def _char_diff(reference: str, hypothesis: str) -> str:
    """``hypothesis`` with the grapheme clusters that differ marked (a vowel sign or a tone
    mark is marked with its letter, never alone)."""
    if not reference:
        return html.escape(hypothesis)
    out = []
    hyp = graphemes(hypothesis)
    matcher = difflib.SequenceMatcher(a=graphemes(reference), b=hyp, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        piece = html.escape("".join(hyp[j1:j2]))
        out.append(piece if op == "equal" else f"<mark>{piece}</mark>" if piece else "")
    return "".join(out)
