"""Training input pipeline: padding and training throughput, workbench against the reference.

The reference is the path of the Hugging Face XLSR fine-tuning blog and
``run_speech_recognition_ctc.py``: a datasets ``Dataset`` cast to ``Audio(16000)``, ``map()``
with the processor, the blog's ``DataCollatorCTCWithPadding`` and ``Trainer`` with
``train_sampling_strategy="group_by_length"`` (transformers' ``LengthGroupedSampler``) at a
fixed batch size. The workbench is ``workbench.train.train()`` on a prepared workspace of the
same corpus, with ``data.max_batch_seconds`` chosen so that an epoch makes as many batches as
the reference's (so the mean real audio per batch is the same).

Two parts, each printing the two sides side by side:

* ``padding``: share of padded samples (and of model output frames) per epoch, the
  reference's sampler against ``DurationBatchSampler``, over several seeds and epochs, with
  the least padding any grouping into that many batches could reach.
* ``throughput``: training audio-seconds per second of both sides on the same model (a fresh
  copy of the bundled demo-base, frozen feature encoder, the same SpecAugment, layerdrop,
  optimiser and learning-rate schedule), fp32 on CPU with the same thread count, interleaved
  in rounds so machine noise hits both; plus the share of the workbench's step time spent
  waiting for data. Two figures per side: the first epoch (where the workbench's
  frozen-encoder cache is filled: the encoder runs on every clip, as it does on every step
  without the cache) and the steady state after it. The first epoch is timed from the first
  batch fetch (the first item read for the workbench, the first collation for the reference,
  whose items come from the already mapped Arrow table) to the end of its last step; the
  setup before it (model load, datasets, optimizer: inside ``train()`` for the workbench,
  ``build_model`` + ``Trainer(...)`` + ``train()`` for the reference) is printed apart. The
  reference's ``map()`` (decoding and normalising the audio) is done once beforehand and not
  timed; it is what ``workbench prepare`` does, timed in ``bench/prepare_speed.py``.

Usage (one epoch is 15 steps on the demo corpus)::

    python bench/input_pipeline.py                      # both parts, bundled demo corpus
    python bench/input_pipeline.py padding --split all  # padding over all 180 demo clips
    python bench/input_pipeline.py throughput --steps 45 --rounds 2 --threads 2
    python bench/input_pipeline.py --seeds 1 --epochs 1 --steps 17 --rounds 1   # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from workbench.audio import SAMPLE_RATE  # noqa: E402
from workbench.data import DurationBatchSampler, steps_per_epoch  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

SPLITS = {"train": ("train",), "all": ("train", "dev", "test")}


# --------------------------------------------------------------------------- workspace


def prepare_workspace(corpus: Path | None, root: Path) -> Workspace:
    """A workspace with ``corpus`` (default: the bundled demo corpus) imported and a vocab."""
    from data_recipes import prepare_sources
    from data_recipes.synthetic import DEMO_ARCHIVE, DEMO_NAME, unpack_corpus
    from workbench.vocab import build_workspace_vocab

    if corpus is None:
        unpack_corpus(DEMO_ARCHIVE, root / "corpus")
        corpus = root / "corpus" / DEMO_NAME
    ws = Workspace.at(root / "ws")
    prepare_sources([corpus], ws, progress=False)
    build_workspace_vocab(ws)
    return ws


def sample_counts(ws: Workspace, split: str) -> tuple[list[float], list[int]]:
    """Manifest durations (what the workbench sampler sees) and true sample counts."""
    utterances = [u for name in SPLITS[split] for u in ws.read_split(name)]
    samples = [sf.info(str(ws.root / u.audio)).frames for u in utterances]
    return [u.duration for u in utterances], samples


# --------------------------------------------------------------------------- padding


def reference_batches(lengths: list[int], batch_size: int, seed: int,
                      epochs: int) -> list[list[list[int]]]:
    """The batches ``Trainer(train_sampling_strategy="group_by_length")`` serves per epoch."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    generator = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
    out = []
    for _ in range(epochs):
        order = list(sampler)
        out.append([order[i:i + batch_size] for i in range(0, len(order), batch_size)])
    return out


