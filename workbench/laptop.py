"""Laptop mode (``model.mode=top``): train the top transformer layers on cached lower ones.

The feature encoder, the feature projection, the positional convolution and the transformer
layers below the cut ``K = num_hidden_layers - top_layers`` are frozen and run once per
training clip, in fp32 and eval mode; the states entering layer K are cached
(:mod:`workbench.laptop_cache`). Training then runs only layers K.. on the cached states,
plus, in the pre-layer-norm layout (``do_stable_layer_norm``: XLS-R, MMS, demo-base), the
encoder's final ``layer_norm`` (which runs after the last layer there; in the post-LN layout
of wav2vec2-base it runs before layer 0, so it is frozen with the bottom), then dropout and
the fresh CTC head, with the loss the model computes. The top layers start from their
pretrained weights.

How: the base model's ``forward`` is patched on the instance. 3-D ``input_values`` (cached
states, batch x frames x hidden) take the short path; 2-D audio goes through the model's own
forward, so everything after training uses the whole model unchanged. What is saved is a
standard ``Wav2Vec2ForCTC`` with all its layers. Dev scoring during training goes through
:class:`TopRecognizer`, which runs the frozen bottom over each dev clip once and keeps the
states, so each evaluation costs only the top layers (same logits, same scoring path).

Waveform augmentation (``data.augment``) works on perturbed copies of each clip cached beside
it (``data.augment_views``, :mod:`workbench.laptop_cache`): epoch e trains on copy e mod views.

SpecAugment in wav2vec 2.0 masks the projected features before layer 0 with a learned vector;
on cached states the same spans (``_compute_mask_indices`` with the config's
``mask_time_prob``/``mask_time_length`` and ``mask_feature_prob``/``mask_feature_length``)
are replaced by the clip's mean state (per channel, over its real frames). The mean, not
zeros: in the pre-LN layout the residual stream carries large per-channel offsets that the
layers above rely on, so a zero frame or channel would be far outside what they ever saw; the
mean removes the masked content while keeping those levels.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2BaseModelOutput,
    _compute_mask_indices,
)

from workbench import laptop_cache
from workbench.augment import Augmenter
from workbench.cpu_memory import release_freed_memory
from workbench.data import Example, _padded_labels, _sample_mask
from workbench.errors import WorkbenchError
from workbench.laptop_cache import CacheReport, StatesCache, model_key
from workbench.recognizer import Recognizer

SUPPORTED_TYPES = ("wav2vec2",)  # XLS-R and MMS are wav2vec2 checkpoints
# Default share of the transformer that trains (bench/RESULTS.md, "Laptop mode"): the top
# layers drift back towards the pretraining target (Pasad et al. 2021/2023), retraining the
# top few comes close to full transfer (Thomas et al. 2022), and on 2 cores each XLS-R layer
# costs about 1/24 of a full epoch, so 2 of 24 leaves room for many epochs in 30 minutes.
# At least two: one layer was the worst setting at every learning rate and epoch count tried
# on demo-base.
DEFAULT_TOP_SHARE = 1 / 12
DEFAULT_TOP_MIN = 2


def default_top_layers(num_hidden_layers: int) -> int:
    """Layers that train by default: a twelfth of the stack, at least two, at most all
    (24 -> 2, 48 -> 4, 12 and 6 -> 2, 1 -> 1)."""
    return min(num_hidden_layers,
               max(DEFAULT_TOP_MIN, math.ceil(num_hidden_layers * DEFAULT_TOP_SHARE)))


def top_cut(model_config, top_layers: int) -> int:
    """The cut K: layers below it are frozen and cached; ``top_layers`` 0 is the default.

    Raises:
        WorkbenchError: ``top_layers`` is negative or more than the model has.
    """
    total = int(model_config.num_hidden_layers)
    wanted = top_layers or default_top_layers(total)
    if not 1 <= wanted <= total:
        raise WorkbenchError(f"model.top_layers={top_layers}: this model has {total} "
                             f"transformer layers; give 1 to {total} (or 0 for the default, "
                             f"{default_top_layers(total)}).")
    return total - wanted


def check_top_settings(config) -> None:
    """Refuse settings laptop mode cannot honour, before any work.

    Raises:
        WorkbenchError: ``model.top_layers`` is negative, or augmentation is on with fewer
            than 2 ``data.augment_views``.
    """
    if config.data.augment > 0 and config.data.augment_views < 2:
        raise WorkbenchError(
            f"data.augment={config.data.augment} with data.augment_views="
            f"{config.data.augment_views}: in model.mode=top the lower layers run once per "
            "copy of a clip, so augmentation needs at least 2 views (the clip and a perturbed "
            "copy; the default is 4), or set data.augment=0.")
    if config.model.top_layers < 0:
        raise WorkbenchError(f"model.top_layers={config.model.top_layers}: give the number of "
                             "top transformer layers to train (0: the default).")


def trainable_prefixes(model, cut: int) -> tuple[str, ...]:
    """Parameter-name prefixes that train in top mode: layers cut.., (pre-LN) the final
    encoder layer_norm, and the CTC head."""
    prefix = model.base_model_prefix
    layers = len(model.base_model.encoder.layers)
    names = [f"{prefix}.encoder.layers.{i}." for i in range(cut, layers)]
    if getattr(model.config, "do_stable_layer_norm", False):
        names.append(f"{prefix}.encoder.layer_norm.")
    return (*names, "lm_head.")


def freeze_below(model, cut: int) -> None:
    """Freeze every parameter but the top layers', the pre-LN final norm's and the head's."""
    train = trainable_prefixes(model, cut)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(train)


