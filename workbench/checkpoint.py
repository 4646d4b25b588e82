"""A run's resume point: training state, random generators, checkpoints and the best model.

A checkpoint (``checkpoints/last`` of a run, see :mod:`workbench.run`) holds the weights, the
optimiser, the schedule, the fp16 loss scaler, every random generator's state (Python, NumPy,
torch, CUDA; one set per process) and the :class:`TrainState`, so a resumed run continues
exactly where it was taken. Checkpoints and ``model/`` are written under a staging name and
swapped in whole (``workbench.fsio``): a kill or a full disk at any moment leaves the previous
complete one.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.fsio import fault_point, staged_dir
from workbench.run import LAST, MODEL, Run

RANK_SEED_STRIDE = 1_000_003  # other processes draw their own masks and dropout


@dataclass
class TrainState:
    """Where a run stands; saved with every checkpoint.

    Attributes:
        step: Optimiser steps done.
        epoch: Current epoch.
        batch_in_epoch: Batches of this epoch already served.
        best_cer: Best dev CER so far (inf before the first evaluation).
        best_wer: Dev WER at that evaluation.
        best_step: Step of the best evaluation (the model in ``model/``).
        elapsed_s: Training time so far.
        metrics_bytes: Size of metrics.jsonl when the checkpoint was taken (a resume cuts the
            lines logged after it, which it logs again).
        data: Fingerprint of the training set, its labels and the vocabulary.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_cer: float = math.inf
    best_wer: float = math.nan
    best_step: int = 0
    elapsed_s: float = 0.0
    metrics_bytes: int = 0
    data: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> TrainState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- randomness


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed Python, NumPy (SpecAugment masks), torch and CUDA (dropout, layerdrop).

    Rank 0 keeps the single-process streams; other processes get their own.
    """
    seed = seed + RANK_SEED_STRIDE * rank
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # and every CUDA device


def capture_rng() -> dict:
    """Every generator's state, in a form ``torch.load(weights_only=True)`` reads back."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(position), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Put back what :func:`capture_rng` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- checkpoints


FROZEN_FILE = "frozen.json"


def frozen_record(model) -> dict:
    """The parameters that do not train (a frozen base, feature encoder or lower layers):
    their names, and a hash of their values, so a checkpoint can leave them out and a
    resume can check that the model it loads has the same ones."""
    import hashlib

    names = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
    digest = hashlib.blake2b(digest_size=16)
    tensors = dict(model.named_parameters())
    for name in names:
        digest.update(name.encode())
        digest.update(tensors[name].detach().cpu().contiguous().view(torch.uint8).numpy())
    return {"names": names, "fingerprint": digest.hexdigest()}


def checkpoint_bytes(weights: dict[str, torch.Tensor], optimizer) -> int:
    """About what a checkpoint takes on disk: the weights and the optimiser's moments."""
    size = sum(t.numel() * t.element_size() for t in weights.values())
    for group in optimizer.state.values():
        size += sum(t.numel() * t.element_size() for t in group.values()
                    if isinstance(t, torch.Tensor))
    return size


def save_checkpoint(run: Run, weights: dict[str, torch.Tensor], optimizer, scheduler, scaler,
                    state: TrainState, rng: list[dict], frozen: dict | None = None) -> Path:
    """Write the resume point, replacing the previous one atomically.

    A stop at any moment (a kill, a full disk) leaves one complete checkpoint: the new one
    is written under a staging name and swapped in whole.

    Args:
        run: The run.
        weights: The model's state dict (gathered from every process under FSDP/DeepSpeed).
        optimizer, scheduler: Their state is saved.
        scaler: The fp16 loss scaler, or None.
        state: Where the run stands.
        rng: Every process's generator states (:func:`capture_rng`), by rank.
        frozen: :func:`frozen_record` of the model: those weights are left out (they are
            the base's own; adapter mode's frozen 1B base is 4 GB a checkpoint otherwise).

    Raises:
        DiskFullError: The disk cannot hold it (the previous checkpoint is kept).
    """
    from safetensors.torch import save_file

    left_out = set(frozen["names"]) if frozen else set()
    cpu_weights = {k: v.detach().contiguous().cpu() for k, v in weights.items()
                   if k not in left_out}
    resume = f"resume the run (`workbench train -w WS --resume --run {run.name}`)"
    with staged_dir(run.checkpoints_dir / LAST, what="saving the checkpoint",
                    needed=checkpoint_bytes(cpu_weights, optimizer), then=resume,
                    fault="checkpoint") as staging:
        save_file(cpu_weights, staging / "model.safetensors")
        fault_point("checkpoint.weights")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng}, staging / "training_state.pt")
        (staging / "state.json").write_text(json.dumps(asdict(state)), encoding="utf-8")
        if frozen:
            (staging / FROZEN_FILE).write_text(json.dumps(frozen), encoding="utf-8")
    return run.checkpoints_dir / LAST