def matched_max_seconds(durations: list[float], count: int, *, largest: bool = True) -> float:
    """A ``max_batch_seconds`` (rounded to 10 ms) at which an epoch makes ``count`` batches.

    Every value in that interval gives the same mean real audio per batch; ``largest`` takes
    the top of it (the most freedom for choosing cut points), else the bottom.
    """
    low, high = max(durations), sum(durations) + 1.0
    for _ in range(60):  # bisect the edge of the interval where the count is ``count``
        middle = (low + high) / 2
        count_at = steps_per_epoch(durations, middle)
        if count_at < count or (not largest and count_at == count):
            high = middle
        else:
            low = middle
    value = (np.floor(low * 100) / 100) if largest else (np.ceil(high * 100) / 100)
    if steps_per_epoch(durations, float(value)) != count:
        raise SystemExit(f"No max_batch_seconds gives exactly {count} batches per epoch.")
    return float(value)


def padding_share(lengths: list[int], batches: list[list[int]]) -> float:
    """Padding / padded total, with each batch padded to its longest item."""
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1.0 - real / padded


def output_frames(samples: int, kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Model output frames for ``samples`` of audio (the convolutional feature encoder)."""
    for kernel, stride in zip(kernels, strides, strict=True):
        samples = (samples - kernel) // stride + 1
    return samples


@dataclass
class PaddingFigures:
    """Per-epoch padding shares of one side."""

    samples: list[float] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    batch_audio_s: list[float] = field(default_factory=list)

    def add(self, samples: list[int], frames: list[int], batches: list[list[int]]) -> None:
        self.samples.append(padding_share(samples, batches))
        self.frames.append(padding_share(frames, batches))
        self.batch_audio_s.append(sum(samples) / SAMPLE_RATE / len(batches))


def run_padding(ws: Workspace, args) -> None:
    """Print per-epoch padding of the reference sampler and of DurationBatchSampler."""
    from transformers import AutoConfig

    from workbench.models import resolve_model_name

    durations, samples = sample_counts(ws, args.split)
    config = AutoConfig.from_pretrained(resolve_model_name("demo-base"))
    frames = [output_frames(n, tuple(config.conv_kernel), tuple(config.conv_stride))
              for n in samples]
    count = -(-len(samples) // args.batch_size)
    ref, sides = PaddingFigures(), {}
    for seed in range(args.seeds):
        for batches in reference_batches(samples, args.batch_size, seed, args.epochs):
            ref.add(samples, frames, batches)
    for label, largest in (("top", True), ("bottom", False)):
        max_seconds = matched_max_seconds(durations, count, largest=largest)
        side = sides[(label, max_seconds)] = PaddingFigures()
        for seed in range(args.seeds):
            sampler = DurationBatchSampler(durations, max_seconds, seed=seed)
            for epoch in range(args.epochs):
                side.add(samples, frames, sampler.batches(epoch))
    floor = least_padding(samples, count)
    print_padding(ws, args, len(samples), count, ref, sides, floor)


def least_padding(samples: list[int], count: int) -> float | None:
    """The least padding share of any grouping into ``count`` batches.

    Sorted contiguous groups are optimal; a dynamic programme over the cut points finds the
    best ones (None for corpora too large for this quadratic check).
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(ordered)
    if n > 3000:
        return None
    prefix = np.concatenate([[0.0], np.cumsum(ordered)])
    ends = np.arange(1, n + 1)
    starts = np.arange(n)
    # padded[j, i-1]: padded total of the batch ordered[j:i] (inf where j >= i).
    padded = np.where(starts[:, None] < ends[None, :],
                      (ends[None, :] - starts[:, None]) * ordered[None, :], np.inf)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    for _ in range(count):
        step = np.full(n + 1, np.inf)
        step[1:] = np.min(best[:-1, None] + padded, axis=0)
        best = step
    return 1.0 - prefix[-1] / best[n]


def print_padding(ws, args, n, count, ref: PaddingFigures, sides: dict, floor: float) -> None:
    total = statistics.mean(ref.batch_audio_s) * count
    print(f"\nPadding: {n} utterances ({total / 60:.1f} min, split {args.split!r}), "
          f"{count} batches per epoch, {args.seeds} seeds x {args.epochs} epochs")
    head = f"{'sampler':54} {'pad samples':>12} {'(max)':>7} {'pad frames':>11} {'batch s':>8}"
    print(head)
    print("-" * len(head))
    rows = [(f"reference LengthGroupedSampler, batch {args.batch_size}", ref)]
    rows += [(f"DurationBatchSampler max_batch_seconds={s:g} ({label})", side)
             for (label, s), side in sides.items()]
    for name, side in rows:
        print(f"{name:54} {statistics.mean(side.samples):12.2%} {max(side.samples):7.2%} "
              f"{statistics.mean(side.frames):11.2%} {statistics.mean(side.batch_audio_s):8.2f}")
    best = min(statistics.mean(side.samples) for side in sides.values())
    floor_text = "n/a" if floor is None else f"{floor:.2%}"
    print(f"least possible padding of any grouping into {count} batches: {floor_text}; "
          f"reference / workbench padding: {statistics.mean(ref.samples) / best:.1f}x")


# --------------------------------------------------------------------------- throughput


@dataclass
class StepLog:
    """Per-step end times, real audio and data-wait seconds of one training run."""

    ends: list[float] = field(default_factory=list)
    audio_s: list[float] = field(default_factory=list)
    padded_s: list[float] = field(default_factory=list)
    wait_s: list[float] = field(default_factory=list)
    gaps_s: list[float] = field(default_factory=list)  # step end to next step start
    pending_s: float = 0.0  # item reads of the batch being assembled
    loop_wait_s: list[float] = field(default_factory=list)  # the loop's own figure, if any
    called: float = 0.0  # when the side's setup began (model build, train() call)
    first_fetch: float | None = None  # when the first batch began to be read

    def fetching(self) -> None:
        """Note the first batch fetch."""
        if self.first_fetch is None:
            self.first_fetch = time.perf_counter()

    def first_epoch(self, steps: int) -> tuple[float, float, float]:
        """Setup seconds, then audio-seconds per second and mean step seconds over the first
        ``steps`` steps, timed from the first batch fetch."""
        if self.first_fetch is None or len(self.ends) < steps:
            raise SystemExit(f"The first epoch ({steps} steps) did not finish.")
        elapsed = self.ends[steps - 1] - self.first_fetch
        return (self.first_fetch - self.called, sum(self.audio_s[:steps]) / elapsed,
                elapsed / steps)

    def steady(self, warmup: int) -> tuple[float, float, float, float]:
        """Audio-seconds per second, data-wait share (bench-timed and as the loop reports it,
        NaN when it does not) and mean step seconds, over the steps after ``warmup``."""
        steps = len(self.ends)
        if not 1 <= warmup < steps - 1:
            raise SystemExit(f"Need 1 <= --warmup < steps - 1 (got {warmup}, {steps} steps).")
        elapsed = self.ends[-1] - self.ends[warmup - 1]
        audio = sum(self.audio_s[warmup:steps])
        wait = sum((self.gaps_s or self.wait_s)[warmup:steps])
        loop_wait = (sum(self.loop_wait_s[warmup:steps]) / elapsed
                     if len(self.loop_wait_s) == steps else float("nan"))
        return audio / elapsed, wait / elapsed, loop_wait, elapsed / (steps - warmup)


class TimedCollator:
    """Wrap a collator: record each batch's real audio and its data time (reads + collate)."""

    def __init__(self, collator, log: StepLog, audio_of):
        self.collator, self.log, self.audio_of = collator, log, audio_of

    def __call__(self, items):
        self.log.fetching()
        started = time.perf_counter()
        batch = self.collator(items)
        self.log.wait_s.append(self.log.pending_s + time.perf_counter() - started)
        self.log.pending_s = 0.0
        self.log.audio_s.append(self.audio_of(items))
        self.log.padded_s.append(batch["input_values"].numel() / SAMPLE_RATE)
        return batch


def workbench_config(max_seconds: float, args, *, encoder_cache: bool = True):
    """The workbench's run configuration for the demo-base model (eval out of the way)."""
    from workbench.config import build_config

    return build_config(preset="10min", overrides=[
        "model.name=demo-base", f"data.max_batch_seconds={max_seconds}",
        f"optim.max_steps={args.steps}", "run.eval_every=1000000", "run.log_every=1",
        f"run.threads={args.threads}", f"run.seed={args.seed}",
        f"data.cache_encoder_features={str(encoder_cache).lower()}",
    ])


def run_workbench(ws: Workspace, config, args) -> StepLog:
    """``workbench.train.train()``, timing each step and the data reads and collation.

    The loop runs as is; the bench only wraps the dataset and collator classes ``train()``
    builds, to time them (the loader reads in the training process, so that time is waited).
    """
    import workbench.train as wt

    log = StepLog()
    originals = wt.ManifestDataset, wt.CTCCollator

    class TimedDataset(originals[0]):
        def __getitem__(self, index):
            log.fetching()
            started = time.perf_counter()
            item = super().__getitem__(index)
            log.pending_s += time.perf_counter() - started
            return item

    def collator(feature_extractor, **kwargs):
        return TimedCollator(originals[1](feature_extractor, **kwargs), log,
                             lambda items: sum(len(e.samples) for e in items) / SAMPLE_RATE)

    def on_event(record: dict) -> None:
        if record.get("event") == "train":
            log.ends.append(time.perf_counter())
            if "data_wait_s" in record:  # the loop's own figure, when it reports one
                log.loop_wait_s.append(record["data_wait_s"])

    wt.ManifestDataset, wt.CTCCollator = TimedDataset, collator
    try:
        with tempfile.TemporaryDirectory(dir=ws.root) as run_dir:
            log.called = time.perf_counter()
            wt.train(ws, config, run_dir=Path(run_dir), progress=False, on_event=on_event)
    finally:
        wt.ManifestDataset, wt.CTCCollator = originals
    return log


@dataclass
class BlogCollator:
    """``DataCollatorCTCWithPadding`` of the XLSR fine-tuning blog."""

    processor: object
    padding: bool | str = True

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        input_features = [{"input_values": f["input_values"]} for f in features]
        label_features = [{"input_ids": f["labels"]} for f in features]
        batch = self.processor.pad(input_features, padding=self.padding, return_tensors="pt")
        labels_batch = self.processor.pad(labels=label_features, padding=self.padding,
                                          return_tensors="pt")
        batch["labels"] = labels_batch["input_ids"].masked_fill(
            labels_batch.attention_mask.ne(1), -100)
        return batch


def reference_dataset(ws: Workspace, utterances, texts: list[str], processor):
    """The blog's dataset: cast to ``Audio(16000)``, then ``map()`` with the processor."""
    from datasets import Audio, Dataset

    dataset = Dataset.from_dict({"audio": [str(ws.root / u.audio) for u in utterances],
                                 "sentence": texts})
    dataset = dataset.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE))

    def prepare(batch):
        audio = batch["audio"]
        batch["input_values"] = processor(audio["array"],
                                          sampling_rate=audio["sampling_rate"]).input_values[0]
        batch["input_length"] = len(batch["input_values"])
        batch["labels"] = processor(text=batch["sentence"]).input_ids
        return batch

    return dataset.map(prepare, remove_columns=dataset.column_names)