def run_top(model, cut: int) -> None:
    """Patch ``model`` so 3-D ``input_values`` (cached states) run only layers ``cut``.."""
    base = model.base_model
    original = getattr(base, "_workbench_full_forward", base.forward)
    stable = bool(getattr(base.config, "do_stable_layer_norm", False))

    def forward(input_values, attention_mask=None, **kwargs):
        if input_values is None or input_values.dim() != 3:
            return original(input_values, attention_mask=attention_mask, **kwargs)
        return Wav2Vec2BaseModelOutput(
            last_hidden_state=top_forward(base, cut, input_values, attention_mask, stable),
            extract_features=None)

    base._workbench_full_forward = original
    base.forward = forward


def top_forward(base, cut: int, states: torch.Tensor, attention_mask: torch.Tensor | None,
                stable: bool) -> torch.Tensor:
    """Layers ``cut``.. (with layerdrop and masking in training) on cached states."""
    frames = None
    if attention_mask is not None:
        frames = base._get_feature_vector_attention_mask(states.shape[1], attention_mask)
    hidden = states
    if base.training:
        hidden = mask_states(hidden, base.config, frames)
    mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden,
                                     attention_mask=frames)
    layerdrop = base.config.layerdrop if base.training else 0.0
    for layer in base.encoder.layers[cut:]:
        if layerdrop > 0.0 and torch.rand([]) < layerdrop:
            continue
        hidden = layer(hidden, attention_mask=mask)
    return base.encoder.layer_norm(hidden) if stable else hidden


def mask_states(states: torch.Tensor, config, frames: torch.Tensor | None) -> torch.Tensor:
    """SpecAugment on cached states: masked time spans and channels become the clip's mean.

    Spans are drawn as wav2vec 2.0 draws them (``_compute_mask_indices``, NumPy's global
    generator, which checkpoints save), within each clip's real frames.
    """
    if not getattr(config, "apply_spec_augment", True):
        return states
    batch, length, hidden = states.shape
    real = (frames.bool() if frames is not None
            else torch.ones(batch, length, dtype=torch.bool, device=states.device))
    weights = real.unsqueeze(-1).to(states.dtype)
    mean = (states * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1)
    if config.mask_time_prob > 0:
        spans = _compute_mask_indices((batch, length), mask_prob=config.mask_time_prob,
                                      mask_length=config.mask_time_length,
                                      attention_mask=frames,
                                      min_masks=config.mask_time_min_masks)
        spans = torch.as_tensor(spans, dtype=torch.bool, device=states.device) & real
        states = torch.where(spans.unsqueeze(-1), mean, states)
    if config.mask_feature_prob > 0:
        channels = _compute_mask_indices((batch, hidden), mask_prob=config.mask_feature_prob,
                                         mask_length=config.mask_feature_length,
                                         min_masks=config.mask_feature_min_masks)
        channels = torch.as_tensor(channels, dtype=torch.bool, device=states.device)
        states = torch.where(channels.unsqueeze(1) & real.unsqueeze(-1), mean, states)
    return states


