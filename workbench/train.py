"""CTC fine-tuning: short named steps, resumable exactly, with guards and progress events.

A run lives in ``<workspace>/runs/<run-id>/``; :mod:`workbench.run` owns that folder (its
paths, state and files). What training adds to it:

- ``checkpoints/last``: weights, optimiser, schedule, loss scaler, every random generator's
  state (Python, NumPy, torch, CUDA; one set per process) and the :class:`TrainState` (step,
  position in the epoch, best dev score so far, a fingerprint of the data), so a resumed run
  continues exactly where the checkpoint was taken: its final weights are those of the run
  that was never interrupted.
- ``model/``: the best model by dev CER, replaced atomically (``workbench.fsio``).
- Dev scoring is :func:`workbench.evaluate.transcribe_and_score`, the very function
  ``workbench evaluate`` uses, on the audited dev set: the dev CER logged here is what
  ``workbench evaluate --split dev`` reports for the same model.

One training process per workspace (``workbench.run.TrainingLock``). Resuming refuses a
checkpoint that does not match the model, a data set or vocabulary that changed, and
settings that would misalign the schedule (see :data:`RESUMABLE_SETTINGS`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from workbench.adapters import check_adapter_lang, check_adapter_model, prepare_adapter_training
from workbench.audio import FRAME_RATE, SAMPLE_RATE
from workbench.audit import load_excluded_ids
from workbench.augment import Augmenter
from workbench.checkpoint import (
    TrainState,
    capture_rng,
    export_model,
    frozen_record,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    seed_everything,
)
from workbench.config import (
    Schedule,
    TrainConfig,
    apply_overrides,
    finish_config,
    finish_steps,
    flat_settings,
    load_config,
    resolve_schedule,
    save_config,
)
from workbench.cpu_memory import release_freed_memory
from workbench.data import (
    CTCCollator,
    DurationBatchSampler,
    EncoderCache,
    ManifestDataset,
    batch_pad_seconds,
    padded_durations,
    steps_per_epoch,
)
from workbench.distributed import (
    RuntimeSettings,
    ShardedBatchSampler,
    WeightedCollator,
    WeightedDataset,
    logit_lengths,
    make_accelerator,
    shards_parameters,
    weighted_ctc_loss,
)
from workbench.errors import WorkbenchError
from workbench.evaluate import scoring_set, transcribe_and_score
from workbench.fsio import disk_full_error, fault_point, is_disk_full, write_text_atomic
from workbench.laptop import check_top_settings, default_top_layers, setup_top_mode
from workbench.manifest import Utterance
from workbench.models import load_for_finetuning
from workbench.run import Run, TrainingLock, busy_error, find_run, new_run
from workbench.text import OrthographyProfile, load_profile, normalize
from workbench.vocab import PAD, encode_labels, load_vocab, make_processor, require_current_vocab
from workbench.workspace import Workspace

EventHandler = Callable[[dict], None]
# Settings a resumed run may change: they decide when to log, evaluate, save or stop, and how
# fast the machine computes, not which batches come next or the learning rate of a step.
RESUMABLE_SETTINGS = ("run.eval_every", "run.log_every", "run.threads", "run.stop_at_step",
                      "run.device", "run.precision", "data.cache_encoder_features")
# Laptop mode on a CPU hands the memory its steps freed back to the system at most this
# often: batches of many shapes otherwise leave the heap holding what no step uses (top 2
# of XLS-R's architecture: peak 2.8 GiB, 2.4 at this period, 2.3 after every step). Each
# hand-back costs the next step its page faults: after every one of demo-base's 40 ms
# steps the run took a third longer (bench/RESULTS.md, issue 15).
TRIM_EVERY_S = 0.5


class TrainingDiverged(WorkbenchError):
    """The loss became NaN or infinite."""


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
    """The training set, the audited dev set, and the facts the schedule needs."""

    train: ManifestDataset
    dev: list[Utterance]
    dev_references: list[str]
    train_seconds: float
    fingerprint: str
    pseudo_count: int = 0  # pseudo-labelled utterances at the end of ``train``


# --------------------------------------------------------------------------- data


def load_training_data(ws: Workspace, vocab: dict[str, int], profile: OrthographyProfile,
                       *, pseudolabels: str = "", pseudo_weight: float = 1.0) -> TrainingData:
    """Train utterances the audit kept (and, with ``pseudolabels``, that pseudo-label set's
    utterances at loss weight ``pseudo_weight``), and the dev set as evaluation scores it."""
    ws.require_prepared()
    excluded = load_excluded_ids(ws)
    train = [u for u in ws.read_split("train") if u.id not in excluded]
    if not train:
        raise WorkbenchError(
            f"No training utterances are left after the audit (see {ws.audit_path.name}). "
            "Fix or add data and run `workbench prepare` again."
        )
    labels = [encode_labels(u.text, vocab, profile) for u in train]
    weights, transcribed = [1.0] * len(train), len(train)
    if pseudolabels:
        from workbench.pseudolabel import read_pseudolabels

        for utterance in read_pseudolabels(ws, pseudolabels):
            ids = encode_labels(utterance.text, vocab, profile)
            if ids:
                train.append(utterance)
                labels.append(ids)
                weights.append(pseudo_weight)
    dev = scoring_set(ws, "dev", required=False).utterances
    return TrainingData(
        train=ManifestDataset(train, ws.root, labels, weights=weights),
        dev=dev,
        dev_references=[normalize(u.text, profile) for u in dev],
        train_seconds=sum(u.duration for u in train),
        fingerprint=data_fingerprint(train, labels, vocab, weights),
        pseudo_count=len(train) - transcribed,
    )


def data_fingerprint(train: list[Utterance], labels: list[list[int]],
                     vocab: dict[str, int], weights: list[float] | None = None) -> str:
    """What a resumed run must find unchanged: utterances, durations, labels, vocabulary
    (and loss weights other than 1)."""
    digest = hashlib.sha1(json.dumps(vocab, sort_keys=True).encode("utf-8"))
    for index, (utterance, ids) in enumerate(zip(train, labels, strict=True)):
        weight = weights[index] if weights else 1.0
        extra = f"\0{weight}" if weight != 1.0 else ""
        digest.update(f"{utterance.id}\0{utterance.duration}\0{ids}{extra}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- model and optimiser


def build_model(config: TrainConfig, vocab: dict[str, int], attn_implementation: str | None = None,
                *, reset_head: bool = True):
    """The CTC model with a fresh head sized to the vocabulary (``reset_head`` False: the
    checkpoint's own head where it fits, as laptop mode's finish continues one)."""
    settings = asdict(config.model)
    model = load_for_finetuning(config.model.name, vocab_size=len(vocab),
                                pad_token_id=vocab[PAD], settings=settings,
                                attn_implementation=attn_implementation,
                                reset_head=reset_head)
    if config.model.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if config.model.mode == "adapter":  # the base frozen: adapters and head train
        prepare_adapter_training(model, config.model.name)
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


# --------------------------------------------------------------------------- evaluation


def evaluate_dev(model, processor, ws: Workspace, data: TrainingData,
                 device: torch.device | str = "cpu", recognizer=None) -> dict:
    """Score the audited dev set with ``model``, exactly as ``workbench evaluate`` would
    (through ``recognizer`` when given: laptop mode's, which keeps the dev clips' states).

    Returns:
        dev_cer, dev_wer, dev_ger, whether the WER means anything for this script
        (``dev_wer_meaningful``) and an example reference/hypothesis pair.
    """
    from workbench.recognizer import Recognizer

    was_training = model.training
    model.eval()
    try:
        recognizer = recognizer or Recognizer(model, processor, torch.device(device))
        scored = transcribe_and_score(recognizer, ws, data.dev, data.dev_references,
                                      progress=False)
    finally:
        model.train(was_training)
    example = scored.utterances[-1] if scored.utterances else None
    return {"dev_cer": scored.rates["cer"], "dev_wer": scored.rates["wer"],
            "dev_ger": scored.rates.get("ger", math.nan),
            "dev_wer_meaningful": bool(scored.rates.get("wer_meaningful", True)),
            "example": {"reference": example.reference, "hypothesis": example.hypothesis}
            if example else {}}


# --------------------------------------------------------------------------- the loop


class _Logger:
    """Appends metric lines to metrics.jsonl and forwards them as progress events.

    Only the main process writes; the others' records are dropped (they hold the same values).
    """

    def __init__(self, run: Run, on_event: EventHandler | None, enabled: bool = True):
        self.run = run
        self.on_event = on_event
        self.enabled = enabled

    def __call__(self, record: dict) -> None:
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        try:
            self.run.append_metrics(record)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(self.run.metrics_path, "logging the training",
                                      then="resume the run") from err
            raise
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
        ws: A prepared workspace with a current vocabulary.
        config: The resolved run configuration.
        run_dir: Existing run to resume (with ``resume=True``); None starts a new run.
        resume: Continue from ``run_dir/checkpoints/last``.
        max_minutes: Stop (with a final evaluation) after this much training time; 0: no limit.
        progress: Show a progress bar.
        on_event: Called with every metrics record (for the UI; main process only).

    Raises:
        TrainingDiverged: the loss became non-finite; the last good checkpoint is kept.
        DiskFullError: the disk filled up; the last complete checkpoint is kept.
        WorkbenchError: another training runs in this workspace, the vocabulary is out of
            date, or the run cannot be resumed as asked.
    """
    require_current_vocab(ws)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    accelerator, runtime = make_accelerator(config)
    lock = _take_training_lock(accelerator, ws, run_dir.name if run_dir else "")
    try:
        return _train(ws, config, accelerator, runtime, lock, run_dir=run_dir, resume=resume,
                      max_minutes=max_minutes, progress=progress, on_event=on_event)
    finally:
        if lock is not None:
            lock.release()


