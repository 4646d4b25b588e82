"""Continued pretraining on untranscribed pieces: wav2vec 2.0's loss on a CTC-only base (fresh
quantizer), codebook guards, a base that `train --model` takes, exact resume, collapse stop."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from data_recipes.untranscribed import import_untranscribed
from tests.conftest import prepared_workspace, private_copy, run_workbench
from tests.data_recipes.test_untranscribed import demo_clips, recording
from workbench.cli import main
from workbench.config import build_config
from workbench.errors import WorkbenchError
from workbench.fsio import HeldLock
from workbench.models import DEMO_BASE_DIR
from workbench.pretrain import (
    PretrainCollapse,
    PretrainSettings,
    gumbel_temperature,
    list_pretraining_runs,
    pretrain,
    read_pretraining_metrics,
)
from workbench.train import train
from workbench.vocab import build_workspace_vocab

LAYER = "wav2vec2.encoder.layers.0.attention.q_proj.weight"


@pytest.fixture(scope="module")
def with_audio(demo_corpus, tmp_path_factory):
    """A prepared demo workspace with about 40 s of untranscribed pieces."""
    root = tmp_path_factory.mktemp("pretrain")
    ws = prepared_workspace(demo_corpus, root, 30)
    build_workspace_vocab(ws)
    sf.write(root / "rec.wav", recording(demo_clips(demo_corpus, 100, 14)), 16000)
    import_untranscribed([root / "rec.wav"], ws)
    return ws


@pytest.fixture
def ws(with_audio, tmp_path):
    return private_copy(with_audio, tmp_path / "ws")


def settings(**changes) -> PretrainSettings:
    base = dict(model="demo-base", steps=6, learning_rate=1e-4, max_batch_seconds=12.0,
                log_every=1, checkpoint_every=3, num_negatives=20, threads=2,
                gumbel_temperature_decay=0.9)
    return PretrainSettings(**{**base, **changes})


def records(run_dir, event: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").open())
            if r["event"] == event]


def test_demo_base_continues_pretraining_into_a_base_that_train_accepts(ws):
    result = pretrain(ws, settings())
    assert result.steps == 6 and result.stopped == "schedule"
    # demo-base was fine-tuned with CTC only: its pretraining heads start fresh, and say so.
    assert result.fresh == ["project_hid", "project_q", "quantizer"]
    [start] = records(result.run_dir, "start")
    assert start["fresh"] == result.fresh and start["codebook"] == 640
    steps = records(result.run_dir, "train")
    assert [r["step"] for r in steps] == list(range(1, 7))
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in steps)
    assert all(1 <= r["perplexity"] <= 640 and 0 < r["codebook_used"] <= 1 for r in steps)
    assert steps[-1]["temperature"] < steps[0]["temperature"]  # annealed
    base = load_file(result.base_dir / "model.safetensors")
    original = load_file(DEMO_BASE_DIR / "model.safetensors")
    assert not torch.equal(base[LAYER], original[LAYER])  # the transformer learned
    conv = "wav2vec2.feature_extractor.conv_layers.0.conv.weight"
    assert torch.equal(base[conv], original[conv])  # the feature encoder stayed frozen
    # The base fine-tunes with the settings of the model it continued (demo-base's here).
    assert build_config(preset="10min", overrides=[f"model.name={result.base_dir}"]) == \
        replace(build_config(preset="10min", overrides=["model.name=demo-base"]),
                model=replace(build_config(preset="10min", overrides=[
                    "model.name=demo-base"]).model, name=str(result.base_dir)))
    config = build_config(preset="10min", overrides=[
        f"model.name={result.base_dir}", "optim.max_steps=2", "run.eval_every=2"])
    run = train(ws, config, progress=False)
    tuned = load_file(run.run_dir / "model" / "model.safetensors")
    assert tuned[LAYER].shape == base[LAYER].shape and run.steps == 2


def test_an_interrupted_pretraining_resumes_to_the_same_weights(ws):
    whole = pretrain(ws, settings())
    part = pretrain(ws, settings(stop_at_step=3))
    assert part.stopped == "stop_at_step" and part.steps == 3
    resumed = pretrain(ws, settings(), resume=part.run_dir.name)
    assert resumed.steps == 6 and resumed.run_dir == part.run_dir
    a = load_file(whole.base_dir / "model.safetensors")
    b = load_file(resumed.base_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:  # multithreaded CPU kernels add in varying order: equal to float noise
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5)
    losses = [r["loss"] for r in records(whole.run_dir, "train")]
    assert [r["loss"] for r in records(resumed.run_dir, "train")] == losses


def test_a_collapsing_codebook_stops_the_run_and_keeps_the_last_good_base(ws):
    chosen = settings(steps=8, collapse_patience=2)

    def collapse_after_the_first_checkpoint(record):
        if record["event"] == "checkpoint":
            chosen.collapse_share = 1.0  # from now on every perplexity counts as collapsed

    with pytest.raises(PretrainCollapse, match="codebook collapsed.*from step 3 is kept"):
        pretrain(ws, chosen, on_event=collapse_after_the_first_checkpoint)
    [run] = (ws.root / "pretrain").glob("*-demo-base")
    kept = json.loads((ws.root / "bases" / run.name / "pretraining.json").read_text())
    assert kept["step"] == 3
    assert records(run, "end")[0]["stopped"] == "collapse"


def test_pretrain_on_the_command_line_and_without_audio(ws, prepared_plain, capsys):
    code = main(["pretrain", "-w", str(ws.root), "--model", "demo-base", "--steps", "2",
                 "num_negatives=10", "max_batch_seconds=12", "--json", "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["steps"] == 2
    assert main(["pretrain", "-w", str(ws.root), "colour=blue"]) != 0
    assert "Unknown pretraining setting 'colour=blue'" in capsys.readouterr().err
    with pytest.raises(WorkbenchError, match="prepare --untranscribed"):
        pretrain(prepared_plain, settings())


@pytest.fixture
def prepared_plain(demo_corpus, tmp_path):
    return prepared_workspace(demo_corpus, tmp_path / "plain", 10)


def test_gumbel_temperature_reaches_its_minimum_within_a_short_run():
    run = PretrainSettings(steps=150, gumbel_temperature_decay=0)  # 0: scaled to the run
    temperatures = [gumbel_temperature(run, step, 150) for step in range(151)]
    assert temperatures[0] == pytest.approx(2.0)
    assert all(a >= b for a, b in zip(temperatures, temperatures[1:], strict=False))
    assert temperatures[104] > 0.5 + 1e-3 and temperatures[105] == pytest.approx(0.5)
    assert temperatures[-1] == 0.5
    # fairseq's per-step decay, the default: over 150 steps it barely moves.
    fixed = PretrainSettings(steps=150)
    assert gumbel_temperature(fixed, 150, 150) == pytest.approx(2.0 * 0.999995 ** 150)


def _pretrain_cli(ws, *extra: str, ranks: int = 1) -> None:
    run_workbench(ws, "pretrain", *extra, ranks=ranks)


def test_two_processes_pretrain_one_run_and_resume_it(ws):
    """torchrun, 2 CPU processes (gloo): one run folder and lock, each step logged once, a
    checkpoint by the first process that both resume from, one base."""
    _pretrain_cli(ws, "--model", "demo-base", "--steps", "4", "num_negatives=10",
                  "max_batch_seconds=6", "log_every=1", "checkpoint_every=2", "threads=1",
                  "stop_at_step=2", ranks=2)
    [run] = list_pretraining_runs(ws)
    _pretrain_cli(ws, "--resume", ranks=2)
    assert list_pretraining_runs(ws) == [run]
    logged = read_pretraining_metrics(run)
    assert [r["world_size"] for r in logged if r["event"] == "start"] == [2]
    assert [r["step"] for r in logged if r["event"] == "resume"] == [2]
    assert [r["step"] for r in logged if r["event"] == "train"] == [1, 2, 3, 4]
    assert [r["stopped"] for r in logged if r["event"] == "end"] == ["stop_at_step", "schedule"]
    base = json.loads((ws.root / "bases" / run.name / "pretraining.json").read_text())
    assert base["step"] == 4
    assert not (ws.root / "pretrain" / ".lock").exists() or \
        HeldLock.try_acquire(ws.root / "pretrain" / ".lock", {}) is not None  # released
