"""Turn a finished pretraining run into the bundled ``demo-base`` checkpoint.

    python -m workbench.base_export RUN_DIR [TARGET] [--figures FIGURES.md]

Copies the best model's config and safetensors weights and writes a model card with the
run's figures, so the card always says exactly what the checkpoint is. A run that continued
from an earlier base (``--model demo-base`` or a base folder) adds a stage to that base's
history (``stages.json``), and the card lists every stage; ``--figures`` adds measured results
(Markdown) under their own heading.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from workbench.config import TrainConfig, load_config
from workbench.fsio import write_text_atomic
from workbench.models import DEMO_BASE, DEMO_BASE_DIR, is_from_scratch
from workbench.run import Run
from workbench.workspace import Workspace

HISTORY = "stages.json"

CARD = """\
---
license: apache-2.0
tags: [wav2vec2, ctc, synthetic-speech, demo]
---
# demo-base: the workbench's small offline base model

**A small model trained on synthetic speech, for demos and tests. Not for real recognition.**

- Architecture: Wav2Vec2ForCTC, {params:,} parameters (hidden size {hidden}, {layers} layers,
  feature encoder channels {conv}), randomly initialised and trained with CTC on synthetic
  speech only.
- Data: {minutes:.0f} minutes of speech synthesised with espeak-ng in {n_languages} languages
  ({languages}), 12 voice variants, random speed and pitch, random words built from each
  language's letters and syllables. Left out on purpose: Maori, Guarani, Quechua and
  Hawaiian (the unseen-language tests) and Hindi, Malayalam and Amharic (the script
  benchmark's languages, `bench/scripts.py`).
- Training, in {n_stages} stage(s), {total_steps} steps in all; commands in
  `scripts/build_demo_base.sh`. Dev CER is on held-out voices of that stage's own mix.

{stages}

- Use: `workbench train --model demo-base` keeps the encoder and puts a fresh CTC head sized
  to the workspace vocabulary on top. It shows the workbench learning a new language offline
  in minutes. Synthetic voices are far more regular than people: on real recordings it is no
  substitute for XLS-R or MMS.
"""


def export_base(run_dir: Path, target: Path = DEMO_BASE_DIR, *, figures: str = "") -> Path:
    """Copy ``run_dir/model`` weights and config to ``target``; write its history and card."""
    run = Run(run_dir)
    run_config = load_config(run.config_path)
    earlier = _earlier_stages(run_config, run.root.name)  # before ``target`` is overwritten
    stages = [*earlier, _stage(run, run_config, len(earlier) + 1)]
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(run.model_dir / name, target / name)
    write_text_atomic(target / HISTORY, json.dumps(stages, indent=1, ensure_ascii=False) + "\n")
    write_text_atomic(target / "README.md", _card(run, stages, figures))
    return target


def _earlier_stages(run_config: TrainConfig, run_name: str) -> list[dict]:
    """The history of the base this run started from (none for random initialisation).

    Exporting a run again into the base it continued from finds its own stage there already:
    the history is cut before it, so the export can be repeated (to add figures, say).
    """
    name = run_config.model.name
    if is_from_scratch(name):
        return []
    base = DEMO_BASE_DIR if name == DEMO_BASE else Path(name)
    history = base / HISTORY
    if not history.is_file():
        raise SystemExit(f"{history} is missing: the base this run continued from has no "
                         "recorded history, so its card cannot say how it was made.")
    stages = json.loads(history.read_text(encoding="utf-8"))
    own = [i for i, stage in enumerate(stages) if stage.get("run") == run_name]
    return stages[: own[0]] if own else stages


def _stage(run: Run, run_config: TrainConfig, number: int) -> dict:
    """What this run did: its data, schedule, settings and result."""
    result = _result(run)
    train = [asdict(u) for u in Workspace(run.root.parents[1]).read_split("train")]
    start = next((r for r in run.read_metrics() if r.get("event") == "start"), {})
    cer = result.get("best_dev_cer")
    return {
        "stage": number,
        "run": run.root.name,
        "started_from": (f"random initialisation (`--model {run_config.model.name}`)"
                         if number == 1 else f"stage {number - 1}"),
        # The multilingual recipe names speakers <language>-<voice>.
        "languages": sorted({u["speaker"].split("-")[0] for u in train}),
        "train_minutes": round(sum(u["duration"] for u in train) / 60, 1),
        "steps": result["steps"],
        "schedule_steps": start.get("max_steps", result["steps"]),
        "train_minutes_cpu": round(result["elapsed_s"] / 60, 1),
        "learning_rate": run_config.optim.learning_rate,
        "batch_seconds": run_config.data.max_batch_seconds,
        "augment": run_config.data.augment,
        "feature_encoder": "frozen" if run_config.model.freeze_feature_encoder else "trained",
        "dev_cer": round(cer, 3) if cer is not None else None,
    }


def _card(run: Run, stages: list[dict], figures: str) -> str:
    from safetensors import safe_open

    config = json.loads((run.model_dir / "config.json").read_text())
    with safe_open(run.model_dir / "model.safetensors", "pt") as weights:
        params = sum(_count(weights.get_slice(k)) for k in weights.keys())
    last = stages[-1]
    card = CARD.format(
        params=params, hidden=config["hidden_size"], layers=config["num_hidden_layers"],
        conv=tuple(config["conv_dim"]), minutes=last["train_minutes"],
        n_languages=len(last["languages"]), languages=", ".join(last["languages"]),
        n_stages=len(stages), total_steps=f"{sum(s['steps'] for s in stages):,}",
        stages=_stage_table(stages))
    if figures.strip():
        card += f"\n## Measured\n\n{figures.strip()}\n"
    return card


def _stage_table(stages: list[dict]) -> str:
    lines = ["| stage | from | languages | training audio | steps (of schedule) | time, 2-core CPU "
             "| peak lr | batch | feature encoder | augmentation | dev CER |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in stages:
        augment = f"p={s['augment']} per effect" if s["augment"] else "none"
        cer = f"{s['dev_cer']:.3f}" if s["dev_cer"] is not None else "n/a"
        lines.append(
            f"| {s['stage']} | {s['started_from']} | {len(s['languages'])} | "
            f"{s['train_minutes']:.0f} min | {s['steps']:,} ({s['schedule_steps']:,}) | "
            f"{s['train_minutes_cpu']:.0f} min | {s['learning_rate']:g} | "
            f"{s['batch_seconds']:g} s | {s['feature_encoder']} | {augment} | {cer} |")
    return "\n".join(lines)


def _result(run: Run) -> dict:
    """result.json, or for a run stopped by hand, the figures of its best evaluation."""
    result = run.read_result()
    if result is not None:
        return result
    best = run.best()
    if best is None:
        raise SystemExit(f"{run.root} has no evaluation yet, so it has no model/ to export.")
    # model/ holds the best evaluation so far: describe that model.
    at = next(r for r in run.read_metrics() if r.get("event") == "eval"
              and r.get("step") == best["step"])
    return {"steps": best["step"], "elapsed_s": at["elapsed_s"], "best_dev_cer": best["dev_cer"]}


def _count(tensor_slice) -> int:
    total = 1
    for size in tensor_slice.get_shape():
        total *= size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("target", type=Path, nargs="?", default=DEMO_BASE_DIR)
    parser.add_argument("--figures", type=Path, help="Markdown of measured results for the card")
    args = parser.parse_args()
    figures = args.figures.read_text(encoding="utf-8") if args.figures else ""
    print(export_base(args.run_dir, args.target, figures=figures))


if __name__ == "__main__":
    main()