def _train(ws: Workspace, config: TrainConfig, accelerator: Accelerator,
           runtime: RuntimeSettings, lock: TrainingLock | None, *, run_dir: Path | None,
           resume: bool, max_minutes: float, progress: bool,
           on_event: EventHandler | None) -> TrainResult:
    """The run: one stage, or laptop mode's top stage and then its full-fine-tune finish."""
    finishes = config.model.mode == "top" and config.model.finish_epochs > 0
    options = {"max_minutes": max_minutes, "progress": progress, "on_event": on_event}
    if finishes and resume and run_dir is not None and finish_marker(Run(run_dir)).is_file():
        return _finish_stage(ws, config, accelerator, runtime, Run(run_dir), resume=True,
                             **options)
    result = _stage(ws, config, accelerator, runtime, lock, run_dir=run_dir, resume=resume,
                    final=not finishes, **options)
    if not finishes or result.stopped != "max_steps":
        return result
    run = Run(result.run_dir)
    if accelerator.is_main_process:
        write_text_atomic(finish_marker(run), json.dumps(
            {**result.to_dict(), "metrics_bytes": run.metrics_size()}))
    accelerator.wait_for_everyone()
    release_freed_memory()  # the top stage's model, cache and optimizer are gone
    return _finish_stage(ws, config, accelerator, runtime, run, resume=False, **options)