class ReferenceSetup:
    """What the reference side needs, built once (the ``map()`` is not timed)."""

    def __init__(self, ws: Workspace, config):
        from workbench.config import resolve_schedule
        from workbench.text import load_profile, normalize
        from workbench.train import build_model, build_processor, load_training_data
        from workbench.vocab import load_vocab

        self.vocab = load_vocab(ws.vocab_path)
        profile = load_profile(ws.profile_path)
        data = load_training_data(ws, self.vocab, profile)
        utterances = data.train.utterances
        self.config = config
        self.schedule = resolve_schedule(config, steps_per_epoch(
            data.train.durations, config.data.max_batch_seconds))
        self.processor = build_processor(ws, build_model(config, self.vocab))
        texts = [normalize(u.text, profile) for u in utterances]
        self.dataset = reference_dataset(ws, utterances, texts, self.processor)


def run_reference(setup: ReferenceSetup, args) -> StepLog:
    """``Trainer`` with ``group_by_length``, batch ``args.batch_size``, timed per step."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from workbench.train import build_model

    log = StepLog()
    optim = setup.config.optim

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            log.gaps_s.append(time.perf_counter() - log.ends[-1] if log.ends else 0.0)

        def on_step_end(self, *_, **__):
            log.ends.append(time.perf_counter())

    log.called = time.perf_counter()
    torch.manual_seed(args.seed)
    model = build_model(setup.config, setup.vocab)
    collator = TimedCollator(BlogCollator(setup.processor), log,
                             lambda items: sum(len(f["input_values"]) for f in items)
                             / SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size,
            train_sampling_strategy="group_by_length", length_column_name="input_length",
            learning_rate=optim.learning_rate, weight_decay=optim.weight_decay,
            warmup_steps=setup.schedule.warmup_steps, lr_scheduler_type="linear",
            max_steps=args.steps, max_grad_norm=optim.grad_clip, optim="adamw_torch",
            logging_strategy="no", save_strategy="no", eval_strategy="no", report_to="none",
            use_cpu=True, seed=args.seed, dataloader_num_workers=0, disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=setup.dataset,
                          data_collator=collator, callbacks=[StepTimer()],
                          processing_class=setup.processor.feature_extractor)
        trainer.train()
    return log


def run_throughput(ws: Workspace, args) -> None:
    """Interleave reference and workbench runs; print steady-state audio-seconds/second."""
    durations, samples = sample_counts(ws, "train")
    count = -(-len(samples) // args.batch_size)
    max_seconds = args.max_batch_seconds or matched_max_seconds(durations, count)
    warmup = args.warmup or count
    configs = {"workbench": workbench_config(max_seconds, args),
               "workbench-nocache": workbench_config(max_seconds, args, encoder_cache=False)}
    torch.set_num_threads(args.threads)
    setup = ReferenceSetup(ws, configs["workbench"])
    sides = ["reference", "workbench-nocache", "workbench"]
    results: dict[str, list[tuple[float, ...]]] = {side: [] for side in sides}
    for round_ in range(args.rounds):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            torch.set_num_threads(args.threads)
            log = run_reference(setup, args) if side == "reference" else run_workbench(
                ws, configs[side], args)
            results[side].append((*log.steady(warmup), *log.first_epoch(warmup)))
            rate, wait, loop_wait, step, setup_s, first_rate, first_step = results[side][-1]
            print(f"  round {round_ + 1} {side:17}: setup {setup_s:5.1f} s, first epoch "
                  f"{first_rate:6.1f} audio-s/s ({first_step * 1000:5.0f} ms/step), steady "
                  f"{rate:6.1f} audio-s/s ({step * 1000:5.0f} ms/step), data wait {wait:.1%} "
                  f"(loop: {loop_wait:.1%})", flush=True)
    print_throughput(args, count, max_seconds, warmup, results)


def print_throughput(args, count: int, max_seconds: float, warmup: int,
                     results: dict) -> None:
    print(f"\nThroughput: demo-base, fp32 CPU, {args.threads} threads, {args.steps} steps, "
          f"first epoch = the first {warmup} steps, steady state = the {args.steps - warmup} "
          f"after them, {args.rounds} interleaved rounds (medians), {count} batches per epoch "
          "on both sides")
    head = (f"| {'side':68} | setup s | epoch 1 audio-s/s | ratio | epoch 1 ms/step | "
            f"steady audio-s/s | ratio | steady ms/step | data wait | (loop) |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    names = {"reference": f"reference: Trainer group_by_length, batch {args.batch_size}",
             "workbench-nocache": f"workbench: train(), max_batch_seconds={max_seconds:g}, "
                                  "encoder run every step",
             "workbench": "workbench: the same with its frozen-encoder cache (default)"}
    medians = {side: [statistics.median(column) for column in zip(*rows, strict=True)]
               for side, rows in results.items()}
    ref = medians["reference"]
    for side, (rate, wait, loop_wait, step, setup_s, first_rate, first_step) in medians.items():
        print(f"| {names[side]:68} | {setup_s:7.1f} | {first_rate:17.1f} | "
              f"{first_rate / ref[5]:4.2f}x | {first_step * 1000:15.0f} | {rate:16.1f} | "
              f"{rate / ref[0]:4.2f}x | {step * 1000:14.0f} | {wait:9.1%} | {loop_wait:6.1%} |")
    print("setup: from the train() call (workbench) or the model build (reference) to the first "
          "batch fetch. Data wait (steady state): item reads + collation for the workbench "
          "(loop: as train() reports it), the gap between steps for the reference. The "
          "reference's map() is not timed (see bench/prepare_speed.py); the workbench reads "
          "its cached 16 kHz WAVs during training, inside these figures.")


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("all", "padding", "throughput"),
                        default="all")
    parser.add_argument("--corpus", type=Path, help="audiofolder to import (default: the "
                        "bundled 10-minute demo corpus)")
    parser.add_argument("--workspace", type=Path, help="an already prepared workspace with a "
                        "vocabulary (skips the import)")
    parser.add_argument("--batch-size", type=int, default=8, help="the reference's batch size")
    parser.add_argument("--split", choices=tuple(SPLITS), default="train",
                        help="utterances for the padding part (train: what training sees)")
    parser.add_argument("--seeds", type=int, default=5, help="padding: sampler seeds")
    parser.add_argument("--epochs", type=int, default=10, help="padding: epochs per seed")
    parser.add_argument("--steps", type=int, default=45, help="throughput: steps per run")
    parser.add_argument("--warmup", type=int, default=0,
                        help="throughput: steps not timed (0: one epoch)")
    parser.add_argument("--rounds", type=int, default=2, help="throughput: interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-batch-seconds", type=float, default=0.0,
                        help="workbench batch budget (0: matched to the reference's count)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.workspace:
            ws = Workspace.at(args.workspace)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            ws = prepare_workspace(args.corpus, root)
        if args.part in ("all", "padding"):
            run_padding(ws, args)
        if args.part in ("all", "throughput"):
            run_throughput(ws, args)


if __name__ == "__main__":
    main()
