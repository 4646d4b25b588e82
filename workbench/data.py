"""Training data: a Dataset over a manifest, duration-bounded batches, the CTC collator."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from workbench.augment import Augmenter
from workbench.cpu_memory import without_onednn
from workbench.errors import WorkbenchError
from workbench.manifest import Utterance


@dataclass(frozen=True)
class Example:
    """One decoded training example (``view``: which cached copy laptop mode serves)."""

    id: str
    samples: np.ndarray
    labels: list[int]
    view: int = 0


class ManifestDataset(Dataset):
    """Utterances of a manifest with their cached 16 kHz audio and label ids.

    The cache is already at the model rate, so reading an item is a file read, no decoding
    or resampling. With an ``augmenter``, :meth:`example` perturbs the audio per epoch; with
    ``views`` > 1 (laptop mode's cached perturbed copies) it names the copy of the epoch.
    With ``read_audio`` off (laptop mode trains on cached states) items carry no samples.
    """

    def __init__(self, utterances: list[Utterance], root: Path, labels: list[list[int]],
                 augmenter: Augmenter | None = None, weights: list[float] | None = None):
        self.utterances = utterances
        self.root = Path(root)
        self.labels = labels
        self.augmenter = augmenter
        self.views = 1
        self.read_audio = True
        self.weights = list(weights) if weights is not None else [1.0] * len(utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> Example:
        utterance = self.utterances[index]
        samples = (sf.read(self.root / utterance.audio, dtype="float32")[0] if self.read_audio
                   else np.zeros(0, dtype=np.float32))
        return Example(utterance.id, samples, self.labels[index])

    def example(self, index: int, epoch: int) -> Example:
        """Item ``index`` as training sees it in ``epoch`` (augmented when set to)."""
        item = self[index]
        if self.views > 1:
            return Example(item.id, item.samples, item.labels, view=epoch % self.views)
        if self.augmenter is None:
            return item
        return Example(item.id, self.augmenter(item.samples, index, epoch), item.labels)

    @property
    def durations(self) -> list[float]:
        return [u.duration for u in self.utterances]


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances bounded by total padded audio seconds.

    Each epoch makes the fewest batches whose ``len(batch) * longest`` stays within
    ``max_seconds`` (so the count, ``steps_per_epoch``, never changes), with the cut points
    between them chosen over the duration-sorted utterances to minimise padding. ``variety``
    perturbs each candidate batch's padding cost by up to that fraction, seeded per epoch, so
    the cuts (and so the batches) change between epochs while the padding stays within
    ``1 + variety`` of the least possible; batch order is shuffled. Deterministic for
    (seed, epoch), which is what lets a resumed run see the same batches it would have seen.
    """

    def __init__(self, durations: list[float], max_seconds: float, *, seed: int = 0,
                 shuffle: bool = True, variety: float = 0.3):
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}.")
        self.durations = list(durations)
        self.max_seconds = max_seconds
        self.seed = seed
        self.shuffle = shuffle
        self.variety = variety if shuffle else 0.0
        self.epoch = 0
        self.start_batch = 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve the batches of ``epoch`` from ``start_batch`` on (for resuming)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``, in the order they will be served."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._make_batches(epoch))
        return [list(batch) for batch in self._cached[1]]

    def _make_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        ties = [rng.random() if self.shuffle else 0.0 for _ in self.durations]
        order = sorted(range(len(self.durations)), key=lambda i: (self.durations[i], ties[i]))
        lengths = [self.durations[i] for i in order]
        cuts = min_padding_cuts(lengths, self.max_seconds, rng=rng, variety=self.variety)
        batches = [order[start:end] for start, end in itertools.pairwise(cuts)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch)[self.start_batch:])

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.start_batch)


def _fits(lengths: list[float], start: int, end: int, max_seconds: float) -> bool:
    """Whether sorted ``lengths[start:end]`` padded to its longest fits ``max_seconds``."""
    return end - start == 1 or (end - start) * lengths[end - 1] <= max_seconds


def greedy_cuts(lengths: list[float], max_seconds: float) -> list[int]:
    """Cut points of the fewest batches over sorted ``lengths``, each filled from the left.

    Any sub-range of a batch that fits also fits, so filling greedily gives the least count.
    """
    cuts, start = [0], 0
    while start < len(lengths):
        end = start + 1
        while end < len(lengths) and _fits(lengths, start, end + 1, max_seconds):
            end += 1
        cuts.append(end)
        start = end
    return cuts


def _latest_starts(lengths: list[float], max_seconds: float) -> list[int]:
    """Greedy from the right: ``starts[k]`` is the least position the last k batches reach."""
    starts, end = [len(lengths)], len(lengths)
    while end > 0:
        start = end - 1
        while start > 0 and _fits(lengths, start - 1, end, max_seconds):
            start -= 1
        starts.append(start)
        end = start
    return starts


