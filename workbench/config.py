"""Run configuration: nested dataclasses <-> YAML, ``key=value`` overrides, size-aware presets.

The resolved configuration is written as ``config.yaml`` next to every run, so a run can be
resumed or reproduced exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError
from workbench.fsio import write_text_atomic
from workbench.models import DEMO_BASE, is_from_scratch

DEFAULT_MODEL = "facebook/wav2vec2-xls-r-300m"


def _f(default: Any, help: str) -> Any:
    """A dataclass field with a help string (shown by `workbench train --help-config`)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: default.copy(), metadata={"help": help})
    return field(default=default, metadata={"help": help})


MODES = ("full", "top", "adapter")


@dataclass
class ModelSettings:
    name: str = _f(DEFAULT_MODEL, "Hub id, local directory, or a registered short name")
    mode: str = _f("full", "what trains: full (every layer above the feature encoder), top "
                   "(laptop mode: the lower layers frozen and run once per clip, their "
                   "output cached; the top layers and the head train on the cache), adapter "
                   "(MMS attention adapters and the head; the base frozen)")
    top_layers: int = _f(0, "mode=top: transformer layers that train (0: the default, "
                         "chosen from bench/laptop_mode.py)")
    finish_epochs: float = _f(
        0.0, "mode=top: after the top layers have trained, this many epochs of a full "
             "fine-tune from the result (every layer above the feature encoder, the head "
             "kept), in the same run; 0: none (laptop mode's own default for demo-base: 6)")
    adapter_lang: str = _f("", "mode=adapter: the language code the adapter is saved under "
                           "(adapter.<lang>.safetensors)")
    head_init: str = _f("normal", "how a fresh CTC head starts: normal (transformers' own: "
                        "N(0, initializer_range), bias 0), zero, or uniform (nn.Linear's)")
    freeze_feature_encoder: bool = _f(True, "keep the convolutional feature encoder frozen")
    gradient_checkpointing: bool = _f(False, "trade compute for memory in the transformer")
    mask_time_prob: float = _f(0.05, "SpecAugment: share of frames masked in time")
    mask_feature_prob: float = _f(0.0, "SpecAugment: share of feature channels masked")
    layerdrop: float = _f(0.05, "probability of skipping a transformer layer in training")
    hidden_dropout: float = _f(0.0, "dropout in the transformer")
    activation_dropout: float = _f(0.0, "dropout after the feed-forward activation")
    attention_dropout: float = _f(0.0, "dropout on attention weights")
    feat_proj_dropout: float = _f(0.0, "dropout after the feature projection")
    final_dropout: float = _f(0.0, "dropout before the CTC head")


@dataclass
class DataSettings:
    max_batch_seconds: float = _f(100.0, "audio seconds per batch, padding included")
    max_utterance_seconds: float = _f(20.0, "longer clips are set aside by the audit")
    shuffle_buckets: bool = _f(True, "shuffle the order of duration-grouped batches each epoch")
    cache_encoder_features: bool = _f(
        True, "on CPU, keep a frozen feature encoder's outputs (it then runs once per clip)")
    augment: float = _f(
        0.0, "chance that each of speed, reverberation, band-limiting and noise perturbs a "
             "training clip, drawn anew every epoch (0: off; workbench/augment.py)")
    augment_views: int = _f(
        4, "mode=top with data.augment > 0: copies of each clip whose lower-layer states are "
           "cached (the clip itself and views-1 perturbed copies); epochs take them in turn")
    pseudolabels: str = _f(
        "", "a pseudo-label set (`workbench pseudolabel`) added to the training split ('': "
            "none); dev and test are never changed")
    pseudo_weight: float = _f(0.5, "loss weight of each pseudo-labelled utterance (a "
                                   "transcribed one weighs 1)")
    pad_to_seconds: float = _f(
        -1.0, "pad each batch's audio to a multiple of this many seconds, so that a GPU sees "
              "few distinct shapes (each new one stalled a step by 2-3 s on an H200); batches "
              "are formed counting it, so max_batch_seconds still holds. Needs a model with an "
              "attention mask (XLS-R, MMS). -1: 1 s on a GPU for such a model, else 0 (off)")


