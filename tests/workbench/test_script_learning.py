"""The proof, on every commit, that an abugida is learnt under the default label unit: demo-base
fine-tuned on a few minutes of synthetic Hindi leaves the all-blank plateau (dev CER 1.0)
within a fixed number of steps. Bounded by steps, not by time (a busy machine makes it slower,
never red)."""

import pytest

from data_recipes import prepare_sources
from data_recipes.synthetic import generate_corpus
from workbench.config import build_config
from workbench.run import Run
from workbench.train import train
from workbench.vocab import build_workspace_vocab
from workbench.workspace import Workspace

STEPS = 70  # bench/scripts.py: dev CER 0.46 at step 40, 0.34 at step 80 on 10 min of Hindi
CER_CEILING = 0.8  # well below the plateau, with margin for the smaller corpus


@pytest.mark.needs_tool("espeak-ng")
def test_hindi_leaves_the_all_blank_plateau_under_code_point_labels(tmp_path):
    source = generate_corpus(tmp_path / "hi", language="hi", minutes=4, progress=False)
    ws = Workspace.at(tmp_path / "ws")
    prepare_sources([source], ws, progress=False)
    report = build_workspace_vocab(ws)
    assert report.label_unit == "codepoint" and report.vocab_size < 60  # letters and signs
    config = build_config(preset="10min", overrides=[
        "model.name=demo-base", f"optim.max_steps={STEPS}", f"run.eval_every={STEPS // 2}"])
    result = train(ws, config, progress=False)
    evals = [r for r in Run(result.run_dir).read_metrics() if r["event"] == "eval"]
    best = min(r["dev_cer"] for r in evals)
    assert best < CER_CEILING, f"dev CER {[r['dev_cer'] for r in evals]} after {STEPS} steps"
