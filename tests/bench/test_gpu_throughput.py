"""bench/gpu_throughput.py: its FLOP count of the workbench's training step, and its MFU."""

from __future__ import annotations

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from bench.gpu_throughput import (
    analytic_flops,
    character_vocab,
    datasheet_peak,
    mfu_text,
    step_child,
    step_table,
)
from bench.train_memory import TINY


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """XLS-R's layout at toy size (stable layer norm, grouped positional convolution)."""
    folder = tmp_path_factory.mktemp("tiny-xlsr")
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2Config(**TINY, vocab_size=40)).save_pretrained(folder)
    return folder


def run_step(folder, mode: str, top_layers: int = 0) -> dict:
    return step_child(str(folder), mode, batch_seconds=4.0, clip_seconds=2.0, steps=1,
                      warmup=1, top_layers=top_layers, threads=2, compile_=False)


@pytest.mark.parametrize("mode", ["full", "top"])
def test_counted_flops_are_the_analytic_model_flops(tiny_model, mode):
    """The counter sees the step's backward, attention on a CPU and the grouped positional
    convolution's weight gradient as the formula does (torch's own table misses the first,
    and counts the second four times over at this model's 4 groups)."""
    row = run_step(tiny_model, mode)
    assert row["batch"] == 2 and row["batch_audio_s"] == 4.0
    assert row["flops"] == row["analytic_flops"]
    config = Wav2Vec2Config(**TINY)
    forward = analytic_flops(config, 2, 32000, mode, cut=0, vocab=40)["forward"]
    assert row["flops"] > 2.5 * forward if mode == "top" else row["flops"] > 1.5 * forward
    assert row["precision"] == "fp32" and row["device"] == "cpu"
    assert row["step_s"] > 0 and row["audio_s_per_s"] == pytest.approx(4.0 / row["step_s"])
    assert row["achieved_tflops"] == pytest.approx(row["flops"] / row["step_s"] / 1e12)


def test_laptop_mode_counts_only_the_layers_it_trains(tiny_model):
    """One top layer of two: half the transformer's work and no feature encoder or positional
    convolution (less than half the full step's FLOPs);
    its once-per-clip bottom pass is timed apart."""
    full, top = run_step(tiny_model, "full"), run_step(tiny_model, "top", top_layers=1)
    assert top["trained_layers"] == 1 and full["trained_layers"] == 2
    assert top["trainable"] < full["trainable"]
    config = Wav2Vec2Config(**TINY)
    assert top["flops"] == analytic_flops(config, 2, 32000, "top", cut=1, vocab=40)["forward"] * 3
    assert top["flops"] < full["flops"] / 2
    assert top["cache_audio_s_per_s"] > 0 and full["cache_audio_s_per_s"] == 0


def test_analytic_count_of_xls_r_300m():
    """24 layers of 1024 on 50 frames a second: about 105 GFLOP of a full step per second of
    audio (10-second clips), a third of it forward; laptop mode's default 2 layers about a
    thirteenth."""
    from bench.train_memory import XLSR_300M

    config = Wav2Vec2Config(**XLSR_300M)
    full = analytic_flops(config, 1, 160000, "full", vocab=40)
    top = analytic_flops(config, 1, 160000, "top", cut=22, vocab=40)
    per_second = (full["forward"] + full["backward"]) / 10 / 1e9
    assert 95 < per_second < 115
    assert full["backward"] < 2 * full["forward"]  # the frozen feature encoder has none
    assert (top["forward"] + top["backward"]) / 10 / 1e9 == pytest.approx(per_second / 13,
                                                                          rel=0.25)


def test_datasheet_peaks():
    assert datasheet_peak("NVIDIA H200", "bf16") == 989.4
    assert datasheet_peak("NVIDIA H100 PCIe", "bf16") == 756.0
    assert datasheet_peak("NVIDIA A100-SXM4-80GB", "fp16") == 312.0
    assert datasheet_peak("NVIDIA H200", "fp32") is None
    assert datasheet_peak("cpu", "fp32") is None


def test_table_shows_mfu_against_both_peaks():
    row = {"mode": "full", "trained_layers": 24, "batch_audio_s": 160.0, "batch": 16,
           "clip_s": 10.0, "step_s": 0.5, "audio_s_per_s": 320.0, "flops": 1.5e13,
           "analytic_flops": 1.5e13, "gflops_per_audio_s": 93.75, "achieved_tflops": 30.0,
           "peak_tflops": 989.4, "matmul_tflops": 60.0, "peak_memory_gib": 40.0,
           "process_s": 100.0, "process_peak_rss_gib": 5.0}
    line = step_table([row])[-1]
    assert "| 3.0% | 50.0% |" in line and "93.8 (93.8)" in line
    assert mfu_text(1.0, None) == "-"
    failed = step_table([{"mode": "top", "batch_audio_s": 80.0, "error": "CUDA out of memory"}])
    assert "failed: CUDA out of memory" in failed[-1]


def test_character_vocab_is_laid_out_as_the_workbench_does():
    vocab = character_vocab(40)
    assert len(vocab) == 40 and vocab["[PAD]"] == 0 and vocab["|"] == 2


def test_train_rows_count_the_real_clips_flops_not_the_padding():
    """Two 2 s clips cost what a batch of two does; a 1 s and a 3 s clip less than a padded
    batch of two 3 s clips (their useful work, the rest is padding)."""
    from bench.gpu_throughput import useful_flops_per_second

    config = Wav2Vec2Config(**TINY)
    both = analytic_flops(config, 2, 32000, "full", vocab=40)
    assert useful_flops_per_second(config, [2.0, 2.0], "full", 0, 40) == pytest.approx(
        (both["forward"] + both["backward"]) / 4.0)
    padded = analytic_flops(config, 2, 48000, "top", cut=1, vocab=40)
    useful = useful_flops_per_second(config, [1.0, 3.0], "top", 1, 40) * 4.0
    assert useful < padded["forward"] + padded["backward"]
