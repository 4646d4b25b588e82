"""CTC fine-tuning: short named steps, resumable, with guards and progress events.

A run lives in ``<workspace>/runs/<run-id>/``::

    config.yaml         the resolved configuration (resume reads it back)
    checkpoints/last/   model.safetensors, training_state.pt, state.json (resume point)
    model/              the best model so far by dev CER, in Hugging Face format
    metrics.jsonl       one JSON line per logged step and per evaluation
    result.json         summary once the run ends
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer
import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedType
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, gather_object
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from workbench.audit import load_excluded_ids
from workbench.config import Schedule, TrainConfig, load_config, resolve_schedule, save_config
from workbench.data import (
    CTCCollator,
    DurationBatchSampler,
    EncoderCache,
    ManifestDataset,
    steps_per_epoch,
)
from workbench.distributed import (
    RuntimeSettings,
    ShardedBatchSampler,
    WeightedCollator,
    WeightedDataset,
    apply_tf32,
    choose_runtime,
    interleave,
    local_world_size,
    logit_lengths,
    usable_cpus,
    weighted_ctc_loss,
)
from workbench.errors import WorkbenchError
from workbench.manifest import Utterance, write_json_atomic
from workbench.models import load_for_finetuning
from workbench.text import OrthographyProfile, load_profile, normalize
from workbench.vocab import PAD, encode_labels, load_vocab, make_processor
from workbench.workspace import Workspace, new_stamped_dir

EventHandler = Callable[[dict], None]
LAST = "last"


class TrainingDiverged(WorkbenchError):
    """The loss became NaN or infinite."""


@dataclass
class TrainState:
    """Where a run stands; saved with every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_cer: float = math.inf
    best_step: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    steps: int
    best_step: int
    best_dev_cer: float | None
    best_dev_wer: float | None
    final_loss: float | None
    elapsed_s: float
    stopped: str
    data_wait_s: float = 0.0
    data_wait_share: float | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data


@dataclass
class TrainingData:
    """Datasets and the facts the schedule needs."""

    train: ManifestDataset
    dev: ManifestDataset | None
    dev_references: list[str]
    train_seconds: float


# --------------------------------------------------------------------------- run directories


def new_run_dir(ws: Workspace, model_name: str) -> Path:
    """A fresh, uniquely named run directory (sortable by start time)."""
    short = Path(model_name.rstrip("/")).name.replace("wav2vec2-", "")[:24] or "model"
    return new_stamped_dir(ws.runs_dir, short)


def list_runs(ws: Workspace) -> list[Path]:
    """Run directories, oldest first."""
    if not ws.runs_dir.is_dir():
        return []
    return sorted(p for p in ws.runs_dir.iterdir() if (p / "config.yaml").is_file())


def find_run(ws: Workspace, run: str | None) -> Path:
    """The named run, or the latest one; a readable error when there is none."""
    runs = list_runs(ws)
    if run:
        candidate = Path(run) if Path(run).is_dir() else ws.runs_dir / run
        if not (candidate / "config.yaml").is_file():
            names = ", ".join(p.name for p in runs) or "none"
            raise WorkbenchError(f"No run {run!r} in {ws.runs_dir}. Runs: {names}.")
        return candidate
    if not runs:
        raise WorkbenchError(
            f"{ws.root} has no training runs yet. Train one with `workbench train -w {ws.root}`."
        )
    return runs[-1]


# --------------------------------------------------------------------------- data


def load_training_data(ws: Workspace, vocab: dict[str, int],
                       profile: OrthographyProfile) -> TrainingData:
    """Train and dev datasets without the utterances the audit set aside."""
    ws.require_prepared()
    excluded = load_excluded_ids(ws)
    train = [u for u in ws.read_split("train") if u.id not in excluded]
    dev = [u for u in ws.read_split("dev") if u.id not in excluded]
    if not train:
        raise WorkbenchError(
            f"No training utterances are left after the audit (see {ws.audit_path}). "
            "Fix or add data and run `workbench prepare` again."
        )
    return TrainingData(
        train=_dataset(ws, train, vocab, profile),
        dev=_dataset(ws, dev, vocab, profile) if dev else None,
        dev_references=[normalize(u.text, profile) for u in dev],
        train_seconds=sum(u.duration for u in train),
    )


