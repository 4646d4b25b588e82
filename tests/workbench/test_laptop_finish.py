"""Laptop mode's finish (model.finish_epochs): after the top stage, a full fine-tune from its
model in the same run, head kept; resumed where it was killed; its defaults and settings."""

import json

import pytest
import torch
from safetensors.torch import load_file

import workbench.train as training
from tests.conftest import private_copy
from tests.workbench.test_laptop import (  # noqa: F401  (fixtures)
    Interrupt,
    assert_same_training,
    pre_ln,
    prepared,
    records,
    top_config,
    ws,
)
from workbench.config import (
    SMALL_FINISH_RATE_FACTOR,
    TOP_LEARNING_RATE_FACTOR,
    build_config,
    finish_config,
)
from workbench.run import Run, find_run
from workbench.train import FINISH_MARKER, resume_run, train

TOP_STEPS = 12  # test_laptop's STEPS


def finishing(model, *extra: str):
    return top_config(model, "model.finish_epochs=1", *extra)


def finish_steps_of(run: Run) -> int:
    return records(run, "start")[0]["finish_steps"]


def test_the_finish_trains_every_layer_above_the_encoder_from_the_top_result(
        ws, pre_ln, monkeypatch):  # noqa: F811
    heads = {}
    build = training.build_model

    def watched(config, vocab, attn=None, *, reset_head=True):
        model = build(config, vocab, attn, reset_head=reset_head)
        heads["reset" if reset_head else "kept"] = model.lm_head.weight.detach().clone()
        return model

    def at_stage_end(event):
        if event["event"] == "stage_end":
            top_model = find_run(ws).model_dir / "model.safetensors"
            heads["top"] = load_file(top_model)["lm_head.weight"]

    monkeypatch.setattr(training, "build_model", watched)
    result = train(ws, finishing(pre_ln), progress=False, on_event=at_stage_end)
    run = Run(result.run_dir)
    extra = finish_steps_of(run)
    assert extra >= 1 and result.steps == TOP_STEPS + extra and result.stopped == "max_steps"
    starts = records(run, "start")
    assert [(r["step"], r.get("stage")) for r in starts] == [(0, None), (TOP_STEPS, "finish")]
    assert [r["pad_to_seconds"] for r in starts] == [0.0, 0.0]  # resolved: a CPU pads none
    assert [r["steps"] for r in records(run, "stage_end")] == [TOP_STEPS]
    assert len(records(run, "end")) == 1 and run.completed
    assert json.loads((run.root / FINISH_MARKER).read_text())["steps"] == TOP_STEPS
    # The finish starts from the top stage's model, its head included.
    torch.testing.assert_close(heads["kept"], heads["top"], rtol=0, atol=0)
    # Every layer above the feature encoder trained: the bottom layers the top stage kept
    # frozen and the positional convolution; the feature encoder stays as it was.
    before = load_file(pre_ln / "model.safetensors")
    after = load_file(run.last_checkpoint / "model.safetensors")
    moved = ("wav2vec2.encoder.layers.0.", "wav2vec2.encoder.pos_conv_embed.",
             "wav2vec2.feature_projection.")
    for prefix in moved:
        keys = [k for k in after if k.startswith(prefix)]
        assert keys and any(not torch.equal(before[k], after[k]) for k in keys), prefix
    assert not any(k.startswith("wav2vec2.feature_extractor.") for k in after)  # left out
    assert all(r["step"] > TOP_STEPS for r in records(run, "train")[TOP_STEPS:])


