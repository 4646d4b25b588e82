import json

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import prepared_workspace, private_copy
from workbench.config import build_config
from workbench.train import TrainingDiverged, find_run, resume_run, train
from workbench.workspace import Workspace

FAST = ["model.name=tiny", "data.max_batch_seconds=12", "run.log_every=1", "run.threads=2"]


@pytest.fixture(scope="module")
def prepared(demo_corpus, tmp_path_factory) -> Workspace:
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("train"), 48, vocab=True)


@pytest.fixture
def ws(prepared, tmp_path) -> Workspace:
    return private_copy(prepared, tmp_path / "ws")


def losses(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if r["event"] == "train"]


def test_loss_falls_and_the_model_is_standard_hf(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=40",
                                                     "run.eval_every=20"])
    result = train(ws, config, progress=False)
    steps = losses(result.run_dir)
    assert steps[0][0] == 1 and steps[-1][0] == 40
    first, last5 = steps[0][1], [loss for _, loss in steps[-5:]]
    assert sum(last5) / 5 < 0.6 * first
    assert result.best_dev_cer is not None and 0.0 <= result.best_dev_cer <= 1.5
    model_dir = result.run_dir / "model"
    assert (model_dir / "model.safetensors").is_file()
    assert (result.run_dir / "config.yaml").read_text().count("name: tiny") == 1

    from transformers import pipeline

    recognise = pipeline("automatic-speech-recognition", model=str(model_dir), device="cpu")
    utterance = ws.read_split("test")[0]
    out = recognise(str(ws.audio_path(utterance)))
    assert isinstance(out["text"], str)


class Interrupt(Exception):
    pass


def test_resume_continues_from_the_checkpoint(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=16",
                                                     "run.eval_every=8"])

    def stop_after_step_10(event):
        if event["event"] == "train" and event["step"] == 10:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(ws, config, progress=False, on_event=stop_after_step_10)
    run_dir = find_run(ws, None)
    checkpoint = run_dir / "checkpoints" / "last"
    saved = json.loads((checkpoint / "state.json").read_text())
    assert saved["step"] == 8
    weights_at_8 = load_file(checkpoint / "model.safetensors")

    result = resume_run(ws, progress=False)
    assert result.run_dir == run_dir and result.steps == 16
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    starts = [r for r in records if r["event"] == "start"]
    assert [s["step"] for s in starts] == [0, 8]
    after_resume = [r["step"] for r in records[records.index(starts[1]):]
                    if r["event"] == "train"]
    assert after_resume[0] == 9 and after_resume[-1] == 16
    final = load_file(checkpoint / "model.safetensors")
    assert any(not torch.equal(final[k], weights_at_8[k]) for k in final)


def test_non_finite_loss_stops_with_the_last_good_checkpoint_intact(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=60",
                                                     "run.eval_every=1", "learning_rate=1e9",
                                                     "optim.warmup_fraction=0",
                                                     "optim.grad_clip=0"])
    with pytest.raises(TrainingDiverged, match="learning rate") as caught:
        train(ws, config, progress=False)
    run_dir = find_run(ws, None)
    state = json.loads((run_dir / "checkpoints" / "last" / "state.json").read_text())
    weights = load_file(run_dir / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert f"step {state['step']}" in str(caught.value)


def test_stop_at_step_ends_early_on_the_longer_schedule(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=10",
                                                     "optim.warmup_fraction=0",
                                                     "run.stop_at_step=4"])
    result = train(ws, config, progress=False)
    assert result.steps == 4 and result.stopped == "stop_at_step"
    records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    lr_at_4 = next(r["lr"] for r in records if r["event"] == "train" and r["step"] == 4)
    assert lr_at_4 == pytest.approx(config.optim.learning_rate * 6 / 10)


def test_start_logs_the_runtime_and_steps_log_their_wait_for_data(ws):
    config = build_config(preset="10min", overrides=[*FAST, "optim.max_steps=4",
                                                     "run.log_every=2", "run.eval_every=4"])
    result = train(ws, config, progress=False)
    records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    [start] = [r for r in records if r["event"] == "start"]
    assert start["world_size"] == 1 and start["attn_implementation"] == "sdpa"
    assert start["runtime"]["device_type"] == "cpu" and start["runtime"]["num_workers"] == 0
    steps = [r for r in records if r["event"] == "train"]
    assert [r["step"] for r in steps] == [1, 2, 4]
    assert all(0 < r["data_wait_s"] and 0 < r["data_wait_share"] < 1 for r in steps)
    saved = json.loads((result.run_dir / "result.json").read_text())
    assert saved["data_wait_s"] == pytest.approx(result.data_wait_s)
    assert saved["data_wait_s"] >= sum(r["data_wait_s"] for r in steps) - 1e-3
    assert 0 < saved["data_wait_share"] < 1