def _stage(ws: Workspace, config: TrainConfig, accelerator: Accelerator,
           runtime: RuntimeSettings, lock: TrainingLock | None, *, run_dir: Path | None,
           resume: bool, max_minutes: float, progress: bool, on_event: EventHandler | None,
           final: bool) -> TrainResult:
    seed_everything(config.run.seed)
    vocab, profile = load_vocab(ws.vocab_path), load_profile(ws.profile_path)
    data = load_training_data(ws, vocab, profile, pseudolabels=config.data.pseudolabels,
                              pseudo_weight=config.data.pseudo_weight)
    if not 0.0 <= config.data.augment <= 1.0:
        raise WorkbenchError(f"data.augment={config.data.augment} is a probability: give a "
                             "value from 0 (off) to 1, for example data.augment=0.3.")
    _check_mode(config)
    augmenter = (Augmenter(config.data.augment, seed=config.run.seed)
                 if config.data.augment > 0 else None)
    if config.model.mode == "top":  # cached states, and perturbed copies taken in turn
        data.train.read_audio = False
        data.train.views = config.data.augment_views if augmenter else 1
    else:
        data.train.augmenter = augmenter
    with accelerator.main_process_first():  # one download into the cache, not one per rank
        model = build_model(config, vocab, runtime.attn_implementation)
    processor = build_processor(ws, model)
    pad_s = _pad_seconds(config, runtime, processor)
    # Saved resolved: a run resumed on another device keeps the batches it started with.
    config = replace(config, data=replace(config.data, pad_to_seconds=pad_s))
    sampler, per_epoch = _batches(config, data, pad_s, config.run.seed)
    schedule = resolve_schedule(config, per_epoch)
    laptop = _laptop_mode(accelerator, model, processor, ws, config, data, augmenter,
                          progress) if config.model.mode == "top" else None
    optimizer, scheduler = build_optimizer(model, config, schedule, runtime.fused_adamw)
    run = _shared_run(accelerator, ws, config, run_dir, lock)
    collator = laptop.collator(round(pad_s * FRAME_RATE)) if laptop else CTCCollator(
        processor.feature_extractor, pad_to_multiple_of=round(pad_s * SAMPLE_RATE) or None,
        encoder_cache=_encoder_cache(model, processor, config, runtime))
    loader = _train_loader(data, sampler, collator, accelerator, runtime, config.run.seed)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = TrainState(data=data.fingerprint)
    if resume:
        state = _resume_state(run, accelerator.unwrap_model(model), optimizer, scheduler,
                              accelerator, data)
    elif accelerator.process_index > 0:
        seed_everything(config.run.seed, accelerator.process_index)
    log = _Logger(run, on_event, enabled=accelerator.is_main_process)
    if laptop:
        computed = [laptop.report.computed]
        if accelerator.num_processes > 1:
            computed = gather_object(computed)
        log({**laptop.record(), "computed_by_rank": computed})
    loop = _Loop(accelerator, model, optimizer, scheduler, loader, sampler, processor, data,
                 config, schedule, run, ws, log, runtime)
    loop.trim_memory = laptop is not None and accelerator.device.type == "cpu"
    loop.final = final
    if laptop and not shards_parameters(accelerator):
        loop.dev_recognizer = laptop.dev_recognizer(loop.unwrapped, processor,
                                                    accelerator.device)
    return loop.run(state, max_minutes=max_minutes, progress=progress)


