import itertools

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2ForCTC
from transformers.trainer_pt_utils import LengthGroupedSampler

from tests.workbench.ctc_fixtures import noise, tiny_config, tiny_processor
from workbench.augment import Augmenter
from workbench.data import (
    CTCCollator,
    DurationBatchSampler,
    EncoderCache,
    Example,
    ManifestDataset,
    batch_pad_seconds,
    greedy_cuts,
    min_padding_cuts,
    padded_durations,
    padding_fraction,
    steps_per_epoch,
)
from workbench.distributed import ShardedBatchSampler, WeightedDataset
from workbench.errors import WorkbenchError
from workbench.vocab import make_feature_extractor

DURATIONS = list(np.random.default_rng(0).uniform(1.0, 12.0, size=200))
# Like the bundled demo corpus: 180 clips of 1.1-6.3 s, mean 3.3 s.
DEMO_LIKE = list(np.clip(np.random.default_rng(0).normal(3.3, 1.25, 180), 1.1, 6.3))


def _covers_once(batches: list[list[int]], count: int) -> bool:
    return sorted(i for b in batches for i in b) == list(range(count))


def test_batches_respect_the_audio_budget_and_cover_each_item_once():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    for epoch in range(3):
        batches = sampler.batches(epoch)
        assert _covers_once(batches, len(DURATIONS))
        for batch in batches:
            assert len(batch) * max(DURATIONS[i] for i in batch) <= 40.0 or len(batch) == 1


