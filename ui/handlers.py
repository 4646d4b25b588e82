"""What the page's steps do, as plain functions: workspace in, tables and text out.

Steps 2, 3, 5, 6 and 7 live here, with the overview and run lookups; the upload side of
step 1 is in ``ui/uploads.py`` and step 4 in ``ui/training.py``.

Nothing here imports Gradio: every function takes a :class:`~workbench.workspace.Workspace`
and plain values, calls the ``workbench`` library, and returns strings, pandas DataFrames or
small dataclasses that ``ui/tabs`` put into widgets. Bad input raises
:class:`~workbench.errors.WorkbenchError` with a message for the user; the tab layer shows
it in the page. Names coming from the page (runs, utterances) are only ever looked up among
what exists, never joined into paths.
"""

from __future__ import annotations

import csv
import difflib
import html
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.audio import SAMPLE_RATE, load_audio
from workbench.errors import WorkbenchError
from workbench.manifest import SPLITS, Utterance
from workbench.text import (
    OrthographyProfile,
    load_profile,
    normalize,
    save_profile,
    tokenize,
)
from workbench.vocab import vocab_is_stale
from workbench.workspace import Workspace

PREVIEW_UTTERANCES = 8  # transcripts shown before/after normalisation in the Alphabet step


# --------------------------------------------------------------------------- where you stand


@dataclass(frozen=True)
class StepState:
    """One step of the flow: done or not, and what to say about it."""

    step: str
    done: bool
    detail: str


def overview(ws: Workspace) -> list[StepState]:
    """Where the workspace stands in the flow, one entry per step."""
    from workbench.train import list_runs

    utterances = ws.read_all() if ws.manifest_path("train").exists() else {}
    total = sum(len(u) for u in utterances.values())
    minutes = sum(u.duration for us in utterances.values() for u in us) / 60
    runs = list_runs(ws)
    finished = [r for r in runs if (r / "result.json").is_file()]
    evaluated = [r for r in runs if (r / "report.json").is_file()]
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


# --------------------------------------------------------------------------- data


def data_summary(ws: Workspace) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """What the workspace holds now: a sentence, counts per split, and what was set aside."""
    splits = ws.read_all()
    total = sum(len(u) for u in splits.values())
    if not total:
        return ("Nothing imported yet. Upload a zip archive, or audio files together with "
                "their CSV/TSV table, ELAN or TextGrid files, then press Import.",
                _split_frame({}), _issues_frame([]))
    report = _read_json(ws.import_report_path) or {}
    speakers = {u.speaker for us in splits.values() for u in us if u.speaker}
    minutes = sum(u.duration for us in splits.values() for u in us) / 60
    issues = report.get("issues", []) if isinstance(report, dict) else []
    text = (f"**{total} utterances** ({minutes:.1f} min, {len(speakers)} speakers) imported; "
            f"{len(issues)} item(s) set aside during the import (listed below). "
            "**Next:** step 2, Check.")
    warnings = report.get("warnings", []) if isinstance(report, dict) else []
    text += "".join(f"\n\n⚠️ {w}" for w in warnings)
    return text, _split_frame(splits), _issues_frame(issues)


def _split_frame(splits: dict[str, list[Utterance]]) -> pd.DataFrame:
    rows = [{"split": split, "utterances": len(us),
             "minutes": round(sum(u.duration for u in us) / 60, 2),
             "speakers": len({u.speaker for u in us if u.speaker})}
            for split, us in splits.items()]
    return pd.DataFrame(rows, columns=["split", "utterances", "minutes", "speakers"])


def _issues_frame(issues: list[dict]) -> pd.DataFrame:
    columns = ["item", "check", "detail", "action"]
    return pd.DataFrame([{c: str(i.get(c, "")) for c in columns} for i in issues],
                        columns=columns)


def import_summary_markdown(summary: dict) -> str:
    """One paragraph about a finished import."""
    splits = ", ".join(f"{name} {info['utterances']}" for name, info in summary["splits"].items())
    text = (f"Imported **{summary['utterances']} utterances** ({summary['seconds'] / 60:.1f} "
            f"min, {summary['speakers']} speakers): {splits}. {len(summary['issues'])} item(s) "
            "set aside. **Next:** step 2, Check.")
    return text + "".join(f"\n\n⚠️ {w}" for w in summary["warnings"])


# --------------------------------------------------------------------------- check


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
    from workbench.audit import AuditOptions, run_audit

    ws.require_prepared()
    report = run_audit(ws, options=AuditOptions(max_duration=float(max_seconds)))
    return check_view(report.to_dict())


def saved_check(ws: Workspace) -> CheckView | None:
    """The view of the last audit.json (None when there is none)."""
    data = _read_json(ws.audit_path)
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


# --------------------------------------------------------------------------- utterances


