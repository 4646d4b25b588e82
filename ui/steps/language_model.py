"""Step 5, Language model (optional): an n-gram from the community's own text, tuned on dev.

The page's side of ``workbench lm build`` and ``workbench lm tune``: the uploaded text files
(and, if asked, the training transcripts) become a word or character n-gram in the
workspace's ``lm/`` folder; tuning chooses its weight on the dev split with a run's model and
sets greedy against LM decoding on dev and test. Evaluate and Try it then offer the LM as a
way of decoding, beside greedy.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ui.steps import chosen_run
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

LM_COLUMNS = ["name", "unit", "order", "sentences", "word types", "dev OOV", "dev perplexity",
              "tuned with run", "test WER greedy → LM", "test CER greedy → LM"]
TUNING_COLUMNS = ["split", "greedy WER", "LM WER", "greedy CER", "LM CER"]
GREEDY = "greedy (no language model)"


def lm_names(ws: Workspace) -> list[str]:
    """The workspace's language models, by name."""
    from workbench.lm.store import list_lms

    return list_lms(ws)


def decoding_choices(ws: Workspace) -> list[str]:
    """What Evaluate and Try it offer: greedy, then each language model."""
    return [GREEDY, *lm_names(ws)]


def chosen_lm(choice: str | None) -> str | None:
    """The LM name of a decoding choice (None for greedy)."""
    return None if not choice or choice == GREEDY else choice


def build_language_model(ws: Workspace, files: list[str | Path] | None, *, name: str,
                         unit: str = "word", order: int = 0, transcripts: bool = False
                         ) -> str:
    """Build an LM from uploaded text files (and the training transcripts if asked).

    Returns:
        The build report as Markdown: what each file gave, what was left out and why,
        leakage, and the dev perplexity and out-of-vocabulary rate.

    Raises:
        WorkbenchError: No text, no vocabulary yet, a bad name, or no usable sentence.
    """
    from workbench.lm.store import build_lm

    name = (name or "").strip() or "community"
    paths = [Path(f) for f in files or []]
    if not paths and not transcripts:
        raise WorkbenchError("Upload at least one text file, or tick 'Use the training "
                             "transcripts too'.")
    if unit not in ("word", "char"):
        raise WorkbenchError(f"Unknown unit {unit!r}: choose word or char.")
    ws.require_prepared()
    result = build_lm(ws, paths, name=name, unit=unit, order=int(order or 0),
                      transcripts=transcripts)
    return build_markdown(result.info)


def build_markdown(info: dict) -> str:
    """A build report for the page: files by name (never a server path), notes, dev scores."""
    text, dev = info["text"], info["dev"]
    lines = [f"**Language model {info['name']}**: {info['unit']} {info['order']}-gram "
             f"(modified Kneser-Ney), {text['sentences']} sentences, {text['tokens']} "
             f"{info['unit']} tokens, {info['types']} types."]
    for record in text["files"]:
        shown = Path(record["path"].split(" (")[0]).name + (
            " (the training transcripts)" if "training transcripts" in record["path"] else "")
        state = (f"not used: {record['error']}" if record["error"] else
                 f"{record['lines']} lines, {record['sentences']} sentences kept, "
                 f"{record['encoding']}" + (f"; {record['note']}" if record["note"] else ""))
        lines.append(f"- {shown}: {state}")
    if text["words_outside_alphabet"]:
        chars = ", ".join(f"{c} ×{n}" for c, n in list(text["outside_alphabet"].items())[:10])
        lines.append(f"- {text['words_outside_alphabet']} of {text['words_seen']} words have "
                     f"letters the model cannot write and were left out: {chars}")
    leaked = text["leaked_lines"]
    if sum(leaked.values()):
        lines.append(f"- Leakage: {leaked['dev']} dev and {leaked['test']} test transcripts "
                     "were found in the text and left out (an LM that has seen the test "
                     "sentences would make every score a lie).")
    if text["truncated_at"]:
        lines.append(f"- Only the first {text['truncated_at']} words were used.")
    if dev.get("tokens"):
        oov = (f", {dev['oov_rate']:.1%} of its words are not in the text"
               if info["unit"] == "word" else "")
        lines.append(f"- Dev transcripts: perplexity {dev['perplexity']}{oov}.")
    lines.append("**Next:** choose a run and press **Tune on dev**.")
    return "\n".join(lines)