def min_padding_cuts(lengths: list[float], max_seconds: float, *,
                     rng: random.Random | None = None, variety: float = 0.0) -> list[int]:
    """Cut points of the fewest fitting batches over sorted ``lengths`` with the least padding.

    Dynamic programme over the cut positions; cut k can only lie between where k batches
    filled from the right and from the left leave it, a narrow band since the count is the
    least possible. With ``variety`` > 0, each batch's padding cost is scaled by a seeded
    factor in [1, 1 + variety), so the result varies and costs at most that much more.
    """
    if not lengths:
        return [0]
    highest = greedy_cuts(lengths, max_seconds)
    count = len(highest) - 1
    starts = _latest_starts(lengths, max_seconds)
    lowest = starts[::-1]
    prefix = list(itertools.accumulate(lengths, initial=0.0))
    draw = rng.random if rng is not None and variety > 0 else (lambda: 0.0)
    left = [draw() for _ in range(len(lengths) + 1)]
    right = [draw() for _ in range(len(lengths) + 1)]
    best: list[dict[int, tuple[float, int]]] = [{0: (0.0, 0)}]
    for k in range(1, count + 1):
        previous, layer = best[-1], {}
        for end in range(lowest[k], highest[k] + 1):
            layer[end] = _best_start(lengths, prefix, previous, end, max_seconds,
                                     lambda s, e: 1.0 + variety * ((left[s] + right[e]) % 1.0))
        best.append({e: v for e, v in layer.items() if v is not None})
    cuts = [len(lengths)]
    for k in range(count, 0, -1):
        cuts.append(best[k][cuts[-1]][1])
    return cuts[::-1]


def _best_start(lengths, prefix, previous: dict[int, tuple[float, int]], end: int,
                max_seconds: float, factor) -> tuple[float, int] | None:
    """Cheapest (cost, start) for a batch ending at ``end`` after a reachable ``start``."""
    best = None
    for start in range(end - 1, -1, -1):
        if not _fits(lengths, start, end, max_seconds):
            break
        if start not in previous:
            continue
        padding = (end - start) * lengths[end - 1] - (prefix[end] - prefix[start])
        cost = previous[start][0] + padding * factor(start, end)
        if best is None or cost < best[0]:
            best = (cost, start)
    return best


