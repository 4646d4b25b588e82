"""Training data: a Dataset over a manifest, duration-bounded batches, the CTC collator."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from workbench.manifest import Utterance


@dataclass(frozen=True)
class Example:
    """One decoded training example."""

    id: str
    samples: np.ndarray
    labels: list[int]


class ManifestDataset(Dataset):
    """Utterances of a manifest with their cached 16 kHz audio and label ids.

    The cache is already at the model rate, so reading an item is a file read, no decoding
    or resampling.
    """

    def __init__(self, utterances: list[Utterance], root: Path, labels: list[list[int]]):
        self.utterances = utterances
        self.root = Path(root)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> Example:
        utterance = self.utterances[index]
        samples, _ = sf.read(self.root / utterance.audio, dtype="float32")
        return Example(utterance.id, samples, self.labels[index])

    @property
    def durations(self) -> list[float]:
        return [u.duration for u in self.utterances]


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances bounded by total padded audio seconds.

    Utterances are sorted by duration (with a little seeded jitter, so batches differ between
    epochs), cut into batches whose ``len(batch) * longest`` stays within ``max_seconds``, and
    the batch order is shuffled each epoch. Deterministic for (seed, epoch), which is what lets
    a resumed run see the same batches it would have seen.
    """

    def __init__(self, durations: list[float], max_seconds: float, *, seed: int = 0,
                 shuffle: bool = True, jitter: float = 0.1):
        self.durations = durations
        self.max_seconds = max_seconds
        self.seed = seed
        self.shuffle = shuffle
        self.jitter = jitter
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Serve the batches of ``epoch`` from ``start_batch`` on (for resuming)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``, in the order they will be served."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        noise = [rng.uniform(-self.jitter, self.jitter) if self.shuffle else 0.0
                 for _ in self.durations]
        order = sorted(range(len(self.durations)), key=lambda i: self.durations[i] + noise[i])
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for index in order:
            duration = self.durations[index]
            if current and (len(current) + 1) * max(longest, duration) > self.max_seconds:
                batches.append(current)
                current, longest = [], 0.0
            current.append(index)
            longest = max(longest, duration)
        if current:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch)[self.start_batch:])

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.start_batch)


def padding_fraction(durations: list[float], batches: list[list[int]]) -> float:
    """Share of the padded batch audio that is padding."""
    real = sum(durations[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(durations[i] for i in batch) for batch in batches)
    return 0.0 if padded == 0 else 1.0 - real / padded


class CTCCollator:
    """Normalise and pad audio, pad labels with -100 (ignored by the CTC loss)."""

    def __init__(self, feature_extractor, *, pad_to_multiple_of: int | None = None):
        self.feature_extractor = feature_extractor
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        features = self.feature_extractor(
            [e.samples for e in examples], sampling_rate=self.feature_extractor.sampling_rate,
            padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt",
        )
        longest = max(1, max(len(e.labels) for e in examples))
        labels = torch.full((len(examples), longest), -100, dtype=torch.long)
        for row, example in enumerate(examples):
            labels[row, : len(example.labels)] = torch.tensor(example.labels, dtype=torch.long)
        batch = {"input_values": features["input_values"], "labels": labels}
        if "attention_mask" in features:
            batch["attention_mask"] = features["attention_mask"]
        return batch


def steps_per_epoch(durations: list[float], max_seconds: float) -> int:
    """Number of batches one epoch makes (without jitter, so it is stable)."""
    sampler = DurationBatchSampler(durations, max_seconds, shuffle=False)
    return max(1, len(sampler.batches(0))) if durations else 1