def utterance_table(ws: Workspace) -> pd.DataFrame:
    """Every utterance with its split, speaker, length, status and transcript."""
    set_aside = _set_aside_reasons(ws)
    rows = [{"id": u.id, "split": split, "speaker": u.speaker, "seconds": round(u.duration, 2),
             "status": set_aside.get(u.id, "kept"), "transcript": u.text}
            for split, us in ws.read_all().items() for u in us]
    return pd.DataFrame(rows, columns=["id", "split", "speaker", "seconds", "status",
                                       "transcript"])


def _set_aside_reasons(ws: Workspace) -> dict[str, str]:
    from workbench.audit import EXCLUDED

    data = _read_json(ws.audit_path)
    reasons: dict[str, str] = {}
    for issue in data.get("issues", []) if isinstance(data, dict) else []:
        if issue.get("action") == EXCLUDED:
            reasons.setdefault(issue["id"], f"set aside: {issue['check']}")
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


# --------------------------------------------------------------------------- alphabet


@dataclass(frozen=True)
class ProfileForm:
    """The orthography profile as the page edits it.

    Attributes:
        unicode_form: "NFC" or "NFKC".
        lowercase: Lower-case transcripts.
        ignore: Characters removed from transcripts (whitespace is dropped).
        mappings: Rows of [from, to]; empty rows are skipped.
        graphemes: Multi-character letters separated by spaces.
        fold_apostrophes: The character apostrophe look-alikes become ("" keeps them apart).
        distinct_letters: Look-alikes that are letters of their own, separated by spaces.
    """

    unicode_form: str = "NFC"
    lowercase: bool = True
    ignore: str = ""
    mappings: tuple[tuple[str, str], ...] = ()
    graphemes: str = ""
    fold_apostrophes: str = ""
    distinct_letters: str = ""


def profile_form(ws: Workspace) -> ProfileForm:
    """The workspace's orthography profile (defaults when it has none) as a form."""
    profile = load_profile(ws.profile_path)
    return ProfileForm(
        unicode_form=profile.unicode_form,
        lowercase=profile.lowercase,
        ignore=profile.ignore,
        mappings=tuple(profile.mappings.items()),
        graphemes=" ".join(profile.graphemes),
        fold_apostrophes=profile.fold_apostrophes or "",
        distinct_letters=" ".join(profile.distinct_letters),
    )


def profile_from_form(form: ProfileForm) -> OrthographyProfile:
    """Build (and validate) a profile from the form.

    Raises:
        WorkbenchError: A setting is invalid; the message names it.
    """
    mappings = {}
    for row in form.mappings:
        source, target = (list(row) + ["", ""])[:2]
        source, target = str(source or ""), str(target or "")
        if source:
            mappings[source] = target
        elif target:
            raise WorkbenchError(f"The mapping to {target!r} has nothing to map from; fill in "
                                 "the 'from' column or clear the row.")
    ignore = "".join(c for c in form.ignore if not c.isspace())
    return OrthographyProfile(
        unicode_form=form.unicode_form or "NFC",
        lowercase=bool(form.lowercase),
        ignore=ignore,
        mappings=mappings,
        graphemes=tuple(form.graphemes.replace(",", " ").split()),
        fold_apostrophes=form.fold_apostrophes.strip() or None,
        distinct_letters=tuple("".join(form.distinct_letters.split())),
    )


@dataclass(frozen=True)
class VocabView:
    """The vocabulary and what it misses."""

    summary: str
    alphabet_html: str
    counts: pd.DataFrame
    unseen: pd.DataFrame
    preview: pd.DataFrame


def save_alphabet(ws: Workspace, form: ProfileForm) -> VocabView:
    """Save the profile as orthography.yaml, rebuild the vocabulary, and describe it."""
    from workbench.vocab import build_workspace_vocab

    ws.require_prepared()
    profile = profile_from_form(form)
    save_profile(profile, ws.profile_path)
    report = build_workspace_vocab(ws)
    return vocab_view(ws, report.to_dict(), profile)


def saved_alphabet(ws: Workspace) -> VocabView | None:
    """The view of the last vocab_report.json (None when there is none)."""
    data = _read_json(ws.vocab_report_path)
    if not isinstance(data, dict) or "train_counts" not in data:
        return None
    return vocab_view(ws, data, load_profile(ws.profile_path))