def padding_fraction(durations: list[float], batches: list[list[int]]) -> float:
    """Share of the padded batch audio that is padding."""
    real = sum(durations[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(durations[i] for i in batch) for batch in batches)
    return 0.0 if padded == 0 else 1.0 - real / padded


class CTCCollator:
    """Normalise and pad audio, pad labels with -100 (ignored by the CTC loss).

    With an ``encoder_cache``, ``input_values`` are the padded outputs of the model's frozen
    feature encoder, (batch, channels, frames), and ``attention_mask`` still counts samples.
    """

    def __init__(self, feature_extractor, *, pad_to_multiple_of: int | None = None,
                 encoder_cache: EncoderCache | None = None):
        self.feature_extractor = feature_extractor
        self.pad_to_multiple_of = pad_to_multiple_of
        self.encoder_cache = encoder_cache

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        batch = {"labels": _padded_labels(examples)}
        if self.encoder_cache is not None:
            batch["input_values"] = self.encoder_cache.encode(examples)
            batch["attention_mask"] = _sample_mask([len(e.samples) for e in examples])
            return batch
        features = self.feature_extractor(
            [e.samples for e in examples], sampling_rate=self.feature_extractor.sampling_rate,
            padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt",
        )
        batch["input_values"] = features["input_values"]
        if "attention_mask" in features:
            batch["attention_mask"] = features["attention_mask"]
        return batch


def _padded_labels(examples: list[Example]) -> torch.Tensor:
    longest = max(1, max(len(e.labels) for e in examples))
    labels = torch.full((len(examples), longest), -100, dtype=torch.long)
    for row, example in enumerate(examples):
        labels[row, : len(example.labels)] = torch.tensor(example.labels, dtype=torch.long)
    return labels


def _sample_mask(lengths: list[int]) -> torch.Tensor:
    positions = torch.arange(max(lengths))
    return (positions[None, :] < torch.tensor(lengths)[:, None]).long()


class EncoderCache:
    """Outputs of a model's frozen convolutional feature encoder, computed once per utterance.

    A frozen encoder that normalises each frame on its own (``feat_extract_norm="layer"``, as
    XLS-R and MMS do) gives an utterance the same features whatever batch it is in, and its
    real frames never see the padding; so after the first epoch the encoder need not run
    again. The model is patched to take such features in place of audio (3-D ``input_values``;
    2-D audio still goes through the encoder). For CPU runs, where the loader works in the
    training process; features beyond ``max_bytes`` are computed each time.
    """

    def __init__(self, model, feature_extractor, *, max_bytes: int = 1 << 30):
        self.feature_extractor = feature_extractor
        self.run_encoder = _accept_encoded_inputs(_feature_encoder(model))
        self.frames = model._get_feat_extract_output_lengths
        self.max_bytes = max_bytes
        self.bytes = 0
        self.features: dict[str, torch.Tensor] = {}

    @classmethod
    def for_model(cls, model, feature_extractor, **options) -> EncoderCache | None:
        """A cache when ``model``'s encoder is frozen and per-frame normalised, else None."""
        encoder = _feature_encoder(model)
        frozen = encoder is not None and not any(p.requires_grad for p in encoder.parameters())
        per_frame = getattr(model.config, "feat_extract_norm", None) == "layer"
        masked = bool(getattr(feature_extractor, "return_attention_mask", False))
        return cls(model, feature_extractor, **options) if frozen and per_frame and masked \
            else None

    def encode(self, examples: list[Example]) -> torch.Tensor:
        """Padded encoder outputs of ``examples``: (batch, channels, frames)."""
        found = {e.id: self.features[e.id] for e in examples if e.id in self.features}
        missing = [e for e in examples if e.id not in found]
        if missing:
            found.update(self._compute(missing))
        rows = [found[e.id] for e in examples]
        out = rows[0].new_zeros((len(rows), rows[0].shape[0], max(r.shape[1] for r in rows)))
        for index, row in enumerate(rows):
            out[index, :, : row.shape[1]] = row
        return out

    @torch.no_grad()
    def _compute(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        audio = self.feature_extractor(
            [e.samples for e in examples], sampling_rate=self.feature_extractor.sampling_rate,
            padding=True, return_tensors="pt")
        with without_onednn():  # one compiled kernel kept per input length otherwise
            encoded = self.run_encoder(audio["input_values"])
        frames = self.frames(audio["attention_mask"].sum(-1)).tolist()
        out = {}
        for row, (example, count) in enumerate(zip(examples, frames, strict=True)):
            out[example.id] = encoded[row, :, :count].clone()
            size = out[example.id].numel() * out[example.id].element_size()
            if self.bytes + size <= self.max_bytes:
                self.features[example.id] = out[example.id]
                self.bytes += size
        return out


def _feature_encoder(model) -> torch.nn.Module | None:
    return getattr(getattr(model, "base_model", model), "feature_extractor", None)


def _accept_encoded_inputs(encoder: torch.nn.Module):
    """Let ``encoder`` pass 3-D inputs (its own outputs) through; return its own forward."""
    original = getattr(encoder, "_workbench_forward", encoder.forward)

    def forward(input_values: torch.Tensor) -> torch.Tensor:
        return input_values if input_values.dim() == 3 else original(input_values)

    encoder._workbench_forward = original
    encoder.forward = forward
    return original


# On a GPU a step with a batch shape not seen before stalled by 2.3-2.6 s (measured on an
# H200, bench/RESULTS.md; the cause was not profiled, likely kernels set up per shape);
# batches padded to whole seconds keep the shapes few.
GPU_PAD_SECONDS = 1.0


def batch_pad_seconds(setting: float, device_type: str, masked: bool) -> float:
    """The multiple, in seconds, each batch's audio is padded to (0: its longest clip only).

    ``setting`` is ``data.pad_to_seconds`` (-1: ``GPU_PAD_SECONDS`` on a GPU); ``masked``,
    whether the model takes an attention mask: without one, padding changes what it computes.

    Raises:
        WorkbenchError: padding asked for a model without an attention mask.
    """
    if setting < 0:
        return GPU_PAD_SECONDS if device_type == "cuda" and masked else 0.0
    if setting > 0 and not masked:
        raise WorkbenchError(
            f"data.pad_to_seconds={setting:g}: this model takes no attention mask, so padding "
            "would change what it computes. Set data.pad_to_seconds=0.")
    return setting


def padded_durations(durations: list[float], multiple: float) -> list[float]:
    """Each duration rounded up to ``multiple`` seconds (unchanged for 0): what a clip costs
    in a batch padded to that multiple, for forming batches within ``max_batch_seconds``."""
    if multiple <= 0:
        return list(durations)
    return [max(1, math.ceil(d / multiple - 1e-9)) * multiple for d in durations]


def steps_per_epoch(durations: list[float], max_seconds: float) -> int:
    """Number of batches every epoch makes (the least that fit ``max_seconds``)."""
    return max(1, len(greedy_cuts(sorted(durations), max_seconds)) - 1)