@dataclass
class OptimSettings:
    learning_rate: float = _f(1e-4, "peak learning rate (AdamW)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    warmup_fraction: float = _f(0.1, "share of steps spent warming the learning rate up")
    epochs: float = _f(100.0, "passes over the training audio (sets the number of steps)")
    min_steps: int = _f(200, "at least this many steps, however little data there is")
    max_steps: int = _f(0, "exact number of steps (0: derived from epochs and data size)")
    grad_clip: float = _f(1.0, "clip the gradient norm to this value")
    finish_learning_rate: float = _f(
        0.0, "mode=top with model.finish_epochs: peak learning rate of the full fine-tune "
             "that finishes the run (0: optim.learning_rate / 3, a full fine-tune's rate; "
             "laptop mode's own default for demo-base: 1.5 times that)")
    head_only_steps: int = _f(
        0, "train only the fresh CTC head for this many first steps (at most a quarter of the "
           "schedule), so that it learns to read the pretrained encoder before the encoder "
           "moves (fairseq's freeze_finetune_updates)")


@dataclass
class RunSettings:
    seed: int = _f(0, "random seed (data order, initialisation, masking)")
    eval_every: int = _f(0, "steps between dev evaluations (0: about 10 per run)")
    log_every: int = _f(10, "steps between loss lines in metrics.jsonl")
    device: str = _f("auto", "auto, cpu or cuda")
    precision: str = _f("auto", "auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16")
    threads: int = _f(0, "CPU threads for torch (0: torch's default)")
    stop_at_step: int = _f(0, "end the run after this step, keeping the schedule (0: never)")


@dataclass
class TrainConfig:
    preset: str = _f("auto", "10min, 1h, 10h or auto (chosen from the training audio)")
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    run: RunSettings = field(default_factory=RunSettings)


SECTIONS = {"model": ModelSettings, "data": DataSettings, "optim": OptimSettings,
            "run": RunSettings}

# Presets for XLS-R/MMS-sized models on a GPU. With ~10 minutes of audio an epoch is a handful
# of steps, so the schedule is set in epochs and floored by min_steps.
PRESETS: dict[str, dict[str, Any]] = {
    "10min": {"data.max_batch_seconds": 80.0, "optim.epochs": 150.0, "optim.min_steps": 600,
              "optim.learning_rate": 5e-5, "optim.warmup_fraction": 0.1,
              "model.mask_time_prob": 0.05, "model.layerdrop": 0.05},
    "1h": {"data.max_batch_seconds": 160.0, "optim.epochs": 60.0, "optim.min_steps": 1500,
           "optim.learning_rate": 1e-4, "optim.warmup_fraction": 0.1,
           "model.mask_time_prob": 0.05, "model.layerdrop": 0.05},
    "10h": {"data.max_batch_seconds": 320.0, "optim.epochs": 25.0, "optim.min_steps": 5000,
            "optim.learning_rate": 1e-4, "optim.warmup_fraction": 0.08,
            "model.mask_time_prob": 0.05, "model.layerdrop": 0.1},
}
# A model trained from random initialisation (the local `tiny`/`small` models) needs its
# feature encoder trained, a higher learning rate and no augmentation to learn quickly.
FROM_SCRATCH: dict[str, Any] = {
    "model.freeze_feature_encoder": False, "optim.learning_rate": 2e-3,
    "model.mask_time_prob": 0.0, "model.layerdrop": 0.0, "data.max_batch_seconds": 40.0,
}
# The bundled demo-base (about 3M parameters) fine-tunes on a laptop CPU: short batches, a
# higher learning rate than a 300M model takes, and a schedule that fits ten minutes of
# training on 2 cores for ten minutes of audio.
SMALL_PRETRAINED: dict[str, Any] = {
    "data.max_batch_seconds": 20.0, "optim.learning_rate": 1e-3, "optim.epochs": 30.0,
    "optim.min_steps": 200, "optim.head_only_steps": 100, "model.layerdrop": 0.0,
    "model.mask_time_prob": 0.0,
}


def model_defaults(name: str) -> dict[str, Any]:
    """Settings a model needs on top of the preset (before the user's own overrides); a base
    written by `workbench pretrain` takes those of the model it continued."""
    if is_from_scratch(name):
        return FROM_SCRATCH
    if name == DEMO_BASE:
        return SMALL_PRETRAINED
    origin = pretrained_from(name)
    return model_defaults(origin) if origin and origin != name else {}


def pretrained_from(name: str) -> str:
    """The base a `workbench pretrain` output folder continued ('' for any other model)."""
    marker = Path(name) / "pretraining.json" if name else None
    if marker is None or not marker.is_file():
        return ""
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("base", ""))
    except (OSError, ValueError):
        return ""


# mode=adapter trains ~2.5M adapter and head weights on a frozen MMS base: the learning rate
# of the MMS adapter recipe (Hugging Face blog "Fine-tuning MMS Adapter Models"), and no
# layerdrop (a skipped layer skips its adapter, as in that recipe).
ADAPTER_MODE: dict[str, Any] = {"optim.learning_rate": 1e-3, "model.layerdrop": 0.0}