def _dataset(ws: Workspace, utterances: list[Utterance], vocab, profile) -> ManifestDataset:
    labels = [encode_labels(u.text, vocab, profile) for u in utterances]
    return ManifestDataset(utterances, ws.root, labels)


# --------------------------------------------------------------------------- model and optimiser


def build_model(config: TrainConfig, vocab: dict[str, int], attn_implementation: str | None = None):
    """The CTC model with a fresh head sized to the vocabulary."""
    settings = asdict(config.model)
    model = load_for_finetuning(config.model.name, vocab_size=len(vocab),
                                pad_token_id=vocab[PAD], settings=settings,
                                attn_implementation=attn_implementation)
    if config.model.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if config.model.gradient_checkpointing:
        # transformers 5 renamed it; both checkpoint without re-entrant autograd (DDP-safe).
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
    return model


def build_processor(ws: Workspace, model):
    """Processor for the workspace vocabulary, matched to the model's feature encoder.

    Models with group-norm feature encoders (wav2vec2-base) were trained without an
    attention mask; padded batches must then not pass one.
    """
    processor = make_processor(ws.vocab_path)
    uses_mask = getattr(model.config, "feat_extract_norm", "layer") == "layer"
    processor.feature_extractor.return_attention_mask = uses_mask
    return processor


def build_optimizer(model, config: TrainConfig, schedule: Schedule, fused: bool):
    """AdamW over the trainable parameters and a linear warm-up/decay schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.optim.learning_rate,
                                  weight_decay=config.optim.weight_decay,
                                  fused=fused or None)
    scheduler = get_linear_schedule_with_warmup(optimizer, schedule.warmup_steps,
                                                schedule.max_steps)
    return optimizer, scheduler


def make_accelerator(config: TrainConfig) -> tuple[Accelerator, RuntimeSettings]:
    """Accelerator and runtime settings for the device (GPU features chosen automatically).

    Launched by torchrun or ``accelerate launch`` with several processes, the accelerator is
    data-parallel (DDP, or FSDP/DeepSpeed from an accelerate config). One optimiser step is one
    global batch split across the processes (``split_batches``), so the learning-rate schedule
    advances once per step whatever the number of processes.
    """
    if config.run.device not in ("auto", "cpu", "cuda"):
        raise WorkbenchError(f"run.device={config.run.device!r}: choose auto, cpu or cuda.")
    if config.run.device == "cuda" and not torch.cuda.is_available():
        raise WorkbenchError("run.device=cuda was asked for, but no CUDA GPU is available.")
    use_cpu = config.run.device == "cpu" or not torch.cuda.is_available()
    runtime = choose_runtime("cpu" if use_cpu else "cuda", usable_cpus(),
                             not use_cpu and torch.cuda.is_bf16_supported(),
                             precision=config.run.precision,
                             local_world_size=local_world_size())
    apply_tf32(runtime.tf32)
    mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[runtime.precision]
    # Layerdrop skips different layers on different ranks; DDP must then look for them.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=config.model.layerdrop > 0)
    accelerator = Accelerator(cpu=use_cpu, mixed_precision=mixed, kwargs_handlers=[ddp],
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    if accelerator.state.deepspeed_plugin is not None:
        # Batches are bounded by audio seconds, not a count; DeepSpeed only wants a number.
        accelerator.state.deepspeed_plugin.deepspeed_config[
            "train_micro_batch_size_per_gpu"] = 1
    return accelerator, runtime


def shards_parameters(accelerator: Accelerator) -> bool:
    """True under FSDP or DeepSpeed, where every rank must run every forward pass together."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(run_dir: Path, name: str, model, optimizer, scheduler,
                    state: TrainState, state_dict: dict | None = None) -> Path:
    """Write a resumable checkpoint atomically (a crash mid-write keeps the old one).

    ``state_dict``: the model weights when they are gathered from several processes.
    """
    final = run_dir / "checkpoints" / name
    staging = final.with_name(f".{name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, staging / "training_state.pt")
    write_json_atomic(staging / "state.json", asdict(state))
    # Old aside, new in, old removed: a stop at any point leaves one complete checkpoint.
    previous = final.with_name(f".{name}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        final.rename(previous)
    staging.rename(final)
    shutil.rmtree(previous, ignore_errors=True)
    return final


def load_checkpoint(checkpoint: Path, model, optimizer, scheduler) -> TrainState:
    """Restore model, optimiser, schedule and RNG from ``checkpoint``."""
    from safetensors.torch import load_file

    model.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=False)
    extra = torch.load(checkpoint / "training_state.pt", weights_only=True)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["torch_rng"])
    state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
    return TrainState(**state)


