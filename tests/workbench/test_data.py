import numpy as np
import torch

from workbench.data import (
    CTCCollator,
    DurationBatchSampler,
    Example,
    padding_fraction,
    steps_per_epoch,
)
from workbench.vocab import make_feature_extractor

DURATIONS = list(np.random.default_rng(0).uniform(1.0, 12.0, size=200))


def test_batches_respect_the_audio_budget_and_cover_each_item_once():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    batches = sampler.batches(0)
    assert sorted(i for b in batches for i in b) == list(range(len(DURATIONS)))
    for batch in batches:
        assert len(batch) * max(DURATIONS[i] for i in batch) <= 40.0 or len(batch) == 1


def test_grouping_by_duration_keeps_padding_low():
    batches = DurationBatchSampler(DURATIONS, 60.0, seed=0).batches(0)
    assert padding_fraction(DURATIONS, batches) < 0.05
    naive = [list(range(i, i + 8)) for i in range(0, 200, 8)]
    assert padding_fraction(DURATIONS, naive) > 0.2


def test_epochs_differ_but_are_reproducible():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    assert sampler.batches(0) == DurationBatchSampler(DURATIONS, 40.0, seed=1).batches(0)
    assert sampler.batches(0) != sampler.batches(1)


def test_resume_skips_served_batches():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    full = sampler.batches(3)
    sampler.set_epoch(3, start_batch=5)
    assert list(sampler) == full[5:]
    assert len(sampler) == len(full) - 5


def test_steps_per_epoch_matches_batches():
    assert steps_per_epoch(DURATIONS, 40.0) == len(
        DurationBatchSampler(DURATIONS, 40.0, shuffle=False).batches(0))


def test_collator_pads_audio_and_masks_labels():
    collate = CTCCollator(make_feature_extractor())
    batch = collate([Example("a", np.ones(16000, dtype=np.float32) * 0.1, [3, 4, 5]),
                     Example("b", np.ones(8000, dtype=np.float32) * 0.1, [6])])
    assert batch["input_values"].shape == (2, 16000)
    assert batch["attention_mask"][1].sum() == 8000
    assert torch.equal(batch["labels"], torch.tensor([[3, 4, 5], [6, -100, -100]]))