# --------------------------------------------------------------------------- laptop mode's finish

FINISH_MARKER = "finish.json"


def finish_marker(run: Run) -> Path:
    """Written when laptop mode's top stage has trained its schedule (its result): from then
    on the run is in its finish stage, and a resume continues that."""
    return run.root / FINISH_MARKER


def _finish_stage(ws: Workspace, config: TrainConfig, accelerator: Accelerator,
                  runtime: RuntimeSettings, run: Run, *, resume: bool, max_minutes: float,
                  progress: bool, on_event: EventHandler | None) -> TrainResult:
    """``model.finish_epochs`` of a full fine-tune from the top stage's best model, its head
    kept, in the same run: steps, elapsed time and the best dev score carry on from the top
    stage, and the model in ``model/`` is replaced only by a better one."""
    top = json.loads(finish_marker(run).read_text(encoding="utf-8"))
    seed_everything(config.run.seed + 1)
    finish = finish_config(config, str(run.model_dir))
    vocab, profile = load_vocab(ws.vocab_path), load_profile(ws.profile_path)
    data = load_training_data(ws, vocab, profile, pseudolabels=config.data.pseudolabels,
                              pseudo_weight=config.data.pseudo_weight)
    if config.data.augment > 0:
        data.train.augmenter = Augmenter(config.data.augment, seed=config.run.seed + 1)
    with accelerator.main_process_first():
        model = build_model(finish, vocab, runtime.attn_implementation, reset_head=False)
    processor = build_processor(ws, model)
    pad_s = _pad_seconds(config, runtime, processor)
    finish = replace(finish, data=replace(finish.data, pad_to_seconds=pad_s))
    sampler, per_epoch = _batches(config, data, pad_s, config.run.seed + 1)
    own = resolve_schedule(finish, per_epoch)
    # Steps carry on from the top stage, evaluated as often (about 10 times in the run).
    every = resolve_schedule(config, own.steps_per_epoch).eval_every
    schedule = replace(own, max_steps=top["steps"] + own.max_steps, eval_every=every)
    optimizer, scheduler = build_optimizer(model, finish, own, runtime.fused_adamw)
    collator = CTCCollator(processor.feature_extractor,
                           pad_to_multiple_of=round(pad_s * SAMPLE_RATE) or None,
                           encoder_cache=_encoder_cache(model, processor, finish, runtime))
    loader = _train_loader(data, sampler, collator, accelerator, runtime, config.run.seed + 1)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if resume and _checkpoint_step(run) > top["steps"]:
        state = _resume_state(run, accelerator.unwrap_model(model), optimizer, scheduler,
                              accelerator, data)
    else:  # a fresh finish; a resumed one logs again what it had logged before its kill
        if resume and accelerator.is_main_process:
            run.truncate_metrics(int(top.get("metrics_bytes", run.metrics_size())))
        best = top.get("best_dev_cer")
        state = TrainState(step=top["steps"], best_step=top.get("best_step", 0),
                           best_cer=math.inf if best is None else best,
                           best_wer=top.get("best_dev_wer") or math.nan,
                           elapsed_s=top.get("elapsed_s", 0.0), data=data.fingerprint)
    log = _Logger(run, on_event, enabled=accelerator.is_main_process)
    loop = _Loop(accelerator, model, optimizer, scheduler, loader, sampler, processor, data,
                 finish, schedule, run, ws, log, runtime)
    loop.stage = "finish"
    return loop.run(state, max_minutes=max_minutes, progress=progress)