def vocab_view(ws: Workspace, report: dict, profile: OrthographyProfile) -> VocabView:
    """Summary, coloured alphabet, tables and a normalisation preview of a vocabulary report."""
    rare = {s["token"] for s in report["rare"]}
    unseen_rows = [{"split": split, "label": s["token"], "count": s["count"],
                    "code points": s["names"], "e.g.": ", ".join(s["examples"])}
                   for split, stats in report["unseen"].items() for s in stats]
    counts = pd.DataFrame(
        [{"label": s["token"], "count": s["count"], "code points": s["names"],
          "note": f"rare (< {report['rare_threshold']})" if s["token"] in rare else ""}
         for s in report["train_counts"]],
        columns=["label", "count", "code points", "note"])
    unseen = pd.DataFrame(unseen_rows, columns=["split", "label", "count", "code points", "e.g."])
    shares = ", ".join(f"{split} {share:.1%}" for split, share in report["unk_share"].items())
    summary = (f"**{report['vocab_size']} labels** (with [PAD], [UNK] and the word delimiter) "
               f"from {report['train_utterances']} training utterances; {len(rare)} rare, "
               f"{len({r['label'] for r in unseen_rows})} in dev/test but not in train "
               f"(share that would become [UNK]: {shares or 'none'}).")
    if unseen_rows:
        summary += (" If an unseen label is a look-alike of a training label, add a mapping; "
                    "if it is punctuation, add it to the ignored characters.")
    summary += " **Next:** step 4, Train."
    html_text = alphabet_html(report["train_counts"], rare,
                              {r["label"]: r["count"] for r in unseen_rows})
    return VocabView(summary, html_text, counts, unseen, normalisation_preview(ws, profile))


def alphabet_html(train_counts: list[dict], rare: set[str], unseen: dict[str, int]) -> str:
    """The labels as chips with their counts; rare ones amber, unseen (dev/test only) red."""
    def chip(label: str, count: int, kind: str) -> str:
        title = {"rare": "rare in train", "unseen": "not in train: becomes [UNK]",
                 "ok": "in train"}[kind]
        return (f'<span class="wb-chip wb-{kind}" title="{title}"><b>{html.escape(label)}</b>'
                f"<small> {count}</small></span>")

    chips = [chip(s["token"], s["count"], "rare" if s["token"] in rare else "ok")
             for s in train_counts]
    chips += [chip(label, count, "unseen") for label, count in unseen.items()]
    legend = ('<div class="wb-legend"><span class="wb-chip wb-ok">in train</span>'
              '<span class="wb-chip wb-rare">rare</span>'
              '<span class="wb-chip wb-unseen">only in dev/test</span></div>')
    return f'<div class="wb-alphabet">{"".join(chips)}</div>{legend}'


def normalisation_preview(ws: Workspace, profile: OrthographyProfile,
                          count: int = PREVIEW_UTTERANCES) -> pd.DataFrame:
    """A few training transcripts before and after normalisation, and their labels."""
    rows = []
    for utt in ws.read_split("train")[:count]:
        text = normalize(utt.text, profile)
        rows.append({"id": utt.id, "transcript": utt.text, "normalised": text,
                     "labels": " ".join(tokenize(text, profile))})
    return pd.DataFrame(rows, columns=["id", "transcript", "normalised", "labels"])


# --------------------------------------------------------------------------- runs


def run_names(ws: Workspace) -> list[str]:
    """Run directory names, newest first."""
    from workbench.train import list_runs

    return [p.name for p in reversed(list_runs(ws))]


def run_dir(ws: Workspace, run: str) -> Path:
    """The directory of run ``run`` (only names of existing runs are accepted).

    Raises:
        WorkbenchError: No such run.
    """
    if run not in run_names(ws):
        raise WorkbenchError(f"There is no run {run!r} in this workspace.")
    return ws.runs_dir / run


# --------------------------------------------------------------------------- evaluate


def finished_runs(ws: Workspace) -> list[str]:
    """Runs with a model to use, newest first."""
    return [name for name in run_names(ws) if (ws.runs_dir / name / "model").is_dir()]


@dataclass(frozen=True)
class EvalView:
    """An evaluation report as a summary and a worst-first table."""

    summary: str
    table: pd.DataFrame


EVAL_COLUMNS = ["id", "WER", "CER", "reference", "hypothesis", "differences"]


def evaluate(ws: Workspace, run: str, split: str) -> EvalView:
    """Transcribe and score a split with a run's model (writes the run's report.json)."""
    from workbench.evaluate import evaluate_run

    _check_split(split)
    report = evaluate_run(ws, run_dir(ws, run), split, progress=False)
    return eval_view(report.to_dict())


def saved_evaluation(ws: Workspace, run: str, split: str) -> EvalView | None:
    """The stored report of ``run`` on ``split`` (None if it was never evaluated)."""
    from workbench.evaluate import read_report

    _check_split(split)
    report = read_report(run_dir(ws, run)).get(split)
    return eval_view(report) if isinstance(report, dict) else None


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise WorkbenchError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


