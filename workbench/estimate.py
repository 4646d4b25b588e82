"""How long a training run will take here, and how much memory it needs, before it starts.

A *measurement* times real training steps of the model on this machine (forward, backward and
the AdamW step on batches of the workspace's audio at the run's ``data.max_batch_seconds``,
after one warm-up step, with the run's thread count), one pass of dev scoring, and the
process's peak memory. It runs in a child process (``python -m workbench.estimate_child``) so
that the child's own peak RSS is the training's, and is cached per model and machine
(:func:`cache_path`). An *estimate* applies the run's schedule to a measurement:

- full: ``steps x step(b) + encoder once per clip + evaluations``, where ``step(b)`` is
  ``(forward + backward) x b / b_measured + optimizer`` for the mean padded seconds ``b`` of
  the run's batches (the feature encoder is cached on CPU, so it runs once per clip).
- top (laptop mode): one forward pass of the lower layers per clip (the cache) plus steps of
  the top layers' forward and backward, split from the measured full step by the layers'
  share of the parameters (time: a model-based estimate). Its memory is measured: the
  child counts what each top layer's step keeps for backward (saved-tensor hooks) and runs
  laptop mode's steps for real on the largest batches before the full ones.
- adapter: measured like full when the model has adapters (base frozen); from a full
  measurement otherwise: the whole forward, the backward through every layer's activations
  (half a full backward: no weight gradients) and an optimizer over the adapters only.

Without a cached measurement, :func:`rough_estimate` scales a reference measurement (XLS-R
300M on 2 cores) by model size, batch seconds and threads: instant, and marked as rough.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from workbench.config import (
    MODES,
    TrainConfig,
    config_for_mode,
    finish_steps,
    resolve_schedule,
    save_config,
)
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

HOUR_S = 3600.0
# Bumped when what a measurement means changes (2: base_mb counts the weights resident;
# 3: laptop mode's memory measured, the full steps' peak read from their own high-water mark).
MEASUREMENT_VERSION = 3
FRAMES_PER_S = 50  # wav2vec 2.0 frames per second of audio
STATE_BYTES = 12  # per trainable parameter: its gradient and AdamW's two moments (fp32)
BACKWARD_ACTIVATIONS_SHARE = 0.5  # of a full backward: activation gradients, no weight ones
SAVE_BYTES_PER_S = 300e6  # writing a checkpoint (weights + AdamW state) at each evaluation
# One step of XLS-R 300M (315M parameters) over 16 s of audio took 80-110 s on 2 cores.
REFERENCE_STEP = (95.0, 315e6, 16.0, 2)  # seconds, parameters, batch seconds, threads
CACHE_ENV = "WORKBENCH_CACHE"


@dataclass(frozen=True)
class Measurement:
    """Timed training steps of one model on this machine (seconds are per timed batch)."""

    key: str
    model: str
    params: int
    trainable: int
    layers: int
    layer_share: float  # transformer layers' share of the parameters above the encoder
    adapters: int  # adapter parameters (0: the model has none)
    batch_seconds: float  # mean padded audio seconds of the timed batches
    steps: int
    forward_s: float
    backward_s: float
    optimizer_s: float
    data_s: float  # reading and collating a batch whose encoder features are cached
    encoder_s_per_s: float  # the frozen feature encoder, per second of audio (once per clip)
    inference_s_per_s: float  # dev scoring, per second of audio
    base_mb: float  # RSS with the model and data loaded, before the first step
    peak_mb: float  # RSS peak over the steps and the dev scoring
    encoder_cache_mb: float  # encoder features cached when the peak was taken
    encoder_mb_per_s: float  # encoder features cached per second of audio
    device: str
    threads: int
    mode: str = "full"  # what the timed steps trained ("adapter": the base frozen)
    hidden_size: int = 0  # the transformer's width (laptop mode caches states of it)
    # Laptop mode's step on the largest timed batch: MiB its autograd graph holds per top
    # layer and for the rest (final norm, head, loss); 0: not probed (derived by share).
    top_layer_mb: float = 0.0
    top_rest_mb: float = 0.0
    top_probe_seconds: float = 0.0  # padded audio seconds of the probed batch
    # Laptop mode's steps run for real on the largest batches (the probed one first): MiB
    # the process grew by, with top_step_layers trained; 0: not measured.
    top_step_mb: float = 0.0
    top_step_layers: int = 0


@dataclass(frozen=True)
class Estimate:
    """What a run of one mode will cost here."""

    mode: str
    steps: int
    seconds: float
    peak_mb: float
    basis: str  # measured, model (derived from a full measurement), rough (model size only)
    step_s: float
    detail: str = ""

    @property
    def fits_hour(self) -> bool:
        return self.seconds <= HOUR_S


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """What the run will do, from its configuration and the workspace's audio."""

    steps: int
    batch_seconds: float  # mean padded seconds per batch
    train_seconds: float
    dev_seconds: float
    evaluations: int
    encoded_seconds: float  # audio the steps reach (all of it once a whole epoch is run)
    largest_batch_seconds: float = 0.0  # the largest padded batch (0: the mean's)
    finish_steps: int = 0  # laptop mode's finish stage: full steps after the top stage
    finish_evaluations: int = 0  # dev evaluations within the finish stage
    finish_encoded_seconds: float = 0.0  # audio the finish stage's steps reach

    @property
    def peak_batch_seconds(self) -> float:
        """The padded batch that sets the peak memory."""
        return self.largest_batch_seconds or self.batch_seconds