def export_model(run_dir: Path, model, processor, state_dict: dict | None = None) -> Path:
    """Save the model and processor in standard Hugging Face format to ``run_dir/model``."""
    target = run_dir / "model"
    staging = run_dir / ".model.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
    processor.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


# --------------------------------------------------------------------------- evaluation

Gather = Callable[[list[list[str]]], list[list[str]]]


@torch.no_grad()
def evaluate_dev(model, loader: DataLoader, processor, references: list[str],
                 device: torch.device | str = "cpu", gather: Gather | None = None) -> dict:
    """Greedy-decode the dev set; CER and WER against the normalised references.

    Args:
        gather: With several processes, each decodes its share of the batches; ``gather``
            turns this process's per-batch hypotheses into every batch's, in dev order.
    """
    model.eval()
    per_batch: list[list[str]] = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits = model(**batch).logits
        ids = logits.argmax(dim=-1).cpu()
        lengths = _output_lengths(model, batch)
        per_batch.append([processor.tokenizer.decode(row[:n].tolist())
                          for row, n in zip(ids, lengths, strict=True)])
    model.train()
    if gather is not None:
        per_batch = gather(per_batch)
    hypotheses = [h for batch in per_batch for h in batch]
    return {"dev_cer": _rate(jiwer.cer, references, hypotheses),
            "dev_wer": _rate(jiwer.wer, references, hypotheses),
            "example": {"reference": references[0], "hypothesis": hypotheses[0]}}


def _output_lengths(model, batch) -> list[int]:
    if "attention_mask" in batch:
        lengths = batch["attention_mask"].sum(-1).cpu()
    else:
        lengths = torch.full((batch["input_values"].shape[0],), batch["input_values"].shape[1])
    unwrapped = getattr(model, "module", model)
    return unwrapped._get_feat_extract_output_lengths(lengths).tolist()


def _rate(measure, references: list[str], hypotheses: list[str]) -> float:
    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return math.nan
    refs, hyps = zip(*pairs, strict=True)
    return float(measure(list(refs), list(hyps)))


# --------------------------------------------------------------------------- the loop


