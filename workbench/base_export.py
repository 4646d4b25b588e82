"""Turn a finished pretraining run into the bundled ``demo-base`` checkpoint.

    python -m workbench.base_export RUN_DIR [TARGET]

Copies the best model's config and safetensors weights and writes a model card with the
run's figures, so the card always says exactly what the checkpoint is.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from workbench.config import load_config
from workbench.models import DEMO_BASE_DIR
from workbench.run import Run
from workbench.workspace import Workspace

CARD = """\
---
license: apache-2.0
tags: [wav2vec2, ctc, synthetic-speech, demo]
---
# demo-base: the workbench's small offline base model

**A small model trained on synthetic speech, for demos and tests. Not for real recognition.**

- Architecture: Wav2Vec2ForCTC, {params:,} parameters (hidden size {hidden}, {layers} layers,
  feature encoder channels {conv}), randomly initialised and trained with CTC from scratch.
- Data: {minutes:.0f} minutes of speech synthesised with espeak-ng in {n_languages} languages
  ({languages}), 12 voice variants, random speed and pitch, random words built from each
  language's letters and syllables. Left out on purpose: Maori, Guarani, Quechua and
  Hawaiian, the unseen-language tests.
- Training: `workbench train --model small` for {steps} steps ({train_min:.0f} minutes on a
  2-core CPU); command in `scripts/build_demo_base.sh`. Dev CER on held-out voices of the
  pretraining languages: {dev_cer}.
- Use: `workbench train --model demo-base` keeps the encoder and puts a fresh CTC head sized
  to the workspace vocabulary on top. It shows the workbench learning a new language offline
  in minutes. Synthetic voices are far more regular than people: on real recordings it is no
  substitute for XLS-R or MMS.
"""


def export_base(run_dir: Path, target: Path = DEMO_BASE_DIR) -> Path:
    """Copy ``run_dir/model`` weights and config to ``target`` and write its model card."""
    run = Run(run_dir)
    model_dir = run.model_dir
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(model_dir / name, target / name)
    (target / "README.md").write_text(_card(run_dir), encoding="utf-8")
    return target


def _card(run_dir: Path) -> str:
    from safetensors import safe_open

    run = Run(run_dir)
    config = json.loads((run.model_dir / "config.json").read_text())
    result = _result(run)
    run_config = load_config(run.config_path)
    with safe_open(run.model_dir / "model.safetensors", "pt") as weights:
        params = sum(_count(weights.get_slice(k)) for k in weights.keys())
    workspace = Workspace(run.root.parents[1])
    train = [asdict(u) for u in workspace.read_split("train")]
    # The multilingual recipe names speakers <language>-<voice>.
    languages = sorted({u["speaker"].split("-")[0] for u in train})
    cer = result.get("best_dev_cer")
    return CARD.format(
        params=params, hidden=config["hidden_size"], layers=config["num_hidden_layers"],
        conv=tuple(config["conv_dim"]), minutes=sum(u["duration"] for u in train) / 60,
        n_languages=len(languages), languages=", ".join(languages), steps=result["steps"],
        train_min=result["elapsed_s"] / 60, dev_cer=f"{cer:.3f}" if cer is not None else "n/a",
    ) + f"\nRun configuration: preset {run_config.preset}, learning rate " \
        f"{run_config.optim.learning_rate}, batches of {run_config.data.max_batch_seconds} s.\n"


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


if __name__ == "__main__":
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else DEMO_BASE_DIR
    print(export_base(Path(sys.argv[1]), target))