def workload(ws: Workspace, config: TrainConfig) -> Workload:
    """The run's step count, mean batch and audio amounts (as the trainer derives them)."""
    return workload_for(*clip_durations(ws, config), config)


def clip_durations(ws: Workspace, config: TrainConfig) -> tuple[list[float], list[float]]:
    """The durations of the clips a run trains on and of the dev clips it scores."""
    from workbench.audit import load_excluded_ids

    excluded = load_excluded_ids(ws)
    durations = [u.duration for u in training_utterances(ws, config, excluded)]
    if not durations:
        raise WorkbenchError("No training utterances to estimate a run for; prepare data first.")
    dev = ws.read_split("dev") if ws.manifest_path("dev").exists() else []
    return durations, [u.duration for u in dev if u.id not in excluded]


def training_utterances(ws: Workspace, config: TrainConfig,
                        excluded: set[str] | None = None) -> list:
    """The clips a run trains on: the train split less what the audit set aside
    (``excluded``, read here when not given), and the pseudo-label set it includes."""
    from workbench.audit import load_excluded_ids

    excluded = load_excluded_ids(ws) if excluded is None else excluded
    utterances = [u for u in ws.read_split("train") if u.id not in excluded]
    if config.data.pseudolabels:
        from workbench.pseudolabel import read_pseudolabels

        utterances += read_pseudolabels(ws, config.data.pseudolabels)
    return utterances


def cached_states_share(ws: Workspace, config: TrainConfig, cut: int) -> float:
    """Share of the training audio whose laptop-mode states an earlier top run of this model
    cut at ``cut`` already cached in the workspace (the run computes only the rest).

    Matched by the model's name and the cut (a cache folder records both); a model whose
    weights changed under the same name is recomputed by the run, not by this estimate.
    """
    from workbench.laptop import cache_root
    from workbench.laptop_cache import clip_key
    from workbench.models import resolve_model_name

    names = {config.model.name, str(resolve_model_name(config.model.name))}
    utterances = training_utterances(ws, config)
    total = sum(u.duration for u in utterances)
    best = 0.0
    for info_path in cache_root(ws.root).glob("*/info.json"):
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("cut") != cut or info.get("model") not in names or not total:
            continue
        held = {p.stem for p in info_path.parent.glob("*.npy")}
        found = sum(u.duration for u in utterances if clip_key(u, ws.root) in held)
        best = max(best, found / total)
    return best