def _checkpoint_step(run: Run) -> int:
    """The step of the run's last checkpoint (0: none, or unreadable)."""
    try:
        state = json.loads((run.last_checkpoint / "state.json").read_text(encoding="utf-8"))
        return int(state.get("step", 0))
    except (OSError, ValueError):
        return 0


def _check_mode(config: TrainConfig) -> None:
    """Refuse an unknown mode, or settings a mode cannot run with, before any work."""
    from workbench.config import MODES

    if config.model.mode not in MODES:
        raise WorkbenchError(f"model.mode={config.model.mode!r}: choose one of "
                             f"{', '.join(MODES)}.")
    if config.model.mode == "adapter":  # refused before any weights load
        check_adapter_lang(config.model.adapter_lang)
        check_adapter_model(config.model.name)
        return
    if config.model.mode == "top":  # laptop mode: workbench/laptop.py
        check_top_settings(config)


def _take_training_lock(accelerator: Accelerator, ws: Workspace,
                        run_name: str) -> TrainingLock | None:
    """The main process takes the workspace's training lock; every process learns if it got it.

    Raises:
        WorkbenchError: Another process is training in this workspace.
    """
    lock, refused = None, ""
    if accelerator.is_main_process:
        try:
            lock = TrainingLock.acquire(ws, run_name)
        except WorkbenchError as err:
            refused = str(err)
    if accelerator.num_processes > 1:
        refused = broadcast_object_list([refused])[0]
    if refused:
        raise WorkbenchError(refused) if lock is None else busy_error(ws)
    return lock


def _shared_run(accelerator: Accelerator, ws: Workspace, config: TrainConfig,
                run_dir: Path | None, lock: TrainingLock | None) -> Run:
    """The run folder, made (and its config written) by the main process for all."""
    if accelerator.is_main_process:
        run = Run(run_dir) if run_dir else new_run(ws, config.model.name)
        save_config(config, run.config_path)
        if lock is not None:
            lock.name_run(run.name)
        run_dir = run.root
    if accelerator.num_processes > 1:
        run_dir = Path(broadcast_object_list([str(run_dir) if run_dir else None])[0])
    return Run(run_dir)


def _laptop_mode(accelerator: Accelerator, model, processor, ws: Workspace,
                 config: TrainConfig, data: TrainingData, augmenter: Augmenter | None,
                 progress: bool):
    """Laptop mode's cache and patched model. The first process computes the missing
    states; the others then find its files (on a shared workspace) and only read them."""
    with accelerator.main_process_first():
        return setup_top_mode(model, processor, ws, config, data.train.utterances,
                              device=accelerator.device, augmenter=augmenter,
                              progress=progress and accelerator.is_main_process)


def _pad_seconds(config: TrainConfig, runtime: RuntimeSettings, processor) -> float:
    """The multiple each batch's audio is padded to on this device (``data.pad_to_seconds``)."""
    masked = bool(getattr(processor.feature_extractor, "return_attention_mask", False))
    return batch_pad_seconds(config.data.pad_to_seconds, runtime.device_type, masked)


