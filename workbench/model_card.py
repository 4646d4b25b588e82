"""A Hugging Face model card (README.md with ``model-index``) for an exported model folder.

What the Hub and its readers expect: the language, the base model, the training data (minutes,
utterances, speakers), the settings, test WER and CER for greedy and for LM decoding as
``model-index`` metrics, and what the model cannot do. Figures come from the run's own
``report.json``; a score that was never measured is left out, never invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.run import Run

LIMITS = (
    "It was fine-tuned on {minutes:.1f} minutes of transcribed speech from {speakers} "
    "speaker(s): expect more errors on other voices, recording conditions, dialects and "
    "topics, and on words and characters that its training transcripts never contained. "
    "It writes only the characters of its vocabulary, without punctuation or capitals unless "
    "the orthography profile kept them. It is a first pass to correct, not a final transcript.")


def model_card(run_dir: Path | None, *, language: str = "und", lm: dict | None = None,
               license_id: str = "other") -> str:
    """The card's Markdown for the model of ``run_dir`` (None: a model with no run)."""
    run = Run(Path(run_dir)) if run_dir else None
    config = _config(run)
    data = _training_data(run)
    metrics = _metrics(run, lm)
    front = {
        "language": language, "license": license_id, "library_name": "transformers",
        "pipeline_tag": "automatic-speech-recognition",
        "tags": ["automatic-speech-recognition", "wav2vec2", "ctc", "workbench"],
    }
    model = config.get("model")
    base = model.get("name") if isinstance(model, dict) else model
    if base and _is_hub_id(base):  # a local name or folder means nothing on the Hub
        front["base_model"] = base
    if metrics:
        front["model-index"] = [{"name": run.name if run else "model", "results": [{
            "task": {"type": "automatic-speech-recognition", "name": "Speech Recognition"},
            "dataset": {"type": "workspace", "name": f"{data.get('workspace', '')} test split"},
            "metrics": metrics}]}]
    body = [f"# {run.name if run else 'Speech recogniser'}", "",
            "A CTC speech recogniser fine-tuned with the workbench.", ""]
    body += _data_lines(data, base, config) + [""] + _score_lines(metrics) + [""]
    body += _lm_lines(lm) + ["## Limitations", "",
                             LIMITS.format(minutes=data.get("minutes", 0.0),
                                           speakers=data.get("speakers", "?")), ""]
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n\n" + \
        "\n".join(body)


def _is_hub_id(name: str) -> bool:
    """``owner/name`` that is not a folder here: what the Hub's ``base_model`` expects."""
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(
        name).exists()


def _config(run: Run | None) -> dict[str, Any]:
    if run is None or not run.config_path.is_file():
        return {}
    return yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}


def _training_data(run: Run | None) -> dict[str, Any]:
    from workbench.workspace import Workspace

    if run is None:
        return {}
    ws = Workspace.at(run.root.parent.parent)
    train = ws.read_split("train") if ws.manifest_path("train").is_file() else []
    return {"workspace": ws.root.name, "utterances": len(train),
            "minutes": sum(u.duration for u in train) / 60,
            "speakers": len({u.speaker for u in train if u.speaker})}


def _metrics(run: Run | None, lm: dict | None) -> list[dict[str, Any]]:
    reports = run.read_reports() if run else {}
    found = []
    sources = [("test", "greedy")]
    if lm:
        sources.append((f"test+lm:{lm['name']}", f"LM {lm['name']}"))
    for key, label in sources:
        report = reports.get(key)
        if not report:
            continue
        for name in ("wer", "cer"):
            found.append({"type": name, "value": round(100 * float(report[name]), 2),
                          "name": f"Test {name.upper()} ({label} decoding)"})
    return found


def _data_lines(data: dict, base: str | None, config: dict) -> list[str]:
    optim = config.get("optim") if isinstance(config.get("optim"), dict) else {}
    lines = ["## Training", ""]
    if data:
        lines.append(f"- Data: {data['minutes']:.1f} minutes, {data['utterances']} utterances, "
                     f"{data['speakers']} speaker(s) (workspace `{data['workspace']}`, "
                     "train split).")
    if base:
        lines.append(f"- Base model: `{base}`.")
    if config:
        lines.append(f"- Settings: preset {config.get('preset', '?')}, peak learning rate "
                     f"{optim.get('learning_rate', '?')}, "
                     f"{optim.get('max_steps') or 'preset'} steps; the run's config.yaml "
                     "has all of them.")
    return lines


def _score_lines(metrics: list[dict]) -> list[str]:
    if not metrics:
        return ["## Scores", "", "Not evaluated yet (`workbench evaluate`)."]
    lines = ["## Scores (test split, speakers held out of training)", "", "| | value |",
             "|---|---|"]
    lines += [f"| {m['name']} | {m['value']:.2f} % |" for m in metrics]
    return lines


def _lm_lines(lm: dict | None) -> list[str]:
    if not lm:
        return []
    s = (lm.get("tuned") or {}).get("settings", lm.get("decoding", {}))
    return ["## Language model", "",
            f"`lm/` holds a {lm['unit']} {lm['order']}-gram (modified Kneser-Ney, ARPA) built "
            f"from {lm['text']['sentences']} sentences of text; beam search with alpha "
            f"{s.get('alpha')}, beta {s.get('beta')}, beam {s.get('beam')}"
            + (" (tuned on the dev split)." if lm.get("tuned") else " (not tuned)."),
            "`workbench transcribe FILE --model THIS_FOLDER` uses it.", ""]
