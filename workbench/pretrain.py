"""Continued self-supervised pretraining: ``workbench pretrain -w WS --model BASE``.

wav2vec 2.0's own objective on the workspace's untranscribed pieces
(``prepare --untranscribed``): spans of the feature encoder's output are masked
(``_compute_mask_indices``), and the transformer must pick each masked frame's quantized
target among ``num_negatives`` distractors from the same clip (``_sample_negative_indices``);
the loss is that contrastive loss plus the codebook diversity loss, with the Gumbel softmax
temperature annealed from 2 towards 0.5 by 0.999995 a step as fairseq does (or, with
``gumbel_temperature_decay=0``, to 0.5 within the run: measured worse on the demo)
(``Wav2Vec2ForPreTraining``, as transformers' ``run_wav2vec2_pretraining_no_trainer.py``
puts the pieces together). The feature encoder
stays frozen by default (continued pretraining adapts the transformer; the encoder's
gradients are the costliest part on a CPU).

A base saved without its pretraining heads (a CTC fine-tune such as demo-base) gets a fresh
quantizer and projections: the first steps then learn a codebook from nothing, which costs
steps before the transformer gets a useful target; the run's ``start`` record and the
report name the parts that started fresh.

Guards: every logged step records the codebook perplexity and the share of code vectors the
masked frames used; when the perplexity stays below ``collapse_share`` of the codebook for
``collapse_patience`` logs in a row (the collapse of transformers #14471 and fairseq #4530),
the run stops with a message, and the model of the last checkpoint before the collapse is the
one kept. Runs live in ``WS/pretrain/<stamp>-<base>/`` (settings, metrics.jsonl, an atomic
checkpoint for ``--resume``); the base model is written, atomically, to
``WS/bases/<run name>/``, which ``workbench train --model`` accepts.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from workbench.errors import WorkbenchError
from workbench.fsio import HeldLock, staged_dir, write_json_atomic
from workbench.workspace import Workspace, new_stamped_dir

RUNS = "pretrain"
BASES = "bases"


@dataclass
class PretrainSettings:
    """What a continued-pretraining run does (``key=value`` on the command line)."""

    model: str = "facebook/wav2vec2-xls-r-300m"
    steps: int = 0  # 0: from epochs
    epochs: float = 10.0
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    max_batch_seconds: float = 80.0
    mask_time_prob: float = 0.65
    mask_time_length: int = 10
    num_negatives: int = 100
    max_gumbel_temperature: float = 2.0
    min_gumbel_temperature: float = 0.5
    # Per step (fairseq's and the transformers example's); 0: reach the minimum at
    # gumbel_anneal_share of the run. Over a few hundred steps the default barely anneals,
    # which measured better on the demo than annealing within the run (bench/RESULTS.md).
    gumbel_temperature_decay: float = 0.999995
    gumbel_anneal_share: float = 0.7
    diversity_loss_weight: float = 0.1
    freeze_feature_encoder: bool = True
    grad_clip: float = 1.0
    log_every: int = 10
    stop_at_step: int = 0  # end the run after this step, keeping the schedule (0: never)
    checkpoint_every: int = 100
    collapse_share: float = 0.02  # perplexity below this share of the codebook ...
    collapse_patience: int = 3  # ... this many logs in a row: a collapse
    threads: int = 0
    seed: int = 0

    @classmethod
    def from_pairs(cls, pairs: list[str], **given) -> PretrainSettings:
        """Defaults, then ``given``, then ``key=value`` pairs (read as YAML scalars)."""
        import yaml

        settings = cls(**{k: v for k, v in given.items() if v is not None})
        known = {f.name: f.type for f in fields(cls)}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in known:
                raise WorkbenchError(f"Unknown pretraining setting {pair!r}; the settings are "
                                     f"{', '.join(known)} (write key=value).")
            setattr(settings, key, type(getattr(settings, key))(yaml.safe_load(value)))
        return settings


@dataclass
class PretrainResult:
    run_dir: Path
    base_dir: Path | None
    steps: int
    stopped: str  # schedule, max_minutes, stop_at_step
    fresh: list[str] = field(default_factory=list)
    last: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["run_dir"], data["base_dir"] = str(self.run_dir), str(self.base_dir or "")
        return data


# --------------------------------------------------------------------------- model and data


def load_pretraining_model(name: str, settings: PretrainSettings):
    """``Wav2Vec2ForPreTraining`` from ``name`` (safetensors only), and the parts that were
    not in the checkpoint (they start fresh)."""
    from transformers import Wav2Vec2ForPreTraining

    from workbench.models import resolve_model_name

    try:
        model, info = Wav2Vec2ForPreTraining.from_pretrained(
            resolve_model_name(name), use_safetensors=True, output_loading_info=True)
    except (OSError, ValueError) as err:
        raise WorkbenchError(f"Cannot load {name} for pretraining: {err}. Give a wav2vec 2.0 "
                             "checkpoint (a Hub id or a folder with model.safetensors).") from err
    if model.config.model_type != "wav2vec2":
        raise WorkbenchError(f"{name} is a {model.config.model_type!r} model; continued "
                             "pretraining supports wav2vec 2.0 checkpoints (XLS-R, MMS).")
    model.config.mask_time_prob = settings.mask_time_prob
    model.config.mask_time_length = settings.mask_time_length
    model.config.diversity_loss_weight = settings.diversity_loss_weight
    fresh = sorted({key.split(".")[0] for key in info["missing_keys"]})
    if settings.freeze_feature_encoder:
        model.freeze_feature_encoder()
    return model, fresh


def pretraining_batch(model, samples: list[np.ndarray], feature_extractor,
                      settings: PretrainSettings) -> dict[str, torch.Tensor]:
    """Inputs, mask and negatives of one batch (mask and negatives drawn with NumPy's global
    generator, whose state checkpoints keep)."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import (
        _compute_mask_indices,
        _sample_negative_indices,
    )

    inputs = feature_extractor(samples, sampling_rate=16000, padding=True,
                               return_attention_mask=True, return_tensors="pt")
    frames = int(model._get_feat_extract_output_lengths(inputs["input_values"].shape[-1]))
    real = model._get_feature_vector_attention_mask(frames, inputs["attention_mask"])
    mask = _compute_mask_indices((len(samples), frames), settings.mask_time_prob,
                                 settings.mask_time_length, attention_mask=real, min_masks=2)
    negatives = _sample_negative_indices((len(samples), frames), settings.num_negatives,
                                         mask_time_indices=mask)
    return {"input_values": inputs["input_values"], "attention_mask": inputs["attention_mask"],
            "mask_time_indices": torch.as_tensor(mask, dtype=torch.bool),
            "sampled_negative_indices": torch.as_tensor(negatives, dtype=torch.long)}


