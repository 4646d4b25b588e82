"""Data-parallel training: a 2-process run (torchrun, gloo) is the single-process training.

The end-to-end test launches `workbench train` under torchrun on 2 CPU processes, stops it
half-way and resumes it (still on 2 processes), and compares every step's loss and the final
weights with a single-process run of the same configuration. Randomness that differs per
process by nature (SpecAugment, layerdrop, dropout) is off for the comparison.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import prepared_workspace, run_workbench
from workbench.data import CTCCollator, DurationBatchSampler
from workbench.distributed import (
    ShardedBatchSampler,
    WeightedCollator,
    WeightedDataset,
    choose_runtime,
    logit_lengths,
    shard_batch,
    weighted_ctc_loss,
)
from workbench.errors import WorkbenchError
from workbench.models import load_for_finetuning
from workbench.run import list_runs
from workbench.text import load_profile
from workbench.train import build_processor, load_training_data
from workbench.vocab import PAD, load_vocab

REPO = Path(__file__).resolve().parents[2]
STEPS = 10
# Same configuration for both runs: no per-process randomness, one thread per process.
SETTINGS = ["data.max_batch_seconds=12", "run.log_every=1", "run.threads=1", "run.eval_every=5",
            "model.mask_time_prob=0", "model.layerdrop=0"]
# Measured: the 2-process losses agree with one process to the 5 logged decimals and the
# weights to 4e-6 (fp32 summation order only); the tolerances leave an order of magnitude.
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-4
# Laptop mode and its finish run about twice the steps, at peak rates of 2e-3 to 6e-3 (the
# tiny model's): AdamW divides each update by the root of its second moment, so where a
# gradient is near zero a summation-order difference moves the update by a fraction of the
# rate. Measured 1.1e-4 at most (one weight of 24576; median over tensors 3e-7; AMD EPYC,
# 2026-12-04): a quarter of one step's update at the lowest rate.
LAPTOP_WEIGHT_ATOL = 5e-4


@pytest.fixture(scope="module")
def ws(demo_corpus, tmp_path_factory):
    return prepared_workspace(demo_corpus, tmp_path_factory.mktemp("ddp"), 24, vocab=True)


# --------------------------------------------------------------------------- sharding


def test_shards_split_each_global_batch_once_balanced_by_audio():
    durations = [3.0, 2.9, 2.8, 1.0, 1.0, 1.0, 0.9]
    shards = shard_batch(range(7), durations, 2)
    assert sorted(shards[0] + shards[1]) == list(range(7))
    totals = [sum(durations[i] for i in s) for s in shards]
    assert abs(totals[0] - totals[1]) <= max(durations)
    assert shard_batch(range(7), durations, 2) == shards  # the same on every rank


def test_every_rank_gets_its_shard_with_weights_that_make_the_global_mean():
    durations = [1.0 + 0.1 * i for i in range(23)]
    base = DurationBatchSampler(durations, 6.0, seed=3)
    per_rank = [list(ShardedBatchSampler(base, durations, rank=r, world_size=2))
                for r in range(2)]
    for global_batch, *shards in zip(base.batches(0), *per_rank, strict=True):
        served = sorted(i for shard in shards for i, w, _ in shard if w > 0)
        assert served == sorted(global_batch)
        assert sum(w for shard in shards for _, w, _ in shard) == pytest.approx(2.0)


def test_a_rank_with_nothing_to_do_still_steps_with_zero_weight():
    [shard] = ShardedBatchSampler([[4]], [1.0] * 5, rank=1, world_size=2)
    assert shard == [(4, 0.0, 0)]


# --------------------------------------------------------------------------- loss


def test_weighted_loss_with_equal_weights_is_the_models_own_mean_loss(ws):
    vocab = load_vocab(ws.vocab_path)
    data = load_training_data(ws, vocab, load_profile(ws.profile_path))
    model = load_for_finetuning("tiny", vocab_size=len(vocab), pad_token_id=vocab[PAD])
    collate = WeightedCollator(CTCCollator(build_processor(ws, model).feature_extractor))
    batch = collate([WeightedDataset(data.train)[(i, 1 / 4, 0)] for i in range(4)])
    weights = batch.pop("loss_weights")
    with torch.no_grad():
        output = model(**batch)
        ours = weighted_ctc_loss(output.logits, batch["labels"], logit_lengths(model, batch),
                                 weights, blank=vocab[PAD], zero_infinity=True)
    assert float(ours) == pytest.approx(float(output.loss), rel=1e-6)


# --------------------------------------------------------------------------- runtime


def test_runtime_on_a_gpu_uses_its_fast_paths():
    bf16 = choose_runtime("cuda", 16, True)
    assert (bf16.precision, bf16.tf32, bf16.fused_adamw) == ("bf16", True, True)
    assert bf16.num_workers == 4 and bf16.pin_memory and bf16.persistent_workers
    assert choose_runtime("cuda", 16, False).precision == "fp16"
    assert choose_runtime("cuda", 16, True, local_world_size=8).num_workers == 1
    assert choose_runtime("cuda", 16, True, precision="fp32").precision == "fp32"


def test_runtime_on_a_cpu_stays_fp32_in_one_process():
    cpu = choose_runtime("cpu", 2, False)
    assert (cpu.precision, cpu.tf32, cpu.fused_adamw, cpu.num_workers) == ("fp32", False,
                                                                           False, 0)
    assert cpu.attn_implementation == "sdpa" and not cpu.pin_memory
    with pytest.raises(WorkbenchError, match="run.precision"):
        choose_runtime("cpu", 2, False, precision="fp8")


def test_attention_kernel_is_asked_for_only_where_the_architecture_has_it():
    from transformers import Wav2Vec2Config, WavLMConfig

    from workbench.models import _attention

    assert _attention(Wav2Vec2Config(), "sdpa") == {"attn_implementation": "sdpa"}
    assert _attention(WavLMConfig(), "sdpa") == {}
    eager = load_for_finetuning("tiny", vocab_size=8, attn_implementation="eager")
    assert eager.config._attn_implementation == "eager"


@pytest.mark.parametrize("name,kind", [
    ("cpu_2proc", "MULTI_GPU"), ("ddp_2gpu", "MULTI_GPU"), ("multinode", "MULTI_GPU"),
    ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"),
])
def test_documented_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.num_processes >= 2


# --------------------------------------------------------------------------- end to end


def _train(ws, *extra: str, ranks: int = 1) -> None:
    run_workbench(ws, "train", *extra, ranks=ranks, timeout=300)


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _losses(records: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records if r["event"] == "train"}


def test_two_processes_train_exactly_like_one_and_resume(ws):
    _train(ws, "--model", "tiny", "--max-steps", str(STEPS), *SETTINGS)
    [single] = [run.root for run in list_runs(ws)]
    _train(ws, "--model", "tiny", "--max-steps", str(STEPS), *SETTINGS, "run.stop_at_step=5",
           ranks=2)
    [paired] = [run.root for run in list_runs(ws) if run.root != single]
    # The latest run (torchrun itself would take `--run` for its own `--run-path`).
    _train(ws, "--resume", "run.stop_at_step=0", ranks=2)

    one, two = _records(single), _records(paired)
    starts = [r for r in two if r["event"] == "start"]
    assert [(s["world_size"], s["step"]) for s in starts] == [(2, 0), (2, 5)]
    assert [r["world_size"] for r in one if r["event"] == "start"] == [1]
    assert list(_losses(two)) == list(range(1, STEPS + 1))  # one line per step, no duplicates
    expected = _losses(one)
    for step, loss in _losses(two).items():
        assert loss == pytest.approx(expected[step], rel=LOSS_RTOL), f"step {step}"
    dev = {r["step"]: r["dev_cer"] for r in one if r["event"] == "eval"}
    assert {r["step"]: r["dev_cer"] for r in two if r["event"] == "eval"} == dev

    result = json.loads((paired / "result.json").read_text())
    assert result["steps"] == STEPS and result["stopped"] == "max_steps"
    final_one = load_file(single / "checkpoints" / "last" / "model.safetensors")
    final_two = load_file(paired / "checkpoints" / "last" / "model.safetensors")
    assert final_one.keys() == final_two.keys()
    for key, value in final_one.items():
        torch.testing.assert_close(final_two[key], value, atol=WEIGHT_ATOL, rtol=1e-3,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_laptop_mode_and_its_finish_train_on_two_processes_as_on_one(ws):
    """Laptop mode (cached states, top layers) and its finish (a full fine-tune of the top
    stage's model) under torchrun: every step's loss and the final weights are the
    single-process run's, and both stages' records are there once."""
    settings = ["--model", "tiny", "--mode", "top", "--finish-epochs", "1", *SETTINGS,
                "model.mask_feature_prob=0", "optim.min_steps=1", "optim.epochs=3",
                "run.eval_every=4"]
    before = {run.root for run in list_runs(ws)}
    _train(ws, *settings)
    [single] = {run.root for run in list_runs(ws)} - before
    shutil.rmtree(ws.root / "cache" / "laptop")  # the paired run builds its own
    _train(ws, *settings, ranks=2)
    [paired] = {run.root for run in list_runs(ws)} - before - {single}

    one, two = _records(single), _records(paired)
    # The first rank computes the states; the second only reads its files.
    [cached_one] = [r for r in one if r["event"] == "cache"]
    [cached_two] = [r for r in two if r["event"] == "cache"]
    clips = cached_one["clips"]
    assert clips > 0 and cached_one["computed_by_rank"] == [clips]
    assert cached_two["computed_by_rank"] == [clips, 0]
    stages = [(r.get("stage", "top"), r["world_size"]) for r in two if r["event"] == "start"]
    assert stages == [("top", 2), ("finish", 2)]
    assert [r["event"] for r in two].count("stage_end") == 1
    expected = _losses(one)
    assert list(_losses(two)) == list(expected) == list(range(1, len(expected) + 1))
    for step, loss in _losses(two).items():
        assert loss == pytest.approx(expected[step], rel=LOSS_RTOL), f"step {step}"
    assert (paired / "finish.json").is_file()
    assert json.loads((paired / "result.json").read_text())["steps"] == len(expected)
    final_one = load_file(single / "checkpoints" / "last" / "model.safetensors")
    final_two = load_file(paired / "checkpoints" / "last" / "model.safetensors")
    for key, value in final_one.items():
        torch.testing.assert_close(final_two[key], value, atol=LAPTOP_WEIGHT_ATOL, rtol=1e-3,
                                   msg=lambda m, k=key: f"{k}: {m}")