class TopCollator:
    """Batches of cached states (batch x frames x hidden, zero-padded) with labels and a
    sample mask from which the model derives frames and CTC lengths, as it does for audio
    (the fewest samples that give each clip's, or perturbed copy's, frame count)."""

    def __init__(self, cache: StatesCache, model_config, pad_to_frames: int = 0):
        self.cache = cache
        self.layers = list(zip(model_config.conv_kernel, model_config.conv_stride, strict=True))
        self.pad_to_frames = pad_to_frames  # batches padded to a multiple (0: the longest)

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        rows = [self.cache.states(e.id, e.view) for e in examples]
        frames = max(r.shape[0] for r in rows)
        if self.pad_to_frames > 0:
            frames = -(-frames // self.pad_to_frames) * self.pad_to_frames
        states = rows[0].new_zeros((len(rows), frames, rows[0].shape[1]))
        for index, row in enumerate(rows):
            states[index, : row.shape[0]] = row
        return {"labels": _padded_labels(examples), "input_values": states,
                "attention_mask": _sample_mask([self.samples_for(r.shape[0]) for r in rows])}

    def samples_for(self, frames: int) -> int:
        """The fewest audio samples the feature encoder turns into ``frames`` frames."""
        samples = frames
        for kernel, stride in reversed(self.layers):
            samples = (samples - 1) * stride + kernel
        return samples


DEV_STATES_LIMIT_BYTES = 512 << 20  # dev states held between evaluations, at most


@dataclass
class TopRecognizer(Recognizer):
    """Dev scoring in laptop mode: each dev clip's lower layers run once, at the first
    evaluation, and every evaluation runs only the top layers on the states kept (by a hash
    of the clip's input). The logits are the full model's (to float rounding): the frozen
    bottom gives the same states each time. Past ``DEV_STATES_LIMIT_BYTES`` a clip's states
    are computed afresh at each evaluation instead of kept."""

    cut: int = 0
    held: dict = field(default_factory=dict)
    held_bytes: int = 0

    def batch_logits(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        values, mask = inputs["input_values"], inputs.get("attention_mask")
        lengths = mask.sum(1).tolist() if mask is not None else [values.shape[1]] * len(values)
        rows = [self._states(row[:length]) for row, length in zip(values, lengths, strict=True)]
        states = rows[0].new_zeros((len(rows), max(r.shape[0] for r in rows), rows[0].shape[1]))
        for index, row in enumerate(rows):
            states[index, : row.shape[0]] = row
        sample_mask = None if mask is None else torch.from_numpy(mask).to(self.device)
        with torch.inference_mode(), self.native_kernels():
            logits = self.model(states, attention_mask=sample_mask).logits
        return logits.float().cpu().numpy()

    def _states(self, row: np.ndarray) -> torch.Tensor:
        key = hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest()
        found = self.held.get(key)
        if found is not None:
            return found
        with torch.inference_mode():
            inputs = {"input_values": torch.from_numpy(row[None]).to(self.device)}
            if getattr(self.feature_extractor, "return_attention_mask", False):
                inputs["attention_mask"] = torch.ones(1, len(row), dtype=torch.long,
                                                      device=self.device)
            states = laptop_cache.states_at(self.model, self.cut, inputs)[0]
        release_freed_memory()
        size = states.numel() * states.element_size()
        if self.held_bytes + size <= DEV_STATES_LIMIT_BYTES:
            self.held[key], self.held_bytes = states, self.held_bytes + size
        return states


@dataclass
class TopMode:
    """A model set up for laptop mode, its cache, and the collator that serves it."""

    cut: int
    top_layers: int
    cache: StatesCache
    report: CacheReport
    model_config: object

    def collator(self, pad_to_frames: int = 0) -> TopCollator:
        return TopCollator(self.cache, self.model_config, pad_to_frames)

    def dev_recognizer(self, model, processor, device) -> TopRecognizer:
        """The recognizer dev scoring uses for this run (it keeps the dev states)."""
        return TopRecognizer(model, processor, torch.device(device), cut=self.cut)

    def record(self) -> dict:
        """The metrics record for the run (``event: cache``)."""
        return {"event": "cache", "mode": "top", "top_layers": self.top_layers,
                **self.report.to_dict()}


def cache_root(workspace_root: Path) -> Path:
    return Path(workspace_root) / "cache" / "laptop"


KEPT_CACHES = 2  # laptop-mode caches a workspace keeps: the one in use and the last other


def prune_caches(workspace_root: Path, keep: Path, kept: int = KEPT_CACHES) -> list[Path]:
    """Remove a workspace's older laptop-mode caches (another model or cut point, or weights
    since changed): the one in use (marked used now) and the most recently used others, up
    to ``kept`` in all, stay. One training runs per workspace at a time, so none removed is
    in use; a run that needs one again recomputes it.

    Returns:
        The folders removed.
    """
    import shutil

    marker = Path(keep) / "info.json"
    if marker.exists():
        marker.touch()  # used now
    folders = [p for p in cache_root(workspace_root).iterdir()
               if p.is_dir() and p != Path(keep)]
    folders.sort(key=lambda p: _last_used(p), reverse=True)
    removed = folders[max(0, kept - 1):]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def _last_used(folder: Path) -> float:
    try:
        return (folder / "info.json").stat().st_mtime
    except OSError:
        return 0.0


def setup_top_mode(model, processor, ws, config, train_utterances, *,
                   device: torch.device | str = "cpu", progress: bool = False,
                   ram_limit: int | None = None, augmenter: Augmenter | None = None) -> TopMode:
    """Freeze the bottom, build (or reuse) the cache, and patch the model's forward.

    Call before the optimiser is built (it collects only trainable parameters). With an
    ``augmenter``, ``config.data.augment_views - 1`` perturbed copies of each clip are cached
    too (the training dataset's ``views`` must then be set to the same number).

    Raises:
        WorkbenchError: the model is not a wav2vec2-family checkpoint laptop mode supports,
            or ``model.top_layers`` does not fit it.
    """
    if model.config.model_type not in SUPPORTED_TYPES or getattr(model.config, "add_adapter",
                                                                  False):
        raise WorkbenchError(
            f"model.mode=top supports wav2vec2 checkpoints (wav2vec2, XLS-R, MMS); "
            f"{config.model.name} is a {model.config.model_type!r} model. Train it with "
            "model.mode=full.")
    cut = top_cut(model.config, config.model.top_layers)
    freeze_below(model, cut)
    key = model_key(model, cut, processor.feature_extractor)
    cache = StatesCache(cache_root(ws.root) / key[:20], cut,
                        ram_limit=laptop_cache.RAM_LIMIT_BYTES if ram_limit is None
                        else ram_limit, augmenter=augmenter,
                        views=config.data.augment_views if augmenter else 1)
    report = cache.build(model, processor.feature_extractor, train_utterances, ws.root,
                         device=device, progress=progress)
    prune_caches(ws.root, keep=cache.folder)
    run_top(model, cut)
    return TopMode(cut=cut, top_layers=model.config.num_hidden_layers - cut, cache=cache,
                   report=report, model_config=model.config)