def workload_for(durations: list[float], dev_durations: list[float],
                 config: TrainConfig) -> Workload:
    """:func:`workload` for given train and dev clip durations (on a GPU each counted
    padded as the run pads it: ``data.pad_to_seconds``)."""
    from workbench.data import DurationBatchSampler, padded_durations, steps_per_epoch

    lengths = padded_durations(durations, _pad_seconds(config))  # what batches hold
    max_seconds = config.data.max_batch_seconds
    schedule = resolve_schedule(config, steps_per_epoch(lengths, max_seconds))
    batches = DurationBatchSampler(lengths, max_seconds, seed=config.run.seed).batches(0)
    sizes = [len(b) * max(lengths[i] for i in b) for b in batches]
    padded = sum(sizes) / len(batches)
    last = min(schedule.max_steps, config.run.stop_at_step or schedule.max_steps)
    total = sum(durations)
    finish = finish_steps(config, schedule.steps_per_epoch) if last == schedule.max_steps \
        else 0
    if config.run.stop_at_step:
        finish = max(0, min(finish, config.run.stop_at_step - last))
    every = schedule.eval_every
    return Workload(steps=last, batch_seconds=padded, train_seconds=total,
                    dev_seconds=sum(dev_durations),
                    evaluations=_evaluations(last, every) if dev_durations else 0,
                    encoded_seconds=min(total, total * last / len(batches)),
                    largest_batch_seconds=max(sizes), finish_steps=finish,
                    finish_evaluations=(_evaluations(last + finish, every) - last // every)
                    if dev_durations and finish else 0,
                    finish_encoded_seconds=min(total, total * finish / len(batches)))


def _pad_seconds(config: TrainConfig) -> float:
    """The run's batch padding (``data.pad_to_seconds``), taking the model to have an
    attention mask, as XLS-R and MMS do (one without is padded less: steps may be fewer)."""
    import torch

    from workbench.data import batch_pad_seconds

    gpu = config.run.device != "cpu" and torch.cuda.is_available()
    return batch_pad_seconds(config.data.pad_to_seconds, "cuda" if gpu else "cpu", masked=True)


def _evaluations(steps: int, every: int) -> int:
    """Dev evaluations of a run: every ``every`` steps, and one at the end."""
    return steps // every + (steps % every != 0)


def step_seconds(m: Measurement, batch_seconds: float) -> float:
    """One training step over ``batch_seconds`` of padded audio: compute scales with the
    audio, the optimizer step does not."""
    scale = batch_seconds / m.batch_seconds
    return (m.forward_s + m.backward_s + m.data_s) * scale + m.optimizer_s


# --------------------------------------------------------------------------- cost per mode


def estimate(m: Measurement, work: Workload, mode: str, *, top_layers: int = 0,
             cached_share: float = 0.0, views: int = 1) -> Estimate:
    """The duration and peak memory of a run of ``mode`` from measurement ``m``
    (``cached_share``: of the audio whose top-mode states are cached already; ``views``:
    copies of each clip top mode caches, the clip and its perturbed copies)."""
    if mode not in MODES:
        raise WorkbenchError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
    scale = work.batch_seconds / m.batch_seconds
    # Each evaluation scores the dev set and writes a checkpoint (weights, AdamW moments).
    evals = work.evaluations * (work.dev_seconds * m.inference_s_per_s
                                + (m.params + m.trainable) * 8 / SAVE_BYTES_PER_S)
    encoder = work.encoded_seconds * m.encoder_s_per_s
    cache_mb = min(1024.0, m.encoder_mb_per_s * work.encoded_seconds)  # EncoderCache's bound
    activations = max(0.0, m.peak_mb - m.base_mb - m.trainable * STATE_BYTES / 2**20
                      - m.encoder_cache_mb)
    if mode == m.mode:
        step, trainable, basis, detail = step_seconds(m, work.batch_seconds), m.trainable, \
            "measured", ""
    elif mode == "top":
        k = top_layers or default_top_layers(m.layers)
        share = m.layer_share * k / max(1, m.layers)
        # The lower layers run once per clip (laptop mode's cache): an inference pass
        # (feature encoder included) without the top layers; their states are held in RAM
        # up to laptop mode's limit instead of the encoder features.
        encoder = work.encoded_seconds * m.inference_s_per_s * (1 - share) \
            * (views - cached_share)
        states_mb = work.encoded_seconds * views * FRAMES_PER_S * m.hidden_size * 4 / 2**20
        cache_mb = min(states_mb, laptop_ram_limit_mb())
        step = (m.forward_s + m.backward_s) * share * scale + m.data_s * scale \
            + m.optimizer_s * share
        # Dev scoring keeps the dev clips' states (laptop.TopRecognizer): the lower layers
        # run over the dev set once, each evaluation runs only the top layers.
        if work.evaluations:
            evals -= work.evaluations * work.dev_seconds * m.inference_s_per_s * (1 - share)
            evals += work.dev_seconds * m.inference_s_per_s * (1 - share)
        trainable, basis = int(m.trainable * share), "model"
        activations = top_activations_mb(m, k) if m.top_layer_mb else activations * share
        if m.top_step_mb and m.top_layer_mb:  # what the measured steps held beyond those
            activations += top_slack_mb(m) * m.batch_seconds / work.peak_batch_seconds
        detail = f"top {k} of {m.layers} layers, from the full measurement" + (
            f"; {cached_share:.0%} of the audio's states cached already" if cached_share
            else "") + (f"; {views} copies of each clip cached" if views > 1 else "")
    elif mode == "adapter":
        if not m.adapters:
            raise WorkbenchError("This model has no attention adapters; adapter mode needs an "
                                 "MMS checkpoint with adapters.")
        share = m.adapters / max(1, m.trainable)
        step = (m.forward_s + m.backward_s * BACKWARD_ACTIVATIONS_SHARE + m.data_s) * scale \
            + m.optimizer_s * share
        trainable, basis, detail = m.adapters, "model", "from the full measurement"
    else:  # full from an adapter measurement: not derived
        raise WorkbenchError("A full-mode estimate needs a full-mode measurement.")
    # The measuring child times the run's largest batches: the peak follows the largest one,
    # not the mean that sets the time.
    peak = m.base_mb + trainable * STATE_BYTES / 2**20 \
        + activations * work.peak_batch_seconds / m.batch_seconds + cache_mb
    seconds = work.steps * step + encoder + evals
    if mode == "top" and work.finish_steps:
        finish = finish_estimate(m, work)
        seconds, peak = seconds + finish.seconds, max(peak, finish.peak_mb)
        detail += f"; then {work.finish_steps} steps of a full fine-tune (model.finish_epochs)"
    return Estimate(mode, work.steps + work.finish_steps, seconds, peak, basis, step, detail)


def finish_estimate(m: Measurement, work: Workload) -> Estimate:
    """Laptop mode's finish stage: a full fine-tune of ``work.finish_steps`` steps (its
    encoder features computed once per clip, its own dev evaluations)."""
    if m.mode != "full":
        raise WorkbenchError("Laptop mode's finish stage is estimated from a full-mode "
                             "measurement.")
    steps = work.finish_steps
    return estimate(m, replace(work, steps=steps, evaluations=work.finish_evaluations,
                               encoded_seconds=work.finish_encoded_seconds,
                               finish_steps=0, finish_evaluations=0), "full")


def top_activations_mb(m: Measurement, top_layers: int) -> float:
    """What laptop mode's step holds for backward, scaled to the measurement's batch (the
    full step's activations are no guide: its peak mixes them with the optimizer's state)."""
    held = top_layers * m.top_layer_mb + m.top_rest_mb
    return held * m.batch_seconds / max(m.top_probe_seconds, 1e-9)


def top_slack_mb(m: Measurement) -> float:
    """What laptop mode's measured steps grew the process by beyond their activations,
    gradients and AdamW state (on the probed batch): memory the allocator kept over batches
    of other shapes, and the optimizer's and the loss's transients. Taken as measured."""
    trainable = m.trainable * m.layer_share * m.top_step_layers / max(1, m.layers)
    activations = m.top_step_layers * m.top_layer_mb + m.top_rest_mb
    return max(0.0, m.top_step_mb - trainable * STATE_BYTES / 2**20 - activations)


def top_views(config: TrainConfig) -> int:
    """Copies of each clip laptop mode caches: the clip, and its perturbed copies when
    waveform augmentation is on (:mod:`workbench.laptop_cache`)."""
    return max(1, config.data.augment_views) if config.data.augment > 0 else 1


def laptop_ram_limit_mb() -> float:
    from workbench.laptop_cache import RAM_LIMIT_BYTES

    return RAM_LIMIT_BYTES / 2**20


def default_top_layers(layers: int) -> int:
    """Layers that train in laptop mode when ``model.top_layers`` is 0 (laptop mode's own
    default, :func:`workbench.laptop.default_top_layers`)."""
    from workbench.laptop import default_top_layers as laptop_default

    return laptop_default(layers)


def rough_estimate(params: int, work: Workload, threads: int) -> Estimate:
    """A full run's duration from the model size alone (no measurement; CPU; +-50% or
    worse): the reference step scaled by parameters, batch seconds and threads."""
    ref_s, ref_params, ref_batch, ref_threads = REFERENCE_STEP
    step = ref_s * (params / ref_params) * (work.batch_seconds / ref_batch) \
        * (ref_threads / max(1, threads))
    peak = 600 + params * (4 + STATE_BYTES) / 2**20
    return Estimate("full", work.steps, work.steps * step, peak, "rough", step,
                    "from the model size; `workbench train --estimate` measures")


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Plan:
    """The estimates of every mode this model offers, and the one to choose."""

    estimates: list[Estimate]
    chosen: str  # the run's mode
    suggested: str  # the chosen mode if it fits an hour, else the first that does

    def of(self, mode: str) -> Estimate | None:
        return next((e for e in self.estimates if e.mode == mode), None)


def offered_modes(name: str) -> list[str]:
    """The training modes of ``name``: full, top, and adapter for a model with adapters."""
    return ["full", "top", *(["adapter"] if has_adapters(name) else [])]


def plan(ws: Workspace, config: TrainConfig, *, measure_missing: bool = True,
         steps: int = 2) -> Plan:
    """Every offered mode's estimate for this run here.

    Args:
        ws: A prepared workspace with a current vocabulary.
        config: The run's configuration (``model.mode`` is the chosen mode).
        measure_missing: Measure when no measurement is cached (else a rough estimate from
            the model size, instantly).
        steps: Timed steps of a new measurement.
    """
    modes = offered_modes(config.model.name)
    # Each mode's run as it would be in that mode (its own defaults, the user's edits kept).
    clips = clip_durations(ws, config)  # read once: the modes share the clips
    works = {mode: workload_for(*clips, config_for_mode(config, mode)) for mode in modes}
    work = works.get(config.model.mode) or workload_for(*clips, config)
    params = model_size(config.model.name)[0]
    full = cached(cache_key(config, params, "full"))
    if full is None and measure_missing:
        full = measure(ws, config, steps=steps, use_cache=False)
    if full is None:
        estimates = [rough_estimate(params, works.get("full", work),
                                    effective_threads(config))] if params else []
    else:
        adapter = cached(cache_key(config, params, "adapter")) if "adapter" in modes else None
        if adapter is None and "adapter" in modes and config.model.mode == "adapter" \
                and measure_missing:
            adapter = measure(ws, config, mode="adapter", steps=steps, use_cache=False)
        cut = full.layers - (config.model.top_layers or default_top_layers(full.layers))
        cached_share = cached_states_share(ws, config, cut)
        estimates = [estimate(adapter if mode == "adapter" and adapter else full,
                              works[mode], mode,
                              top_layers=config.model.top_layers, cached_share=cached_share,
                              views=top_views(config))
                     for mode in modes]
    chosen = next((e for e in estimates if e.mode == config.model.mode), None)
    fitting = [e.mode for e in estimates if e.fits_hour]
    suggested = config.model.mode if chosen and chosen.fits_hour else \
        (fitting[0] if fitting else config.model.mode)
    return Plan(estimates, config.model.mode, suggested)


def duration_text(seconds: float) -> str:
    """``seconds`` as a person reads a duration (45 s, 12 min, 3.5 h, 4 days)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * HOUR_S:
        return f"{seconds / HOUR_S:.1f} h"
    return f"{seconds / 86400:.0f} days"


BASIS_TEXT = {"measured": "measured here", "model": "model-based, from the full measurement",
              "rough": "rough, from the model size; `--estimate` measures"}


def describe(e: Estimate) -> str:
    """One line: what a run of ``e.mode`` costs here."""
    return (f"--mode {e.mode}: {e.steps} steps, about {duration_text(e.seconds)} "
            f"({e.step_s:.2f} s a step), peak memory about {e.peak_mb:,.0f} MiB "
            f"[{BASIS_TEXT[e.basis]}{'; ' + e.detail if e.detail and e.basis != 'rough' else ''}]")


def summary_line(p: Plan) -> str:
    """The line printed before training: the chosen mode, and what fits when it does not."""
    chosen = p.of(p.chosen)
    if chosen is None:
        return (f"Estimate: no estimate for --mode {p.chosen} yet (`workbench train "
                "--estimate` measures).")
    text = f"Estimate: {describe(chosen)}."
    if not chosen.fits_hour:
        better = p.of(p.suggested)
        text += (f" More than an hour here: --mode {better.mode} would take about "
                 f"{duration_text(better.seconds)}." if better and better.mode != p.chosen
                 else " More than an hour here; `workbench train --estimate` estimates the "
                 "other modes (--mode top: laptop mode)." if chosen.basis == "rough"
                 else " More than an hour here, in every mode.")
    return text


def remaining_seconds(records: list[dict], now: float | None = None) -> float | None:
    """Training time left, from a run's metrics (None before two logged steps; laptop mode's
    finish stage included).

    The rate is that of the latter half of the steps done so far (evaluations included), so
    the first steps' extra work (the warm-up, the encoder run once per clip) weighs less.
    """
    start = next((r for r in reversed(records) if r.get("event") == "start"), None)
    if start is None or any(r.get("event") == "end" for r in records):
        return None
    # The pace of this stage (laptop mode's finish steps are full steps, slower).
    begin = next(int(r.get("step", 0)) for r in records
                 if r.get("event") == "start" and r.get("stage") == start.get("stage"))
    every = [(int(r["step"]), float(r["elapsed_s"])) for r in records
             if r.get("event") in ("train", "eval") and "elapsed_s" in r]
    timed = [t for t in every if t[0] > begin]
    if len(timed) < 2:
        return None
    step, elapsed = timed[-1]
    half_step, half_elapsed = min(timed, key=lambda t: abs(t[0] - (begin + step) / 2))
    if step - half_step < 1:
        half_step, half_elapsed = begin, max((t[1] for t in every if t[0] <= begin),
                                             default=0.0)
    rate = (elapsed - half_elapsed) / max(1, step - half_step)
    left = max(0, int(start.get("max_steps", 0)) - step) * rate
    # In laptop mode's top stage, the finish's full steps that follow: each costs about the
    # top step times the share of the layers that train (corrected once they run).
    left += int(start.get("finish_steps", 0)) * rate * float(start.get("finish_step_ratio", 1))
    last_time = next((r.get("time") for r in reversed(records) if "time" in r), None)
    if now is not None and last_time is not None:
        left -= max(0.0, now - float(last_time))
    return max(0.0, left)


# --------------------------------------------------------------------------- cache


def cache_path() -> Path:
    """Where measurements are kept: ``$WORKBENCH_CACHE`` or the user's cache folder."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "workbench")
    return Path(root) / "estimates.json"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's word for it elsewhere)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((ln.split(":", 1)[1].strip() for ln in info
                        if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def machine() -> dict:
    """What makes a measurement valid only here: CPU or GPU model, torch version."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"cpu": cpu_name(), "gpu": gpu, "torch": torch.__version__}


def effective_threads(config: TrainConfig) -> int:
    """The threads training will use (``run.threads``, else torch's default here)."""
    import torch

    return config.run.threads or torch.get_num_threads()


def cache_key(config: TrainConfig, params: int, mode: str) -> str:
    """A measurement's key: model and size, mode, threads, the settings that change a step's
    cost, and the machine. Batch seconds are not in it: a step scales with them."""
    from workbench.models import resolve_model_name

    parts = {"version": MEASUREMENT_VERSION,
             "model": resolve_model_name(config.model.name), "params": params, "mode": mode,
             "threads": effective_threads(config), "device": config.run.device,
             "precision": config.run.precision,
             "checkpointing": config.model.gradient_checkpointing,
             "frozen_encoder": config.model.freeze_feature_encoder,
             "encoder_cache": config.data.cache_encoder_features and not config.data.augment,
             **machine()}
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cached(key: str) -> Measurement | None:
    """The cached measurement under ``key``, if any."""
    try:
        entry = json.loads(cache_path().read_text(encoding="utf-8")).get(key)
        return Measurement(**entry) if entry else None
    except (OSError, ValueError, TypeError):
        return None


def remember(m: Measurement) -> None:
    """Add ``m`` to the cache (written atomically)."""
    from workbench.fsio import write_text_atomic

    path = cache_path()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = {}
    entries[m.key] = asdict(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(entries, indent=1))


def model_size(name: str) -> tuple[int, int]:
    """(parameters, transformer layers) of a model from its config alone (no weights; the
    model is built on the meta device). (0, 0) when its config is not on this machine."""
    import torch
    from transformers import AutoConfig, AutoModelForCTC

    from workbench.models import REGISTRY, is_from_scratch, local_config, resolve_model_name

    try:
        config = local_config(name, 40) if is_from_scratch(name) else \
            AutoConfig.from_pretrained(resolve_model_name(name), trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForCTC.from_config(config)
        return (sum(p.numel() for p in model.parameters()),
                int(getattr(config, "num_hidden_layers", 0)))
    except (OSError, ValueError):
        entry = REGISTRY.get(name)
        return (int(entry.millions * 1e6), 0) if entry else (0, 0)


# --------------------------------------------------------------------------- measuring


def measure(ws: Workspace, config: TrainConfig, *, mode: str = "full", steps: int = 2,
            use_cache: bool = True) -> Measurement:
    """Time ``steps`` real training steps (after a warm-up) in a child process; cached.

    Args:
        ws: A prepared workspace with a current vocabulary.
        config: The run's configuration.
        mode: full, or adapter (the base frozen; for a model with adapters).
        steps: Timed steps (the warm-up step comes first).
        use_cache: Return a cached measurement for the same key when there is one.
    """
    key = cache_key(config, model_size(config.model.name)[0], mode)
    if use_cache and (found := cached(key)) is not None:
        return found
    with tempfile.TemporaryDirectory(prefix="workbench-estimate-") as folder:
        spec = Path(folder) / "config.yaml"
        save_config(replace(config, model=replace(config.model, mode=mode)), spec)
        done = subprocess.run([sys.executable, "-m", "workbench.estimate_child", str(ws.root),
                               str(spec), str(steps), key], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkbenchError(f"Measuring training steps failed: {error}")
    m = Measurement(**json.loads(lines[-1]))
    remember(m)
    return m


def has_adapters(name: str) -> bool:
    """Whether ``name``'s config shows attention adapters (reads the config only)."""
    from workbench.adapters import check_adapter_model

    try:
        check_adapter_model(name)
    except WorkbenchError:
        return False
    return model_size(name)[0] > 0