# mode=top trains a few pretrained top layers and a fresh head on fixed inputs: three times
# the learning rate the preset and the model give a full fine-tune (bench/RESULTS.md, issue 15:
# on demo-base 3x lowered test CER with 2, 3 and 4 top layers; 5x was no better than 1x).
TOP_LEARNING_RATE_FACTOR = 3.0
# demo-base in mode=top: half the preset's epochs on the cache, then 6 epochs of a full
# fine-tune from the result at 1.5 times the full fine-tune's learning rate (bench/RESULTS.md,
# issue 15, session 10: mean test CER 0.95x the full fine-tune's over 8 seeds on the demo
# corpus and 0.99x over 6 on mi-words, in 0.49x and 0.46x its time; at 1x 1.03x and 1.09x,
# at 2x 0.97x and 1.06x, at 3x worse). A short finish from a trained head takes a higher
# rate than the preset's 30-epoch fine-tune from a fresh one.
SMALL_PRETRAINED_TOP: dict[str, Any] = {"optim.epochs": 15.0, "model.finish_epochs": 6.0}
SMALL_FINISH_RATE_FACTOR = 1.5


def mode_defaults(mode: str, config: TrainConfig | None = None,
                  name: str = "") -> dict[str, Any]:
    """Settings a training mode needs on top of the preset and the model's defaults
    (``config``: those resolved so far; ``name``: the model; before the user's own
    overrides)."""
    if mode == "adapter":
        return ADAPTER_MODE
    if mode == "top" and config is not None:
        rate = {"optim.learning_rate": config.optim.learning_rate * TOP_LEARNING_RATE_FACTOR}
        return {**rate, **(SMALL_PRETRAINED_TOP if is_demo_base(name) else {})}
    return {}


def finish_config(config: TrainConfig, model_dir: str) -> TrainConfig:
    """The full fine-tune that finishes a mode=top run with ``model.finish_epochs``: from
    the top stage's model (``model_dir``), its head kept, for that many epochs (no step
    floor, no head-only steps) at ``optim.finish_learning_rate``."""
    rate = config.optim.finish_learning_rate or finish_default_rate(config)
    return replace(
        config,
        model=replace(config.model, name=model_dir, mode="full", finish_epochs=0.0),
        optim=replace(config.optim, epochs=config.model.finish_epochs, min_steps=0,
                      max_steps=0, head_only_steps=0, learning_rate=rate))


def finish_default_rate(config: TrainConfig) -> float:
    """The finish's peak learning rate when ``optim.finish_learning_rate`` is 0: a full
    fine-tune's (a third of top mode's), 1.5 times that for demo-base (measured there
    only)."""
    full = config.optim.learning_rate / TOP_LEARNING_RATE_FACTOR
    return full * (SMALL_FINISH_RATE_FACTOR if is_demo_base(config.model.name) else 1.0)


def is_demo_base(name: str) -> bool:
    """demo-base itself, or a base `workbench pretrain` continued from it."""
    return name == DEMO_BASE or pretrained_from(name) == DEMO_BASE


PRESET_LIMITS_MINUTES = (("10min", 30.0), ("1h", 300.0), ("10h", math.inf))


def preset_for_minutes(minutes: float) -> str:
    """The preset that suits ``minutes`` of training audio."""
    return next(name for name, limit in PRESET_LIMITS_MINUTES if minutes < limit)


def build_config(
    *, preset: str = "auto", train_minutes: float | None = None, overrides: list[str] = ()
) -> TrainConfig:
    """Defaults, then the preset, then ``key=value`` overrides (later wins)."""
    resolved = preset
    if preset == "auto":
        if train_minutes is None:
            raise WorkbenchError("preset 'auto' needs the amount of training audio.")
        resolved = preset_for_minutes(train_minutes)
    if resolved not in PRESETS:
        raise WorkbenchError(f"Unknown preset {preset!r}; choose auto, {', '.join(PRESETS)}.")
    config = apply_overrides(TrainConfig(preset=resolved), PRESETS[resolved])
    user = parse_overrides(overrides)
    name = str(user.get("model.name", user.get("name", "")))
    config = apply_overrides(config, model_defaults(name))
    config = apply_overrides(config, mode_defaults(str(user.get("model.mode",
                                                                user.get("mode", "full"))),
                                                   config, name))
    return apply_overrides(config, user)