def tune_language_model(ws: Workspace, lm: str | None, run: str | None
                        ) -> tuple[str, pd.DataFrame]:
    """Choose the LM's weight and word bonus on dev with ``run``'s model; greedy against LM
    on dev and test as a summary and a table."""
    from workbench.lm.tune import tune_lm

    if not lm:
        raise WorkbenchError("Build a language model first (or choose one).")
    found = chosen_run(ws, run, with_model=True)
    result = tune_lm(ws, lm, run=found.name, progress=False)
    return tuning_markdown(result), tuning_table(result)


def tuning_markdown(result: dict) -> str:
    """Which setting won on dev, and what it does on test."""
    s, dev, test = result["settings"], result["dev"], result["test"]
    text = (f"**{result['lm']}** with run {result['run']}: LM weight (alpha) {s['alpha']:g}, "
            f"word bonus (beta) {s['beta']:g}, beam {s['beam']}, chosen on dev among "
            f"{len(result['grid'])} settings. Test WER {test['greedy']['wer']:.1%} greedy, "
            f"{test['lm']['wer']:.1%} with the LM; CER {test['greedy']['cer']:.1%} → "
            f"{test['lm']['cer']:.1%}.")
    ties = result.get("tied_settings", 1)
    if ties > 1:
        text += (f" {ties} settings scored the same on dev ({dev['utterances']} utterances); "
                 "the middle one was kept.")
    if (dev["lm"]["wer"], dev["lm"]["cer"]) >= (dev["greedy"]["wer"], dev["greedy"]["cer"]):
        text += (" **On dev no setting beats greedy decoding**: keep decoding greedily, or "
                 "give more text" + (", or build a character LM" if result["unit"] == "word"
                                     else "") + ".")
    else:
        text += " **Next:** step 6, Evaluate, with this language model as the decoding."
    return text


def tuning_table(result: dict) -> pd.DataFrame:
    """Greedy against LM, WER and CER, on dev and test."""
    rows = [{"split": split, "greedy WER": round(part["greedy"]["wer"], 3),
             "LM WER": round(part["lm"]["wer"], 3), "greedy CER": round(part["greedy"]["cer"], 3),
             "LM CER": round(part["lm"]["cer"], 3)}
            for split, part in (("dev", result["dev"]), ("test", result["test"]))]
    return pd.DataFrame(rows, columns=TUNING_COLUMNS)


def lm_table(ws: Workspace) -> pd.DataFrame:
    """One row per language model of the workspace, with its tuning if it has one."""
    from workbench.lm.store import lm_dir, read_info

    rows = []
    for name in lm_names(ws):
        info = read_info(lm_dir(ws, name))
        dev, tuned = info.get("dev") or {}, info.get("tuned") or {}
        test = tuned.get("test") or {}
        rows.append({
            "name": name, "unit": info["unit"], "order": info["order"],
            "sentences": info["text"]["sentences"], "word types": info["types"],
            "dev OOV": _percent(dev.get("oov_rate")) if info["unit"] == "word" else "",
            "dev perplexity": dev.get("perplexity", ""),
            "tuned with run": tuned.get("run", "not tuned yet"),
            "test WER greedy → LM": _pair(test, "wer"), "test CER greedy → LM": _pair(test, "cer"),
        })
    return pd.DataFrame(rows, columns=LM_COLUMNS)


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.1%}"


def _pair(test: dict, rate: str) -> str:
    if not test:
        return ""
    return f"{test['greedy'][rate]:.1%} → {test['lm'][rate]:.1%}"


def lm_table_empty() -> pd.DataFrame:
    """The table before a workspace is open: its headers, no rows."""
    return pd.DataFrame(columns=LM_COLUMNS)