class _Logger:
    """Appends metric lines to metrics.jsonl and forwards them as progress events.

    Only the main process writes; the others' records are dropped (they hold the same values).
    """

    def __init__(self, run_dir: Path, on_event: EventHandler | None, enabled: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.on_event = on_event
        self.enabled = enabled

    def __call__(self, record: dict) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.on_event:
            self.on_event(record)


class _WaitClock:
    """Time spent blocked on the next batch against whole step time (fetch + compute)."""

    def __init__(self):
        self.wait = self.total = 0.0
        self.interval_wait = self.interval_total = 0.0

    def add(self, wait: float, total: float) -> None:
        self.wait += wait
        self.total += total
        self.interval_wait += wait
        self.interval_total += total

    def interval(self) -> dict:
        """Figures since the last call (for one train log line), then start a new interval."""
        figures = {"data_wait_s": round(self.interval_wait, 4),
                   "data_wait_share": _share(self.interval_wait, self.interval_total)}
        self.interval_wait = self.interval_total = 0.0
        return figures

    def overall(self) -> dict:
        return {"data_wait_s": round(self.wait, 3),
                "data_wait_share": _share(self.wait, self.total)}


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole > 0 else None


def train(
    ws: Workspace,
    config: TrainConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    max_minutes: float = 0.0,
    progress: bool = True,
    on_event: EventHandler | None = None,
) -> TrainResult:
    """Fine-tune ``config.model.name`` on the workspace; resume ``run_dir`` if asked.

    Launched with several processes (torchrun, ``accelerate launch``) it trains data-parallel:
    each global batch of ``data.max_batch_seconds`` is split across the processes, so the
    training is that of one process, faster.

    Args:
        ws: A prepared workspace with a vocabulary.
        config: The resolved run configuration.
        run_dir: Existing run to resume (with ``resume=True``); None starts a new run.
        resume: Continue from ``run_dir/checkpoints/last``.
        max_minutes: Stop (with a final evaluation) after this much training time; 0: no limit.
        progress: Show a progress bar.
        on_event: Called with every metrics record (for the UI; main process only).

    Raises:
        TrainingDiverged: the loss became non-finite; the last good checkpoint is kept.
    """
    if not ws.vocab_path.is_file():
        raise WorkbenchError(f"{ws.root} has no vocabulary yet. Run `workbench vocab -w "
                             f"{ws.root}` first.")
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    torch.manual_seed(config.run.seed)
    vocab, profile = load_vocab(ws.vocab_path), load_profile(ws.profile_path)
    data = load_training_data(ws, vocab, profile)
    sampler = DurationBatchSampler(data.train.durations, config.data.max_batch_seconds,
                                   seed=config.run.seed, shuffle=config.data.shuffle_buckets)
    schedule = resolve_schedule(config, steps_per_epoch(data.train.durations,
                                                        config.data.max_batch_seconds))
    accelerator, runtime = make_accelerator(config)
    with accelerator.main_process_first():  # one download into the cache, not one per rank
        model = build_model(config, vocab, runtime.attn_implementation)
    processor = build_processor(ws, model)
    optimizer, scheduler = build_optimizer(model, config, schedule, runtime.fused_adamw)
    run_dir = _shared_run_dir(accelerator, ws, config, run_dir)
    state = TrainState()
    if resume:
        state = _resume_state(run_dir, model, optimizer, scheduler, accelerator)
    _seed_rank(config.run.seed, accelerator.process_index, state.step)
    collator = CTCCollator(processor.feature_extractor,
                           encoder_cache=_encoder_cache(model, processor, config, runtime))
    loader = _train_loader(data, sampler, collator, accelerator, runtime)
    dev_loader = _dev_loader(data, collator, config, *_dev_split(accelerator))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    log = _Logger(run_dir, on_event, enabled=accelerator.is_main_process)
    loop = _Loop(accelerator, model, optimizer, scheduler, loader, sampler, dev_loader,
                 processor, data, config, schedule, run_dir, log, runtime)
    return loop.run(state, max_minutes=max_minutes, progress=progress)


def _shared_run_dir(accelerator: Accelerator, ws: Workspace, config: TrainConfig,
                    run_dir: Path | None) -> Path:
    """The run directory, made (and its config written) by the main process for all."""
    if accelerator.is_main_process:
        run_dir = run_dir or new_run_dir(ws, config.model.name)
        save_config(config, run_dir / "config.yaml")
    if accelerator.num_processes > 1:
        run_dir = Path(broadcast_object_list([str(run_dir) if run_dir else None])[0])
    return run_dir


def _seed_rank(seed: int, rank: int, step: int) -> None:
    """Other ranks draw their own masks and dropout (rank 0 keeps the single-process stream)."""
    if rank > 0:
        torch.manual_seed(seed + 1_000_003 * rank + step)


def _encoder_cache(model, processor, config: TrainConfig,
                   runtime: RuntimeSettings) -> EncoderCache | None:
    """On CPU a frozen feature encoder runs once per utterance, not once per epoch."""
    if runtime.device_type != "cpu" or not config.data.cache_encoder_features:
        return None
    return EncoderCache.for_model(model, processor.feature_extractor)


def _train_loader(data: TrainingData, sampler: DurationBatchSampler, collator,
                  accelerator: Accelerator, runtime: RuntimeSettings) -> DataLoader:
    """This process's shard of every global batch, with per-utterance loss weights."""
    shards = ShardedBatchSampler(sampler, data.train.durations,
                                 rank=accelerator.process_index,
                                 world_size=accelerator.num_processes)
    return DataLoader(WeightedDataset(data.train), batch_sampler=shards,
                      collate_fn=WeightedCollator(collator), num_workers=runtime.num_workers,
                      pin_memory=runtime.pin_memory,
                      persistent_workers=runtime.persistent_workers)


def _resume_state(run_dir: Path, model, optimizer, scheduler,
                  accelerator: Accelerator | None = None) -> TrainState:
    if accelerator is not None and shards_parameters(accelerator):
        raise WorkbenchError(
            "Resuming is supported for single-process and DDP runs, not under FSDP or "
            "DeepSpeed. Start a new run with model.name set to the run's model/ folder.")
    checkpoint = run_dir / "checkpoints" / LAST
    aside = run_dir / "checkpoints" / f".{LAST}.old"
    if accelerator is not None:
        accelerator.wait_for_everyone()  # nobody looks before the main process could rename
    if accelerator is None or accelerator.is_main_process:
        if not checkpoint.is_dir() and aside.is_dir():
            aside.rename(checkpoint)  # stopped between the two renames of save_checkpoint
    if accelerator is not None:
        accelerator.wait_for_everyone()
    if not checkpoint.is_dir():
        raise WorkbenchError(f"{run_dir} has no checkpoint to resume from; start a new run.")
    return load_checkpoint(checkpoint, model, optimizer, scheduler)


def _dev_split(accelerator: Accelerator) -> tuple[int, int]:
    """(rank, ranks) among which the dev batches are shared out."""
    if shards_parameters(accelerator):
        return 0, 1  # every rank runs every batch, in step with the others
    return accelerator.process_index, accelerator.num_processes


def _dev_loader(data: TrainingData, collator, config: TrainConfig, rank: int = 0,
                world_size: int = 1) -> DataLoader | None:
    """Dev batches ``rank, rank + world_size, ...`` (all of them for one process)."""
    if data.dev is None:
        return None
    sampler = DurationBatchSampler(data.dev.durations, config.data.max_batch_seconds,
                                   shuffle=False)
    # Keep the manifest order so hypotheses line up with the references.
    batches = [sorted(b) for b in sampler.batches(0)]
    order = [i for b in batches for i in b]
    data.dev_references[:] = [data.dev_references[i] for i in order]
    return DataLoader(data.dev, batch_sampler=batches[rank::world_size], collate_fn=collator)


class _Loop:
    """The training loop's state and its steps, each a short method."""

    def __init__(self, accelerator, model, optimizer, scheduler, loader, sampler, dev_loader,
                 processor, data, config, schedule, run_dir, log, runtime):
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.scheduler, self.loader, self.sampler = scheduler, loader, sampler
        self.dev_loader, self.processor, self.data = dev_loader, processor, data
        self.config, self.schedule, self.run_dir, self.log = config, schedule, run_dir, log
        self.runtime = runtime
        self.unwrapped = accelerator.unwrap_model(model)
        self.last_loss: float | None = None
        self.best: dict = {}
        self.last_eval_step = -1
        self.out_of_time = False
        self.clock = _WaitClock()
        # run.stop_at_step ends a run early while keeping the longer schedule's learning rates.
        self.last_step = min(schedule.max_steps, config.run.stop_at_step or schedule.max_steps)

    def run(self, state: TrainState, *, max_minutes: float, progress: bool) -> TrainResult:
        self._log_start(state)
        bar = tqdm(total=self.schedule.max_steps, initial=state.step, desc="Training",
                   unit="step", disable=not progress or not self.accelerator.is_main_process)
        started = time.monotonic() - state.elapsed_s
        self.limit_s = max_minutes * 60
        self.out_of_time = bool(max_minutes) and state.elapsed_s > self.limit_s
        stopped = "max_steps" if self.last_step == self.schedule.max_steps else "stop_at_step"
        self.model.train()
        while state.step < self.last_step:
            if self.out_of_time:
                stopped = "time_limit"
                break
            self._train_epoch(state, bar, started)
        bar.close()
        state.elapsed_s = time.monotonic() - started
        if self.last_eval_step != state.step:
            self._evaluate(state)
        return self._finish(state, stopped)

    def _log_start(self, state: TrainState) -> None:
        self.log({"event": "start", "step": state.step, "max_steps": self.schedule.max_steps,
                  "steps_per_epoch": self.schedule.steps_per_epoch,
                  "train_seconds": round(self.data.train_seconds, 2),
                  "world_size": self.accelerator.num_processes,
                  "distributed": str(self.accelerator.distributed_type.value),
                  "attn_implementation": getattr(self.unwrapped.config, "_attn_implementation",
                                                 None),
                  "runtime": self.runtime.to_dict()})

    def _train_epoch(self, state: TrainState, bar, started: float) -> None:
        # Resuming mid-epoch, the sampler skips the batches this epoch already served.
        self.sampler.set_epoch(state.epoch, start_batch=state.batch_in_epoch)
        batches = iter(self.loader)
        while True:
            asked = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            fetched = time.perf_counter()
            self._step(batch, state, time.monotonic() - started)
            self.clock.add(fetched - asked, time.perf_counter() - asked)
            state.batch_in_epoch += 1
            state.elapsed_s = time.monotonic() - started
            self._log_train(state)
            bar.update(1)
            bar.set_postfix(loss=f"{self.last_loss:.3f}", cer=self._best_cer_text(state))
            if state.step % self.schedule.eval_every == 0:
                self._evaluate(state)
            if state.step >= self.last_step or self.out_of_time:
                return
        state.epoch += 1
        state.batch_in_epoch = 0

    def _step(self, batch: dict, state: TrainState, elapsed_s: float) -> None:
        device = self.accelerator.device
        batch = {k: v.to(device, non_blocking=self.runtime.pin_memory) for k, v in batch.items()}
        weights, labels = batch.pop("loss_weights"), batch.pop("labels")
        with self.accelerator.autocast():
            logits = self.model(**batch).logits
        loss = weighted_ctc_loss(logits.float(), labels, logit_lengths(self.unwrapped, batch),
                                 weights, blank=self.unwrapped.config.pad_token_id,
                                 zero_infinity=bool(self.unwrapped.config.ctc_zero_infinity))
        global_loss = self._agree(loss, elapsed_s)
        if not math.isfinite(global_loss):
            self._diverged(state, global_loss)
        self.accelerator.backward(loss)
        if self.config.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        self.last_loss = global_loss

    def _agree(self, loss: torch.Tensor, elapsed_s: float) -> float:
        """The global batch's loss, and whether any process is out of time (one all-reduce).

        Each process's loss is its shard's share of the global mean times the number of
        processes, so the global loss is their mean. Deciding together keeps every process
        stopping (or diverging) at the same step.
        """
        late = float(bool(self.limit_s) and elapsed_s > self.limit_s)
        if self.accelerator.num_processes == 1:
            self.out_of_time = bool(late)
            return float(loss.detach())
        both = torch.stack([loss.detach().float(), torch.tensor(late, device=loss.device)])
        summed = self.accelerator.reduce(both, reduction="sum").cpu()
        self.out_of_time = bool(summed[1] > 0)
        return float(summed[0]) / self.accelerator.num_processes

    def _log_train(self, state: TrainState) -> None:
        if state.step % self.config.run.log_every == 0 or state.step == 1:
            self.log({"event": "train", "step": state.step, "loss": round(self.last_loss, 5),
                      "lr": self.scheduler.get_last_lr()[0], "epoch": state.epoch,
                      "elapsed_s": round(state.elapsed_s, 2), **self.clock.interval()})

    def _diverged(self, state: TrainState, value: float) -> None:
        self.log({"event": "diverged", "step": state.step + 1, "loss": str(value)})
        kept = self.run_dir / "checkpoints" / LAST
        where = (f"The last good checkpoint (step {state.step}) is in {kept}."
                 if kept.exists() else "No checkpoint had been saved yet.")
        raise TrainingDiverged(
            f"The training loss became {value} at step {state.step + 1}, so training stopped. "
            f"{where} Try a lower learning rate (optim.learning_rate="
            f"{self.config.optim.learning_rate / 3:.2g}) and resume or start again."
        )

    def _evaluate(self, state: TrainState) -> None:
        self.last_eval_step = state.step
        metrics = {"dev_cer": math.nan, "dev_wer": math.nan}
        if self.dev_loader is not None:
            metrics = evaluate_dev(self._eval_model(), self.dev_loader, self.processor,
                                   self.data.dev_references, self.accelerator.device,
                                   gather=self._gather())
        cer = metrics["dev_cer"]
        improved = not self.best or (not math.isnan(cer) and cer < state.best_cer) or (
            math.isnan(cer))
        if improved:
            state.best_cer = cer if not math.isnan(cer) else state.best_cer
            state.best_step = state.step
            self.best = {"step": state.step, **metrics}
            self._export()
        self.log({"event": "eval", "step": state.step, "elapsed_s": round(state.elapsed_s, 2),
                  "best": improved, **metrics})
        self._save(state)

    def _eval_model(self):
        """The plain model (no DDP collectives), or the wrapped one when ranks hold shards."""
        return self.model if shards_parameters(self.accelerator) else self.unwrapped

    def _gather(self) -> Gather | None:
        rank, world = _dev_split(self.accelerator)
        if world == 1:
            return None
        return lambda mine: interleave(gather_object([mine]))

    def _weights(self) -> dict | None:
        """Full model weights (collected from every rank under FSDP/DeepSpeed; all must call)."""
        if not shards_parameters(self.accelerator):
            return None
        return self.accelerator.get_state_dict(self.model)

    def _export(self) -> None:
        weights = self._weights()
        if self.accelerator.is_main_process:
            export_model(self.run_dir, self.unwrapped, self.processor, weights)

    def _save(self, state: TrainState) -> None:
        weights = self._weights()
        if self.accelerator.is_main_process:
            save_checkpoint(self.run_dir, LAST, self.unwrapped, self.optimizer, self.scheduler,
                            state, weights)
        self.accelerator.wait_for_everyone()

    def _best_cer_text(self, state: TrainState) -> str:
        return "-" if math.isinf(state.best_cer) else f"{state.best_cer:.3f}"

    def _finish(self, state: TrainState, stopped: str) -> TrainResult:
        result = TrainResult(
            run_dir=self.run_dir, steps=state.step, best_step=state.best_step,
            best_dev_cer=_finite_or_none(self.best.get("dev_cer")),
            best_dev_wer=_finite_or_none(self.best.get("dev_wer")),
            final_loss=self.last_loss, elapsed_s=round(state.elapsed_s, 2), stopped=stopped,
            **self.clock.overall(),
        )
        self.log({"event": "end", **result.to_dict()})
        if self.accelerator.is_main_process:
            write_json_atomic(self.run_dir / "result.json", result.to_dict())
        return result


def _finite_or_none(value) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def resume_run(ws: Workspace, run: str | None = None, *, overrides: dict | None = None,
               **options) -> TrainResult:
    """Continue an interrupted run (the latest one unless ``run`` names another)."""
    from workbench.config import apply_overrides

    run_dir = find_run(ws, run)
    config = load_config(run_dir / "config.yaml")
    if overrides:
        config = apply_overrides(config, overrides)
    return train(ws, config, run_dir=run_dir, resume=True, **options)