def _batches(config: TrainConfig, data: TrainingData, pad_s: float,
             seed: int) -> tuple[DurationBatchSampler, int]:
    """The epochs' batch sampler and its steps per epoch, each clip counted padded to
    ``pad_s`` seconds so that padded batches stay within ``data.max_batch_seconds``."""
    durations = padded_durations(data.train.durations, pad_s)
    sampler = DurationBatchSampler(durations, config.data.max_batch_seconds, seed=seed,
                                   shuffle=config.data.shuffle_buckets)
    return sampler, steps_per_epoch(durations, config.data.max_batch_seconds)


def _encoder_cache(model, processor, config: TrainConfig,
                   runtime: RuntimeSettings) -> EncoderCache | None:
    """On CPU a frozen feature encoder runs once per utterance, not once per epoch."""
    if (runtime.device_type != "cpu" or not config.data.cache_encoder_features
            or config.data.augment > 0):  # augmented audio changes every epoch
        return None
    return EncoderCache.for_model(model, processor.feature_extractor)


def _train_loader(data: TrainingData, sampler: DurationBatchSampler, collator,
                  accelerator: Accelerator, runtime: RuntimeSettings, seed: int) -> DataLoader:
    """This process's shard of every global batch, with per-utterance loss weights."""
    shards = ShardedBatchSampler(sampler, data.train.durations,
                                 rank=accelerator.process_index,
                                 world_size=accelerator.num_processes)
    # Its own generator: starting an epoch's iterator then draws nothing from the global one
    # (which dropout and layerdrop use), so a resumed run's draws match the uninterrupted run's.
    return DataLoader(WeightedDataset(data.train), batch_sampler=shards,
                      collate_fn=WeightedCollator(collator), num_workers=runtime.num_workers,
                      pin_memory=runtime.pin_memory,
                      persistent_workers=runtime.persistent_workers,
                      generator=torch.Generator().manual_seed(seed))


def _resume_state(run: Run, model, optimizer, scheduler, accelerator: Accelerator,
                  data: TrainingData) -> TrainState:
    """Restore the checkpoint, the generators of this process, and refuse changed data."""
    if shards_parameters(accelerator):
        raise WorkbenchError(
            "Resuming is supported for single-process and DDP runs, not under FSDP or "
            "DeepSpeed. Start a new run with model.name set to the run's model/ folder.")
    accelerator.wait_for_everyone()  # nobody looks before the main process could recover
    if accelerator.is_main_process:
        run.recover()
    accelerator.wait_for_everyone()
    if not run.has_checkpoint:
        raise WorkbenchError(f"Run {run.name} has no checkpoint to resume from (one is saved "
                             "at every dev evaluation); start a new run.")
    state, rng = load_checkpoint(run, model, optimizer, scheduler, accelerator.scaler)
    if state.data and state.data != data.fingerprint:
        raise WorkbenchError(
            f"The training data or the vocabulary changed since run {run.name} started "
            f"(now {len(data.train)} training utterances), so its checkpoint no longer lines "
            "up with the batches and labels. Start a new run (or restore the data).")
    if len(rng) == accelerator.num_processes:
        restore_rng(rng[accelerator.process_index])
    else:  # resumed with another number of processes: each draws afresh, reproducibly
        seed_everything(hash((state.step, accelerator.process_index)) % 2**31)
    if accelerator.is_main_process:
        run.truncate_metrics(state.metrics_bytes)
    return state


