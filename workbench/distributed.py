"""Data-parallel training and the runtime chosen for the device.

Data parallelism keeps the training mathematically that of one process: every rank sees the
same global batch from the duration sampler, takes its own shard of it (shards balanced by
audio seconds), and weights each utterance's CTC loss by ``world_size / global_count``. DDP
averages gradients over ranks, so the averaged gradient is the gradient of the model's own
``ctc_loss_reduction="mean"`` over the whole global batch: the same step as one process.

The runtime choices (precision, TF32, attention kernel, fused optimiser, loader workers) are a
pure function of the device, so they are tested without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedType
from accelerate.utils import DistributedDataParallelKwargs
from torch.utils.data import Dataset, Sampler

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config import TrainConfig
    from workbench.data import ManifestDataset

IGNORE_INDEX = -100  # label padding, as the CTC collator writes it
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_LOADER_WORKERS = 4


# --------------------------------------------------------------------------- runtime settings


@dataclass(frozen=True)
class RuntimeSettings:
    """How a training process uses its device."""

    device_type: str
    precision: str
    tf32: bool
    attn_implementation: str
    fused_adamw: bool
    num_workers: int
    pin_memory: bool
    persistent_workers: bool

    def to_dict(self) -> dict:
        return asdict(self)


def choose_runtime(device_type: str, cpu_count: int, bf16_supported: bool, *,
                   precision: str = "auto", local_world_size: int = 1) -> RuntimeSettings:
    """Settings for ``device_type`` ("cpu" or "cuda").

    On a GPU: bf16 autocast where the GPU has it, else fp16 (accelerate scales the loss), TF32
    matrix products, the fused AdamW kernel, and loader workers that decode audio while the GPU
    computes (up to 4 per process, sharing the cores among the processes of the machine). On a
    CPU everything stays fp32 and in one process: workers would compete with the model for the
    same cores.

    Raises:
        WorkbenchError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise WorkbenchError(f"run.precision={precision!r}: choose {', '.join(PRECISIONS)}.")
    cuda = device_type == "cuda"
    if precision == "auto":
        precision = ("bf16" if bf16_supported else "fp16") if cuda else "fp32"
    workers = min(MAX_LOADER_WORKERS, cpu_count // (2 * max(1, local_world_size))) if cuda else 0
    return RuntimeSettings(
        device_type=device_type, precision=precision, tf32=cuda, attn_implementation="sdpa",
        fused_adamw=cuda, num_workers=workers, pin_memory=cuda and workers > 0,
        persistent_workers=workers > 0,
    )


def apply_tf32(enabled: bool) -> None:
    """Let fp32 matrix products and convolutions use TF32 tensor cores (GPU only)."""
    if not enabled:
        return
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        torch.backends.cudnn.conv.fp32_precision = "tf32"
    else:  # torch before 2.9
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def usable_cpus() -> int:
    """Cores this process may run on (a batch scheduler's share, not the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def local_world_size() -> int:
    """Processes on this machine, as torchrun and accelerate launch announce it."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)


# --------------------------------------------------------------------------- sharding


def shard_batch(batch: Sequence[int], durations: Sequence[float],
                world_size: int) -> list[list[int]]:
    """Split one global batch into ``world_size`` shards of near-equal audio.

    Longest first, each to the shard with the least audio so far (then the fewest items, then
    the lowest rank): deterministic, so every rank computes the same split.
    """
    shards: list[list[int]] = [[] for _ in range(world_size)]
    totals = [0.0] * world_size
    for index in sorted(batch, key=lambda i: (-durations[i], i)):
        rank = min(range(world_size), key=lambda r: (totals[r], len(shards[r]), r))
        shards[rank].append(index)
        totals[rank] += durations[index]
    return [sorted(shard) for shard in shards]


WeightedIndex = tuple[int, float, int]  # utterance, loss weight, epoch


class ShardedBatchSampler(Sampler[list[WeightedIndex]]):
    """This rank's shard of every global batch, each index with its loss weight.

    The weight is ``world_size / global_count`` (see the module docstring). A rank whose shard
    of a very small batch is empty gets one utterance of the batch with weight 0, so every rank
    still runs the forward and backward pass DDP waits for. Each key also carries the epoch,
    which seeds the clip's augmentation.
    """

    def __init__(self, batches: Sampler[list[int]], durations: Sequence[float], *,
                 rank: int = 0, world_size: int = 1):
        self.base = batches
        self.durations = durations
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[list[WeightedIndex]]:
        epoch = getattr(self.base, "epoch", 0)
        for batch in self.base:
            weight = self.world_size / len(batch)
            mine = shard_batch(batch, self.durations, self.world_size)[self.rank]
            yield [(i, weight, epoch) for i in mine] if mine else [(batch[0], 0.0, epoch)]

    def __len__(self) -> int:
        return len(self.base)


class WeightedDataset(Dataset):
    """A dataset read by ``(index, weight, epoch)`` keys; items are ``(example, weight)``."""

    def __init__(self, dataset: ManifestDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: WeightedIndex):
        index, weight, epoch = key  # the batch's weight, times the utterance's own
        return self.dataset.example(index, epoch), weight * self.dataset.weights[index]


class WeightedCollator:
    """The CTC collator's batch plus a ``loss_weights`` tensor (one weight per utterance)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, items: list) -> dict[str, torch.Tensor]:
        batch = self.collator([example for example, _ in items])
        batch["loss_weights"] = torch.tensor([weight for _, weight in items],
                                             dtype=torch.float32)
        return batch


# --------------------------------------------------------------------------- loss


def weighted_ctc_loss(logits: torch.Tensor, labels: torch.Tensor, logit_lengths: torch.Tensor,
                      weights: torch.Tensor, *, blank: int, zero_infinity: bool) -> torch.Tensor:
    """``sum_i weights_i * CTC_i / target_length_i``.

    With every weight ``1 / batch_size`` this is what a wav2vec2-family model computes with
    ``ctc_loss_reduction="mean"`` (transformers' ``ForCTCLoss``, torch's "mean" reduction).
    """
    labels = labels.to(logits.device)
    mask = (labels != IGNORE_INDEX) & (labels != blank)
    target_lengths = mask.sum(-1)
    log_probs = torch.nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32)
    with torch.backends.cudnn.flags(enabled=False):
        losses = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1), labels.masked_select(mask), logit_lengths,
            target_lengths, blank=blank, reduction="none", zero_infinity=zero_infinity,
        )
    per_utterance = losses / target_lengths.clamp(min=1).to(losses.dtype)
    return (per_utterance * weights.to(losses.device, losses.dtype)).sum()


def logit_lengths(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Frames of output per utterance, as the model computes them for its own loss."""
    if "attention_mask" in batch:
        samples = batch["attention_mask"].sum(-1)
    else:
        values = batch["input_values"]
        samples = torch.full((values.shape[0],), values.shape[1], device=values.device)
    return model._get_feat_extract_output_lengths(samples).to(torch.long)


# --------------------------------------------------------------------------- accelerator


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