def config_for_mode(config: TrainConfig, mode: str) -> TrainConfig:
    """``config`` as it would be in ``mode``: that mode's defaults for this preset and model,
    with the settings ``config`` changed from its own mode's defaults (the user's edits)."""
    if mode == config.model.mode:
        return config

    def defaults(which: str) -> TrainConfig:
        return build_config(preset=config.preset, overrides=[
            f"model.name={config.model.name}", f"model.mode={which}"])

    before = flat_settings(asdict(defaults(config.model.mode)))
    edits = {key: value for key, value in flat_settings(asdict(config)).items()
             if value != before.get(key) and key not in ("model.mode", "preset")}
    return apply_overrides(defaults(mode), edits)


def flat_settings(data: dict, prefix: str = "") -> dict:
    """A nested settings dict as dotted keys (``{"optim.epochs": 30.0, ...}``)."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as YAML scalars (1e-4, true, 8)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WorkbenchError(f"Cannot read the setting {pair!r}; write it as key=value.")
        parsed[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return parsed


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Return a copy of ``config`` with dotted or unique short keys set."""
    for key, value in overrides.items():
        section, name = _locate(key)
        config = _set(config, section, name, value, key)
    return config


def _locate(key: str) -> tuple[str | None, str]:
    if "." in key:
        section, name = key.split(".", 1)
        return section, name
    if key in {f.name for f in fields(TrainConfig)}:
        return None, key
    owners = [name for name, cls in SECTIONS.items() if key in _field_names(cls)]
    if len(owners) != 1:
        raise WorkbenchError(f"Unknown setting {key!r}. {settings_help_hint()}")
    return owners[0], key


def _field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _set(config: TrainConfig, section: str | None, name: str, value: Any, key: str):
    if section is None:
        return replace(config, **{name: _coerce(TrainConfig, name, value, key)})
    if section not in SECTIONS:
        raise WorkbenchError(f"Unknown setting {key!r}. {settings_help_hint()}")
    part = getattr(config, section)
    if name not in _field_names(type(part)):
        raise WorkbenchError(f"Unknown setting {key!r}. {settings_help_hint()}")
    return replace(config, **{section: replace(part, **{name: _coerce(type(part), name, value,
                                                                        key)})})


def _coerce(cls, name: str, value: Any, key: str) -> Any:
    default = getattr(cls(), name)
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        return kind(value)
    except (TypeError, ValueError):
        raise WorkbenchError(
            f"Setting {key}={value!r}: expected a {kind.__name__} (default {default!r})."
        ) from None


def settings_help_hint() -> str:
    return "See `workbench train --help-config` for the settings and their meaning."


def settings_help() -> str:
    """One line per setting: dotted key, default, help."""
    lines = []
    for section, cls in SECTIONS.items():
        for item in fields(cls):
            default = getattr(cls(), item.name)
            lines.append(f"{section}.{item.name} = {default!r}\n    {item.metadata['help']}")
    return "\n".join(lines)


def to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(asdict(config), allow_unicode=True, sort_keys=False)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML, atomically."""
    write_text_atomic(path, to_yaml(config))


def load_config(path: Path) -> TrainConfig:
    """Read a config.yaml written by ``save_config``; unknown keys are an error."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise WorkbenchError(f"{path}: cannot read the run configuration ({err}).") from err
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    preset = flat.pop("preset", "10min")
    return apply_overrides(TrainConfig(preset=preset), flat)


@dataclass(frozen=True)
class Schedule:
    """Step counts derived from the config and the amount of training audio."""

    steps_per_epoch: int
    max_steps: int
    warmup_steps: int
    eval_every: int


def resolve_schedule(config: TrainConfig, steps_per_epoch: int) -> Schedule:
    """Total, warm-up and evaluation steps for ``steps_per_epoch`` batches per epoch."""
    steps_per_epoch = max(1, steps_per_epoch)
    if config.optim.max_steps > 0:
        max_steps = config.optim.max_steps
    else:
        max_steps = max(config.optim.min_steps, math.ceil(config.optim.epochs * steps_per_epoch))
    warmup = min(max_steps - 1, round(max_steps * config.optim.warmup_fraction))
    run_steps = max_steps + finish_steps(config, steps_per_epoch)
    eval_every = config.run.eval_every or max(1, run_steps // 10)
    return Schedule(steps_per_epoch, max_steps, max(0, warmup), eval_every)


def finish_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The steps of laptop mode's finish stage (``model.finish_epochs``; 0 without one)."""
    if config.model.mode != "top" or config.model.finish_epochs <= 0:
        return 0
    return math.ceil(config.model.finish_epochs * max(1, steps_per_epoch))