def test_padding_stays_under_three_percent_where_length_grouping_pads_far_more():
    sampler = DurationBatchSampler(DEMO_LIKE, 30.0, seed=0)
    ours = [padding_fraction(DEMO_LIKE, sampler.batches(epoch)) for epoch in range(5)]
    assert max(ours) < 0.03
    # The reference: Trainer's group_by_length sampler at batch 8 (as many batches).
    assert steps_per_epoch(DEMO_LIKE, 30.0) == -(-len(DEMO_LIKE) // 8)
    order = list(LengthGroupedSampler(8, lengths=DEMO_LIKE,
                                      generator=torch.Generator().manual_seed(0)))
    reference = [order[i:i + 8] for i in range(0, len(order), 8)]
    assert padding_fraction(DEMO_LIKE, reference) > 0.08


def _brute_force_padding(lengths: list[float], max_seconds: float, count: int) -> float:
    best = float("inf")
    for cuts in itertools.combinations(range(1, len(lengths)), count - 1):
        bounds = (0, *cuts, len(lengths))
        groups = [lengths[a:b] for a, b in itertools.pairwise(bounds)]
        if all(len(g) * g[-1] <= max_seconds or len(g) == 1 for g in groups):
            best = min(best, sum(len(g) * g[-1] - sum(g) for g in groups))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_cut_points_are_the_least_padding_split_into_the_fewest_batches(seed):
    lengths = sorted(np.random.default_rng(seed).uniform(1.0, 6.0, size=12).tolist())
    cuts = min_padding_cuts(lengths, 14.0)
    assert len(cuts) == len(greedy_cuts(lengths, 14.0))
    padding = sum((b - a) * lengths[b - 1] - sum(lengths[a:b])
                  for a, b in itertools.pairwise(cuts))
    assert padding == pytest.approx(_brute_force_padding(lengths, 14.0, len(cuts) - 1))


def test_epochs_differ_in_content_but_are_reproducible():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    assert sampler.batches(0) == DurationBatchSampler(DURATIONS, 40.0, seed=1).batches(0)
    contents = [{frozenset(b) for b in sampler.batches(epoch)} for epoch in range(4)]
    # Not only a new order: from one epoch to the next some batches hold other utterances.
    assert all(a != b for a, b in itertools.pairwise(contents))


def test_resume_skips_served_batches():
    sampler = DurationBatchSampler(DURATIONS, 40.0, seed=1)
    full = sampler.batches(3)
    sampler.set_epoch(3, start_batch=5)
    assert list(sampler) == full[5:]
    assert len(sampler) == len(full) - 5
    resumed = DurationBatchSampler(DURATIONS, 40.0, seed=1)  # a fresh process after a restart
    resumed.set_epoch(3, start_batch=5)
    assert list(resumed) == full[5:]


@pytest.mark.parametrize("durations,budget", [(DURATIONS, 40.0), (DEMO_LIKE, 30.0),
                                              (DEMO_LIKE, 7.0), ([3.0], 1.0), ([], 5.0)])
def test_every_epoch_makes_steps_per_epoch_batches(durations, budget):
    expected = steps_per_epoch(durations, budget) if durations else 0
    for shuffle in (True, False):
        sampler = DurationBatchSampler(durations, budget, seed=2, shuffle=shuffle)
        for epoch in range(4):
            batches = sampler.batches(epoch)
            assert len(batches) == expected
            assert _covers_once(batches, len(durations))


def test_a_non_positive_budget_is_refused():
    with pytest.raises(ValueError, match="max_seconds"):
        DurationBatchSampler(DURATIONS, 0.0)


def test_collator_pads_audio_and_masks_labels():
    collate = CTCCollator(make_feature_extractor())
    batch = collate([Example("a", np.ones(16000, dtype=np.float32) * 0.1, [3, 4, 5]),
                     Example("b", np.ones(8000, dtype=np.float32) * 0.1, [6])])
    assert batch["input_values"].shape == (2, 16000)
    assert batch["attention_mask"][1].sum() == 8000
    assert torch.equal(batch["labels"], torch.tensor([[3, 4, 5], [6, -100, -100]]))


def test_batches_are_padded_to_whole_seconds_on_a_gpu_for_models_with_a_mask():
    assert batch_pad_seconds(-1, "cuda", masked=True) == 1.0
    assert batch_pad_seconds(-1, "cpu", masked=True) == 0.0
    assert batch_pad_seconds(-1, "cuda", masked=False) == 0.0  # padding would change it
    assert batch_pad_seconds(0.5, "cpu", masked=True) == 0.5
    assert batch_pad_seconds(0, "cuda", masked=True) == 0.0
    with pytest.raises(WorkbenchError, match=r"data.pad_to_seconds=0\.5.*attention mask"):
        batch_pad_seconds(0.5, "cuda", masked=False)


def test_batches_of_padded_clips_keep_the_budget_and_take_few_shapes():
    padded = padded_durations(DEMO_LIKE, 1.0)
    assert padded_durations(DEMO_LIKE, 0.0) == DEMO_LIKE
    assert all(p - 1.0 < d <= p for d, p in zip(DEMO_LIKE, padded, strict=True))
    assert padded_durations([2.0, 0.01], 1.0) == [2.0, 1.0]  # a whole second stays whole
    sampler = DurationBatchSampler(padded, 16.0, seed=3)
    shapes = set()
    for epoch in range(5):
        batches = sampler.batches(epoch)
        assert _covers_once(batches, len(DEMO_LIKE))
        for batch in batches:  # what the collator pads each batch to, in seconds
            longest = max(DEMO_LIKE[i] for i in batch)
            assert len(batch) * (-(-longest // 1.0)) <= 16.0
            shapes.add(max(padded[i] for i in batch))
    assert shapes <= {2.0, 3.0, 4.0, 5.0, 6.0, 7.0}  # against one per longest clip unpadded
    assert steps_per_epoch(padded, 16.0) == len(sampler.batches(0))


def test_a_batch_padded_to_whole_seconds_has_the_loss_of_the_unpadded_one(tmp_path):
    model = _tiny_model().eval()  # no dropout, no SpecAugment draws (they follow the length)
    extractor = tiny_processor(tmp_path).feature_extractor
    examples = [Example(f"u{i}", noise(s, i), [3, 4, 5][: i + 1])
                for i, s in enumerate([1.3, 0.55, 0.8])]
    padded = CTCCollator(extractor, pad_to_multiple_of=16000)(examples)
    assert padded["input_values"].shape == (3, 32000)
    assert padded["attention_mask"].sum(-1).tolist() == [20800, 8800, 12800]
    plain = CTCCollator(extractor)(examples)
    assert plain["input_values"].shape == (3, 20800)
    assert _loss(model, padded) == pytest.approx(_loss(model, plain), rel=1e-5)


def _tiny_model(norm: str = "layer") -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    config = tiny_config(norm)
    config.mask_time_prob, config.mask_time_length = 0.3, 2  # SpecAugment must still agree
    model = Wav2Vec2ForCTC(config)
    model.freeze_feature_encoder()
    return model.train()


def _loss(model, batch) -> float:
    torch.manual_seed(1)
    np.random.seed(1)  # transformers draws the SpecAugment masks with numpy
    return float(model(**batch).loss.detach())


def test_encoder_cache_gives_the_same_loss_and_skips_the_encoder(tmp_path):
    model = _tiny_model()
    extractor = tiny_processor(tmp_path).feature_extractor
    examples = [Example(f"u{i}", noise(s, i), [3, 4, 5][: i + 1])
                for i, s in enumerate([1.0, 0.55, 0.8, 0.3])]
    plain = CTCCollator(extractor)
    cache = EncoderCache.for_model(model, extractor)
    cached = CTCCollator(extractor, encoder_cache=cache)
    onednn = []  # the cache's encoder pass runs without oneDNN (a kernel kept per length)
    model.wav2vec2.feature_extractor.conv_layers[0].register_forward_pre_hook(
        lambda *_: onednn.append(torch._C._get_mkldnn_enabled()))
    for batch in (examples[:3], [examples[3], examples[0]], examples):  # misses, then hits
        onednn.clear()
        cached_loss = _loss(model, cached(batch))
        assert onednn.count(False) == (batch is not examples)  # computed once per miss batch
        assert cached_loss == pytest.approx(_loss(model, plain(batch)), rel=1e-5)
    assert len(cache.features) == 4
    cache.run_encoder = None  # every utterance is cached now: the encoder is not needed
    assert cached(examples)["input_values"].shape[:2] == (4, 32)


def test_encoder_cache_only_for_a_frozen_per_frame_normalised_encoder(tmp_path):
    extractor = tiny_processor(tmp_path).feature_extractor
    assert EncoderCache.for_model(_tiny_model("group"), extractor) is None
    trainable = _tiny_model()
    for parameter in trainable.wav2vec2.feature_extractor.parameters():
        parameter.requires_grad = True
    assert EncoderCache.for_model(trainable, extractor) is None


def _one_clip_dataset(tmp_path, augmenter=None) -> ManifestDataset:
    import soundfile as sf

    from workbench.manifest import Utterance

    sf.write(tmp_path / "a.wav", noise(1.0, 0), 16000, subtype="FLOAT")
    utterance = Utterance(id="a", audio="a.wav", text="ab", duration=1.0)
    return ManifestDataset([utterance], tmp_path, [[3, 4]], augmenter)


def test_training_reads_augmented_audio_drawn_anew_each_epoch(tmp_path):
    plain = _one_clip_dataset(tmp_path)
    assert np.array_equal(plain.example(0, 5).samples, plain[0].samples)
    augmented = _one_clip_dataset(tmp_path, Augmenter(1.0, seed=0))
    first, again = augmented.example(0, 1), augmented.example(0, 1)
    assert np.array_equal(first.samples, again.samples) and first.labels == [3, 4]
    assert not np.array_equal(first.samples[:4000], plain[0].samples[:4000])
    assert not np.array_equal(first.samples[:4000], augmented.example(0, 2).samples[:4000])


def test_the_loader_keys_carry_the_sampler_epoch_to_the_dataset(tmp_path):
    dataset = _one_clip_dataset(tmp_path, Augmenter(1.0, seed=0))
    sampler = DurationBatchSampler(dataset.durations, 10.0)
    sampler.set_epoch(3)
    [[key]] = list(ShardedBatchSampler(sampler, dataset.durations))
    assert key == (0, 1.0, 3)
    example, weight = WeightedDataset(dataset)[key]
    assert np.array_equal(example.samples, dataset.example(0, 3).samples) and weight == 1.0