def load_checkpoint(run: Run, model, optimizer, scheduler, scaler) -> tuple[TrainState,
                                                                           list[dict]]:
    """Restore model, optimiser, schedule and loss scaler; return the state and RNG states.

    Raises:
        WorkbenchError: The checkpoint's weights do not fit this model exactly (another
            architecture or vocabulary), or its files are unreadable.
    """
    from safetensors.torch import load_file

    checkpoint = run.last_checkpoint
    try:
        weights = load_file(checkpoint / "model.safetensors")
        extra = torch.load(checkpoint / "training_state.pt", weights_only=True)
        state = TrainState.from_dict(
            json.loads((checkpoint / "state.json").read_text(encoding="utf-8")))
        frozen = json.loads((checkpoint / FROZEN_FILE).read_text(encoding="utf-8")) \
            if (checkpoint / FROZEN_FILE).is_file() else None
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise WorkbenchError(f"The checkpoint of run {run.name} cannot be read ({err}); "
                             "start a new run.") from err
    if frozen:
        if frozen_record(model) != frozen:
            raise WorkbenchError(
                f"The checkpoint of run {run.name} left out the weights that do not train, "
                "and the model loaded to resume it has other ones (its base checkpoint "
                "changed, or another mode or cut): resume with the run's own base, or start "
                "a new run.")
        current = model.state_dict()
        weights = {**{name: current[name] for name in frozen["names"]}, **weights}
    _load_weights_exactly(model, weights, run)
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    if scaler is not None and extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    return state, list(extra.get("rng") or [])


def _load_weights_exactly(model, weights: dict[str, torch.Tensor], run: Run) -> None:
    """Every weight of the model from the checkpoint, none missing, none extra."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    shapes = sorted(k for k in set(expected) & set(weights)
                    if expected[k].shape != weights[k].shape)
    if missing or extra or shapes:
        found = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(extra[:3])}" if extra else "",
            f"shape differs for {', '.join(shapes[:3])}" if shapes else "") if part)
        raise WorkbenchError(
            f"The checkpoint of run {run.name} does not fit the model it is resumed with "
            f"({found}): resuming would train partly from fresh weights. Resume with the "
            "run's own config.yaml and vocabulary, or start a new run.")
    model.load_state_dict(weights, strict=True)


def export_model(run: Run, model, processor, state_dict: dict | None = None, *,
                 adapter_lang: str = "") -> Path:
    """Save the model and processor in Hugging Face format to ``run/model``, atomically.

    With ``adapter_lang`` (mode=adapter) its adapters and head are also saved as
    ``adapter.<lang>.safetensors`` beside it (:mod:`workbench.adapters`).

    Raises:
        DiskFullError: The disk cannot hold it (the previous model/ is kept).
    """
    weights = state_dict if state_dict is not None else model.state_dict()
    needed = sum(t.numel() * t.element_size() for t in weights.values())
    with staged_dir(run.root / MODEL, what="saving the best model", needed=needed,
                    then=f"resume the run (`workbench train -w WS --resume --run {run.name}`)",
                    fault="export") as staging:
        model.save_pretrained(staging, safe_serialization=True, state_dict=state_dict)
        if adapter_lang:
            from workbench.adapters import save_adapter

            save_adapter(model, staging, adapter_lang, state_dict)
        fault_point("export.weights")
        processor.save_pretrained(staging)
    return run.root / MODEL