def eval_view(report: dict) -> EvalView:
    """Summary and per-utterance table (worst first) of a report (``EvalReport.to_dict()``)."""
    rates = report["rates"]
    summary = (f"**{report['split']} split of run {report['run']}: WER {report['wer']:.1%}, "
               f"CER {report['cer']:.1%}** over {rates['utterances']} utterances "
               f"({report['audio_seconds'] / 60:.1f} min of audio).")
    if report.get("skipped"):
        summary += f" {len(report['skipped'])} clip(s) could not be read."
    summary += " Click a row to hear it. **Next:** step 6, Try it, or step 7, Export."
    rows = [{"id": u["id"], "WER": round(u["wer"], 3), "CER": round(u["cer"], 3),
             "reference": u["reference"], "hypothesis": u["hypothesis"],
             "differences": diff_html(u["reference"], u["hypothesis"])}
            for u in report["utterances"]]
    return EvalView(summary, pd.DataFrame(rows, columns=EVAL_COLUMNS))


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
    if not reference:
        return html.escape(hypothesis)
    out = []
    matcher = difflib.SequenceMatcher(a=reference, b=hypothesis, autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        piece = html.escape(hypothesis[j1:j2])
        out.append(piece if op == "equal" else f"<mark>{piece}</mark>" if piece else "")
    return "".join(out)


# --------------------------------------------------------------------------- try it


def transcribe_recording(ws: Workspace, run: str, audio_path: str | Path | None) -> str:
    """Transcribe one recording (any format, rate and channels; long ones in windows).

    Raises:
        WorkbenchError: No recording, an unknown run, or audio that cannot be read.
    """
    from workbench.transcribe import transcribe_files

    if not audio_path:
        raise WorkbenchError("Record something with the microphone or upload a file first.")
    model = run_dir(ws, run) / "model"
    if not model.is_dir():
        raise WorkbenchError(f"Run {run} has no model yet; wait for its first dev evaluation.")
    result = transcribe_files([Path(audio_path)], model, progress=False)[0]
    if result.error:
        raise WorkbenchError(f"The recording could not be read: {result.error}")
    return result.text


# --------------------------------------------------------------------------- export


def export_model(ws: Workspace, run: str, dest: Path) -> Path:
    """Zip the run's model (Hugging Face format) with its config and results.

    Args:
        ws: The workspace.
        run: The run.
        dest: Folder the zip is written to.

    Returns:
        The zip file, ``<run>-model.zip``, holding ``<run>/model/...``, ``config.yaml``,
        ``result.json`` and ``report.json`` where they exist.
    """
    folder = run_dir(ws, run)
    model = folder / "model"
    if not model.is_dir():
        raise WorkbenchError(f"Run {run} has no model yet; wait for its first dev evaluation.")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{run}-model.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(model.rglob("*")):
            if path.is_file():
                archive.write(path, f"{run}/{path.relative_to(folder)}")
        for name in ("config.yaml", "result.json", "report.json"):
            if (folder / name).is_file():
                archive.write(folder / name, f"{run}/{name}")
    return target


def export_onnx_model(ws: Workspace, run: str, dest: Path, *, int8: bool = True) -> Path:
    """Export the run's model to ONNX (int8 matrix products by default) and zip the folder.

    The export is kept in the run (``onnx`` or ``onnx-int8``), so `workbench transcribe
    --model RUN/onnx-int8` uses it too; the zip holds ``model.onnx`` with the processor files.

    Raises:
        WorkbenchError: The run has no model yet, or the export fails its check.
    """
    from workbench.onnx_export import export_onnx

    folder = run_dir(ws, run)
    if not (folder / "model").is_dir():
        raise WorkbenchError(f"Run {run} has no model yet; wait for its first dev evaluation.")
    result = export_onnx(folder, int8=int8)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{run}-{result.out_dir.name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(result.out_dir.rglob("*")):
            if path.is_file():
                archive.write(path, f"{run}/{path.relative_to(folder)}")
    return target


def export_report(ws: Workspace, run: str, dest: Path) -> list[Path]:
    """The run's evaluation report as JSON plus one CSV per evaluated split.

    Raises:
        WorkbenchError: The run was never evaluated.
    """
    from workbench.evaluate import REPORT_NAME, read_report

    folder = run_dir(ws, run)
    reports = read_report(folder)
    if not reports:
        raise WorkbenchError(f"Run {run} has not been evaluated yet: evaluate it in step 5.")
    dest.mkdir(parents=True, exist_ok=True)
    files = [dest / f"{run}-{REPORT_NAME}"]
    shutil.copyfile(folder / REPORT_NAME, files[0])
    for split, report in reports.items():
        path = dest / f"{run}-{split}-utterances.csv"
        _write_utterance_csv(path, report.get("utterances", []))
        files.append(path)
    return files


def _write_utterance_csv(path: Path, utterances: list[dict]) -> None:
    columns = ["id", "wer", "cer", "reference", "hypothesis", "reference_words",
               "word_errors", "reference_chars", "char_errors", "audio"]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(utterances)


# --------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