class CodebookUse:
    """The share of code vectors the masked frames picked, per group (hook on the
    quantizer's projection)."""

    def __init__(self, model):
        q = model.quantizer
        self.groups, self.vars = q.num_groups, q.num_vars
        self.used: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        q.weight_proj.register_forward_hook(self._hook)

    def _hook(self, _module, _inputs, output) -> None:
        with torch.no_grad():
            picks = output.detach().view(*output.shape[:2], self.groups, self.vars).argmax(-1)
            if self.mask is not None:
                picks = picks[self.mask.to(picks.device)]
            else:
                picks = picks.reshape(-1, self.groups)
            used = torch.zeros(self.groups, self.vars, dtype=torch.bool)
            for g in range(self.groups):
                used[g, picks[:, g].unique().cpu()] = True
            self.used = used if self.used is None else self.used | used

    def take(self) -> float:
        """The share used since the last call."""
        share = float(self.used.float().mean()) if self.used is not None else 0.0
        self.used = None
        return share


# --------------------------------------------------------------------------- the run


def pretrain(ws: Workspace, settings: PretrainSettings, *, resume: str | None = None,
             max_minutes: float = 0.0, progress: bool = False,
             on_event=None) -> PretrainResult:
    """Continue pretraining ``settings.model`` on the workspace's untranscribed pieces.

    Raises:
        WorkbenchError: no untranscribed audio, a model that cannot be pretrained, another
            pretraining run in progress, or nothing to resume.
    """
    from data_recipes.untranscribed import read_untranscribed

    pieces = read_untranscribed(ws)
    if not pieces:
        raise WorkbenchError(f"No untranscribed audio in {ws.root}; add recordings with "
                             "`workbench prepare --untranscribed AUDIO... -w WS` first.")
    lock = None
    if int(os.environ.get("RANK", "0")) == 0:  # one lock per run: its first process holds it
        lock = HeldLock.try_acquire(ws.root / RUNS / ".lock", {"pid": os.getpid()})
        if lock is None:
            raise WorkbenchError(f"Another `workbench pretrain` is running in {ws.root}; "
                                 "wait for it to end.")
    try:
        return _Pretraining(ws, settings, pieces, resume, progress, on_event).run(max_minutes)
    finally:
        if lock is not None:
            lock.release()