class _Loop:
    """The training loop's state and its steps, each a short method."""

    def __init__(self, accelerator, model, optimizer, scheduler, loader, sampler, processor,
                 data, config, schedule, run, ws, log, runtime):
        self.accelerator, self.model, self.optimizer = accelerator, model, optimizer
        self.scheduler, self.loader, self.sampler = scheduler, loader, sampler
        self.processor, self.data, self.ws = processor, data, ws
        self.config, self.schedule, self.run_folder, self.log = config, schedule, run, log
        self.runtime = runtime
        self.unwrapped = accelerator.unwrap_model(model)
        self.dev_recognizer = None  # laptop mode's, set after construction
        self.trim_memory = False  # laptop mode on a CPU: hand freed memory back (TRIM_EVERY_S)
        self.last_trim = -math.inf  # the first step trims (monotonic time starts at boot)
        self.last_loss: float | None = None
        self.last_eval_step = -1
        self.out_of_time = False
        self.stage = ""  # "finish": laptop mode's finish stage (in its records)
        self.final = True  # False: a stage another follows (it writes no result)
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
                  "dev_utterances": len(self.data.dev),
                  "world_size": self.accelerator.num_processes,
                  "distributed": str(self.accelerator.distributed_type.value),
                  "attn_implementation": getattr(self.unwrapped.config, "_attn_implementation",
                                                 None),
                  "runtime": self.runtime.to_dict(),
                  "pad_to_seconds": self.config.data.pad_to_seconds, **self._pseudo_record(),
                  **({"stage": self.stage} if self.stage else {}),
                  **self._finish_record()})

    def _finish_record(self) -> dict:
        """In laptop mode's top stage: the finish stage's steps that follow it."""
        config = self.config
        if not finish_steps(config, self.schedule.steps_per_epoch):
            return {}
        layers = self.unwrapped.config.num_hidden_layers
        trained = config.model.top_layers or default_top_layers(layers)
        return {"finish_steps": finish_steps(config, self.schedule.steps_per_epoch),
                "finish_step_ratio": round(layers / max(1, trained), 2)}

    def _pseudo_record(self) -> dict:
        name = self.config.data.pseudolabels
        if not name:
            return {}
        return {"pseudolabels": {"name": name, "utterances": self.data.pseudo_count,
                                 "weight": self.config.data.pseudo_weight}}

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
            bar.set_postfix(loss=f"{self.last_loss:.3f}", cer=_cer_text(state.best_cer))
            fault_point("train.step")
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
        if state.step < min(self.config.optim.head_only_steps, self.schedule.max_steps // 4):
            self._head_only()
        if self.config.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.trim_memory and time.monotonic() - self.last_trim >= TRIM_EVERY_S:
            release_freed_memory()
            self.last_trim = time.monotonic()
        state.step += 1
        self.last_loss = global_loss

    def _head_only(self) -> None:
        """Drop every gradient but the CTC head's: AdamW then leaves those weights (and their
        moments) untouched this step, as if they were frozen."""
        for name, param in self.unwrapped.named_parameters():
            if not name.startswith("lm_head."):
                param.grad = None

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
        where = (f"The last good checkpoint (step {state.step}) is kept in run "
                 f"{self.run_folder.name}." if self.run_folder.has_checkpoint
                 else "No checkpoint had been saved yet.")
        raise TrainingDiverged(
            f"The training loss became {value} at step {state.step + 1}, so training stopped. "
            f"{where} Try a lower learning rate (optim.learning_rate="
            f"{self.config.optim.learning_rate / 3:.2g}) and start again."
        )

    def _evaluate(self, state: TrainState) -> None:
        """Score the dev set; export the model when it is the best so far; save a checkpoint."""
        self.last_eval_step = state.step
        metrics = self._dev_metrics()
        cer = metrics["dev_cer"]
        # Without a dev set the latest model is kept; with one, only a better one replaces it.
        improved = math.isnan(cer) or cer < state.best_cer
        if improved:
            state.best_cer = state.best_cer if math.isnan(cer) else cer
            state.best_wer = metrics["dev_wer"]
            state.best_step = state.step
            self._export()
        self.log({"event": "eval", "step": state.step, "elapsed_s": round(state.elapsed_s, 2),
                  "best": improved, **metrics})
        self._save(state)

    def _dev_metrics(self) -> dict:
        """Dev scores, the same on every process (computed where the model can run alone)."""
        metrics = {"dev_cer": math.nan, "dev_wer": math.nan, "dev_ger": math.nan}
        if self.data.dev:
            sharded = shards_parameters(self.accelerator)
            if sharded or self.accelerator.is_main_process:
                metrics = evaluate_dev(self.model if sharded else self.unwrapped,
                                       self.processor, self.ws, self.data,
                                       self.accelerator.device, self.dev_recognizer)
        if self.accelerator.num_processes > 1:
            metrics = broadcast_object_list([metrics])[0]
        return metrics

    def _weights(self) -> dict | None:
        """Full model weights (collected from every rank under FSDP/DeepSpeed; all must call)."""
        if not shards_parameters(self.accelerator):
            return None
        return self.accelerator.get_state_dict(self.model)

    def _export(self) -> None:
        weights = self._weights()
        if self.accelerator.is_main_process:
            export_model(self.run_folder, self.unwrapped, self.processor, weights,
                         adapter_lang=self.config.model.adapter_lang
                         if self.config.model.mode == "adapter" else "")
        self.accelerator.wait_for_everyone()

    def _save(self, state: TrainState) -> None:
        weights = self._weights()
        rng = [capture_rng()]
        if self.accelerator.num_processes > 1:
            rng = gather_object(rng)
        if self.accelerator.is_main_process:
            state.metrics_bytes = self.run_folder.metrics_size()
            save_checkpoint(self.run_folder,
                            weights if weights is not None else self.unwrapped.state_dict(),
                            self.optimizer, self.scheduler, self.accelerator.scaler, state, rng,
                            frozen=frozen_record(self.unwrapped))
        self.accelerator.wait_for_everyone()

    def _finish(self, state: TrainState, stopped: str) -> TrainResult:
        result = TrainResult(
            run_dir=self.run_folder.root, steps=state.step, best_step=state.best_step,
            best_dev_cer=_finite_or_none(state.best_cer),
            best_dev_wer=_finite_or_none(state.best_wer) if math.isfinite(state.best_cer)
            else None,
            final_loss=self.last_loss, elapsed_s=round(state.elapsed_s, 2), stopped=stopped,
            **self.clock.overall(),
        )
        if not self.final and stopped == "max_steps":  # the run goes on in its next stage
            self.log({"event": "stage_end", **result.to_dict()})
            return result
        self.log({"event": "end", **result.to_dict()})
        if self.accelerator.is_main_process:
            self.run_folder.write_result(result.to_dict())
        return result


def _cer_text(best_cer: float) -> str:
    return "-" if math.isinf(best_cer) else f"{best_cer:.3f}"


def _finite_or_none(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def resume_run(ws: Workspace, run: str | None = None, *, overrides: dict | None = None,
               **options) -> TrainResult:
    """Continue an interrupted run (the latest one unless ``run`` names another).

    Args:
        ws: The workspace.
        run: Run name or folder; None: the latest run.
        overrides: Settings to change; only :data:`RESUMABLE_SETTINGS` may differ from the
            run's own.
        **options: As for :func:`train` (max_minutes, progress, on_event).

    Raises:
        WorkbenchError: The run trained its whole schedule, is being trained, or a setting
            outside :data:`RESUMABLE_SETTINGS` would change.
    """
    found = find_run(ws, run)
    if found.completed:
        raise WorkbenchError(f"Run {found.name} has trained its whole schedule; there is "
                             "nothing to resume. Start a new run to train again.")
    config = load_config(found.config_path)
    if overrides:
        config = apply_overrides(config, overrides)
        refuse_unresumable_changes(load_config(found.config_path), config, found.name)
    return train(ws, config, run_dir=found.root, resume=True, **options)


def refuse_unresumable_changes(saved: TrainConfig, wanted: TrainConfig, run: str) -> None:
    """Refuse settings that would misalign a resumed run's batches or schedule.

    Raises:
        WorkbenchError: A setting outside :data:`RESUMABLE_SETTINGS` differs; the message
            names it with both values.
    """
    before, after = flat_settings(asdict(saved)), flat_settings(asdict(wanted))
    changed = [key for key in after if after[key] != before.get(key)
               and key not in RESUMABLE_SETTINGS]
    if changed:
        what = ", ".join(f"{k}={after[k]!r} (the run has {before.get(k)!r})" for k in changed)
        raise WorkbenchError(
            f"Run {run} cannot be resumed with {what}: it would no longer follow the batches "
            "and learning-rate schedule its checkpoint is part of. Settings that may change "
            f"on resume: {', '.join(RESUMABLE_SETTINGS)} (and --max-minutes). Start a new run "
            "to train with other settings.")