def test_the_finish_runs_at_a_third_of_the_top_rate_without_floor_or_head_only_steps():
    top = build_config(preset="10min", overrides=["model.name=xls-r-300m", "model.mode=top",
                                                  "model.finish_epochs=2"])
    finish = finish_config(top, "/runs/r/model")
    assert finish.model.mode == "full" and finish.model.name == "/runs/r/model"
    assert finish.model.finish_epochs == 0 and finish.optim.epochs == 2
    assert finish.optim.learning_rate == pytest.approx(
        top.optim.learning_rate / TOP_LEARNING_RATE_FACTOR)
    assert finish.optim.min_steps == 0 and finish.optim.head_only_steps == 0
    own = finish_config(replace_rate(top, 7e-5), "m")
    assert own.optim.learning_rate == 7e-5


def replace_rate(config, rate):
    from dataclasses import replace

    return replace(config, optim=replace(config.optim, finish_learning_rate=rate))


def test_demo_base_finishes_by_default_and_other_models_do_not():
    demo = build_config(preset="10min", overrides=["model.name=demo-base", "model.mode=top"])
    full = build_config(preset="10min", overrides=["model.name=demo-base"])
    assert demo.model.finish_epochs == 6 and demo.optim.epochs == full.optim.epochs / 2
    assert full.model.finish_epochs == 0
    xlsr = build_config(preset="10min", overrides=["model.name=xls-r-300m", "model.mode=top"])
    assert xlsr.model.finish_epochs == 0
    off = build_config(preset="10min", overrides=["model.name=demo-base", "model.mode=top",
                                                  "model.finish_epochs=0"])
    assert off.model.finish_epochs == 0


def test_demo_base_finishes_above_the_full_fine_tunes_rate_and_follows_the_users():
    full = build_config(preset="10min", overrides=["model.name=demo-base"])
    top = build_config(preset="10min", overrides=["model.name=demo-base", "model.mode=top"])
    rate = finish_config(top, "/runs/r/model").optim.learning_rate
    assert rate == pytest.approx(full.optim.learning_rate * SMALL_FINISH_RATE_FACTOR)
    assert rate != pytest.approx(full.optim.learning_rate)
    mine = build_config(preset="10min", overrides=["model.name=demo-base", "model.mode=top",
                                                   "optim.learning_rate=6e-3"])
    assert finish_config(mine, "m").optim.learning_rate == pytest.approx(
        6e-3 / TOP_LEARNING_RATE_FACTOR * SMALL_FINISH_RATE_FACTOR)
    own = finish_config(replace_rate(top, 5e-4), "m")
    assert own.optim.learning_rate == 5e-4


@pytest.mark.parametrize("stop_at", ["before_its_checkpoint", "after_its_checkpoint"])
def test_a_run_killed_in_its_finish_ends_as_the_uninterrupted_one(
        ws, pre_ln, tmp_path, stop_at):  # noqa: F811
    settings = ["model.mask_time_prob=0.2", "model.hidden_dropout=0.1"]
    reference = Run(train(private_copy(ws, tmp_path / "reference"),
                          finishing(pre_ln, *settings), progress=False).run_dir)
    checkpointed = 16  # run.eval_every=4: the finish's first checkpoint

    def stop(event):
        killed_at = checkpointed + 1 if stop_at == "after_its_checkpoint" else TOP_STEPS + 2
        if event["event"] == "train" and event["step"] == killed_at:
            raise Interrupt

    assert finish_steps_of(reference) > checkpointed - TOP_STEPS
    with pytest.raises(Interrupt):
        train(ws, finishing(pre_ln, *settings), progress=False, on_event=stop)
    run = find_run(ws)
    assert not run.completed and (run.root / FINISH_MARKER).is_file()
    result = resume_run(ws, progress=False)
    assert result.steps == TOP_STEPS + finish_steps_of(reference) and run.completed
    starts = [(r["step"], r.get("stage")) for r in records(run, "start")]
    # Killed before the finish's first checkpoint, the finish starts again from the top
    # stage's result (what it had logged is cut); after it, it resumes from the checkpoint.
    assert starts == [(0, None), (TOP_STEPS, "finish")] + (
        [(checkpointed, "finish")] if stop_at == "after_its_checkpoint" else [])
    assert_same_training(run, reference)