def list_pretraining_runs(ws: Workspace) -> list[Path]:
    """The workspace's pretraining run folders, oldest first (names start with the time)."""
    return sorted(p for p in (ws.root / RUNS).glob("*") if (p / "settings.json").is_file())


def read_pretraining_metrics(run_dir: Path) -> list[dict]:
    """The records of a pretraining run's metrics.jsonl (a line cut short is skipped)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in records if isinstance(r, dict)]


def latest_run(ws: Workspace) -> Path:
    runs = list_pretraining_runs(ws)
    if not runs:
        raise WorkbenchError(f"No pretraining run to resume in {ws.root / RUNS}.")
    return runs[-1]


class _Pretraining:
    def __init__(self, ws, settings, pieces, resume, progress, on_event):
        from accelerate import Accelerator

        self.ws, self.pieces, self.progress, self.on_event = ws, pieces, progress, on_event
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        if resume is not None:
            self.run_dir = latest_run(ws) if resume == "latest" else ws.root / RUNS / resume
            if not (self.run_dir / "settings.json").is_file():
                raise WorkbenchError(f"No pretraining run {resume!r} in {ws.root / RUNS}.")
            saved = json.loads((self.run_dir / "settings.json").read_text())
            settings = replace(PretrainSettings(**saved), stop_at_step=settings.stop_at_step)
        else:
            self.run_dir = self._new_run_dir(settings)
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        _seed(settings.seed)
        self.model, self.fresh = load_pretraining_model(settings.model, settings)
        self.feature_extractor = _feature_extractor(settings.model)
        self.codebook = CodebookUse(self.model)
        self.batches = self._batches()
        self.per_epoch = max(1, len(self.batches) // self.accelerator.num_processes)
        self.total = settings.steps or max(1, math.ceil(settings.epochs * self.per_epoch))
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=settings.learning_rate, weight_decay=settings.weight_decay)
        warmup = max(1, int(settings.warmup_fraction * self.total))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warmup,
                                          max(0.0, (self.total - s) / max(1, self.total - warmup))))
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        self.step, self.low_perplexity, self.good_step = 0, 0, -1
        if resume is not None:
            self._restore()

    def _new_run_dir(self, settings: PretrainSettings) -> Path:
        """The new run's folder, made (with its settings) by the first process and named
        to the others."""
        from accelerate.utils import broadcast_object_list

        name = [""]
        if self.accelerator.is_main_process:
            folder = new_stamped_dir(self.ws.root / RUNS, Path(settings.model).name)
            write_json_atomic(folder / "settings.json", asdict(settings))
            name = [folder.name]
        if self.accelerator.num_processes > 1:
            broadcast_object_list(name)
        return self.ws.root / RUNS / name[0]

    def _batches(self) -> list[list[int]]:
        from workbench.data import DurationBatchSampler

        durations = [p.duration for p in self.pieces]
        return DurationBatchSampler(durations, self.settings.max_batch_seconds,
                                    seed=self.settings.seed).batches(0)

    def _log(self, record: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        if self.on_event:
            self.on_event(record)

    def run(self, max_minutes: float) -> PretrainResult:
        import soundfile as sf

        s, unwrapped = self.settings, self.accelerator.unwrap_model(self.model)
        if self.step == 0:
            self._log({"event": "start", "steps": self.total, "pieces": len(self.pieces),
                       "world_size": self.accelerator.num_processes,
                       "seconds": round(sum(p.duration for p in self.pieces), 2),
                       "model": s.model, "fresh": self.fresh,
                       "codebook": codebook_size(unwrapped.config)})
        started, stopped, last = time.monotonic(), "schedule", {}
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        bar = tqdm(total=self.total, initial=self.step, desc="Pretraining", unit="step",
                   disable=not self.progress or not self.accelerator.is_main_process)
        self.model.train()
        while self.step < self.total and stopped == "schedule":
            epoch, within = divmod(self.step, self.per_epoch)
            order = np.random.default_rng(s.seed + epoch).permutation(len(self.batches))
            for position in range(within, self.per_epoch):
                index = order[position * world + rank]  # each process its own batch
                batch = [sf.read(self.ws.root / self.pieces[i].audio, dtype="float32")[0]
                         for i in self.batches[index]]
                last = self._step(unwrapped, batch)
                bar.update(1)
                if last.get("collapsed"):
                    stopped = "collapse"
                elif (self.step % s.checkpoint_every == 0 or self.step == self.total) \
                        and not self.low_perplexity:  # never a checkpoint of a sinking codebook
                    self._checkpoint()
                if max_minutes and time.monotonic() - started > max_minutes * 60 \
                        and stopped == "schedule":
                    stopped = "max_minutes"
                if s.stop_at_step and self.step >= s.stop_at_step and stopped == "schedule":
                    stopped = "stop_at_step"
                if stopped != "schedule" or self.step >= self.total:
                    break
        bar.close()
        if stopped != "collapse" and self.good_step != self.step and not self.low_perplexity:
            self._checkpoint()
        base = self.ws.root / BASES / self.run_dir.name
        base_dir = base if base.is_dir() else None
        self._log({"event": "end", "step": self.step, "stopped": stopped,
                   "base": str(base_dir or "")})
        if stopped == "collapse":
            raise PretrainCollapse(self.run_dir, base_dir, self.step, last)
        return PretrainResult(self.run_dir, base_dir, self.step, stopped, self.fresh, last)

    def _step(self, unwrapped, samples: list[np.ndarray]) -> dict:
        s = self.settings
        temperature = gumbel_temperature(s, self.step, self.total)
        unwrapped.set_gumbel_temperature(temperature)
        batch = pretraining_batch(unwrapped, samples, self.feature_extractor, s)
        batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
        self.codebook.mask = batch["mask_time_indices"]
        out = self.model(**batch)
        masked = max(1, int(batch["mask_time_indices"].sum()))
        loss = out.loss / masked
        if not torch.isfinite(loss):
            raise WorkbenchError(f"The pretraining loss became {loss.detach().item()} at step "
                                 f"{self.step}; lower learning_rate and --resume.")
        self.accelerator.backward(loss)
        if s.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        codebook = codebook_size(unwrapped.config)
        perplexity = float(out.codevector_perplexity.detach())
        record = {"event": "train", "step": self.step, "loss": round(loss.detach().item(), 5),
                  "contrastive": round(out.contrastive_loss.detach().item() / masked, 5),
                  "diversity": round(out.diversity_loss.detach().item() / masked, 5),
                  "perplexity": round(perplexity, 3), "codebook_used": round(
                      self.codebook.take(), 4), "temperature": round(temperature, 4),
                  "lr": self.scheduler.get_last_lr()[0]}
        self.low_perplexity = self.low_perplexity + 1 if perplexity < s.collapse_share * \
            codebook else 0
        if self.step % s.log_every == 0 or self.step in (1, self.total) or self.low_perplexity:
            self._log(record)
        if self.low_perplexity >= s.collapse_patience:
            record["collapsed"] = True
        return record

    def _checkpoint(self) -> None:
        """Model, optimiser and generators into ``checkpoint/``; the model into the
        workspace's bases (each replaced atomically: a kill leaves the previous ones)."""
        if not self.accelerator.is_main_process:
            return
        unwrapped = self.accelerator.unwrap_model(self.model)
        with staged_dir(self.run_dir / "checkpoint", what="saving a pretraining checkpoint",
                        fault="pretrain.checkpoint") as staging:
            unwrapped.save_pretrained(staging / "model", safe_serialization=True)
            torch.save({"optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "step": self.step,
                        "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                        "python": random.getstate()}, staging / "state.pt")
        with staged_dir(self.ws.root / BASES / self.run_dir.name, what="writing the base model",
                        fault="pretrain.base") as staging:
            unwrapped.save_pretrained(staging, safe_serialization=True)
            self.feature_extractor.save_pretrained(staging)
            write_json_atomic(staging / "pretraining.json", {
                "base": self.settings.model, "run": self.run_dir.name, "step": self.step,
                "fresh": self.fresh, "pieces": len(self.pieces)})
        self.good_step = self.step
        self._log({"event": "checkpoint", "step": self.step})

    def _restore(self) -> None:
        from safetensors.torch import load_file

        checkpoint = self.run_dir / "checkpoint"
        if not (checkpoint / "state.pt").is_file():
            raise WorkbenchError(f"{self.run_dir.name} has no checkpoint to resume from; "
                                 "start a new run.")
        unwrapped = self.accelerator.unwrap_model(self.model)
        unwrapped.load_state_dict(load_file(checkpoint / "model" / "model.safetensors"))
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = self.good_step = state["step"]
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        self._log({"event": "resume", "step": self.step})


class PretrainCollapse(WorkbenchError):
    """The codebook collapsed; the last checkpoint before it is kept."""

    def __init__(self, run_dir: Path, base_dir: Path | None, step: int, last: dict):
        kept = "no checkpoint was reached"
        if base_dir is not None:
            saved = json.loads((base_dir / "pretraining.json").read_text())["step"]
            kept = f"the base from step {saved} is kept in {base_dir}"
        super().__init__(
            f"Pretraining stopped at step {step}: the codebook collapsed (perplexity "
            f"{last.get('perplexity')}, {last.get('codebook_used', 0):.1%} of code vectors "
            f"used); {kept}. Lower learning_rate or raise diversity_loss_weight and start again.")
        self.run_dir, self.base_dir, self.step = run_dir, base_dir, step


def gumbel_temperature(settings: PretrainSettings, step: int, total: int) -> float:
    """The Gumbel softmax temperature at ``step`` of a ``total``-step run.

    Annealed geometrically from the maximum to the minimum. fairseq's 0.999995 a step (the
    default) reaches the minimum after about 277k of its 400k updates, so over a workbench
    run of hundreds of steps the temperature stays near its maximum; with
    ``gumbel_temperature_decay=0`` the decay is scaled to reach the minimum at
    ``gumbel_anneal_share`` of the run instead. On the demo language (150 steps, a fresh
    codebook) the default gave the better base: bench/RESULTS.md, issue 16.
    """
    s = settings
    decay = s.gumbel_temperature_decay or (s.min_gumbel_temperature / s.max_gumbel_temperature
                                           ) ** (1 / max(1.0, s.gumbel_anneal_share * total))
    return max(s.max_gumbel_temperature * decay ** step, s.min_gumbel_temperature)


def codebook_size(config) -> int:
    return int(config.num_codevector_groups * config.num_codevectors_per_group)


def _feature_extractor(name: str):
    from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

    from workbench.models import resolve_model_name

    try:
        return AutoFeatureExtractor.from_pretrained(resolve_model_name(name))
    except (OSError, ValueError):
        return Wav2Vec2FeatureExtractor(return_attention_mask=True)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
