"""The laptop-mode cache: each training clip's hidden states at the cut point, computed once.

Laid out as ``<workspace>/cache/laptop/<model key>/<clip key>.npy`` (float32, frames x
hidden), each file written atomically (:mod:`workbench.fsio`). The model key hashes the
frozen weights that produce the states (feature encoder, feature projection, positional
convolution and the layers below the cut), the cut point, the layer-norm layout and the
feature extractor's settings; the clip key adds the clip's audio hash (``Utterance.sha1``,
the decoded samples). A changed model, cut point or clip so finds no file and is computed
afresh; stale folders are never read and may be deleted at any time.

The files persist, so a second run, a resumed run or a run with other settings on the same
model and cut reuses them. While the whole cache fits ``ram_limit`` it is also held in memory;
beyond that, batches read their clips from disk (a file read per clip, no computation).

Waveform augmentation (``data.augment``) cannot change a cached clip between epochs; instead
each clip gets ``data.augment_views - 1`` perturbed copies, cached beside it as
``<clip key>-a<settings hash>-v<view>.npy`` (drawn by :mod:`workbench.augment`, seeded by the
clip's audio, so they too are reused), and the epochs take the clip and its copies in turn.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from workbench.augment import SPEED_RANGE, Augmenter
from workbench.cpu_memory import release_freed_memory, without_onednn
from workbench.fsio import check_free_space, write_bytes_atomic, write_json_atomic
from workbench.manifest import Utterance

CACHE_VERSION = 1
RAM_LIMIT_BYTES = 2 << 30  # beyond this, cached states are read from disk batch by batch
AUGMENT_KEY_VERSION = 1  # part of a perturbed copy's file name: bump when augment.py changes
MAX_VIEW_STRETCH = 1 / SPEED_RANGE[0]  # a perturbed copy is at most this much longer


@dataclass(frozen=True)
class CacheReport:
    """What building the cache did (logged as the run's ``cache`` event)."""

    folder: str
    cut: int
    clips: int
    computed: int
    reused: int
    seconds: float
    bytes: int
    in_ram: bool
    views: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


class Captured(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the hook on the first top layer to stop the forward pass there."""

    def __init__(self, states: torch.Tensor):
        super().__init__("captured")
        self.states = states


def model_key(model, cut: int, feature_extractor) -> str:
    """Hash of everything that decides the states at ``cut``: frozen weights, cut, layout."""
    base = model.base_model
    digest = hashlib.blake2b(digest_size=16)
    layout = {"version": CACHE_VERSION, "cut": cut, "type": model.config.model_type,
              "stable": bool(getattr(model.config, "do_stable_layer_norm", False)),
              "feat_norm": getattr(model.config, "feat_extract_norm", ""),
              "normalize": bool(getattr(feature_extractor, "do_normalize", True)),
              "mask": bool(getattr(feature_extractor, "return_attention_mask", False))}
    digest.update(json.dumps(layout, sort_keys=True).encode())
    for name, tensor in sorted(frozen_tensors(base, cut).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()


def frozen_tensors(base, cut: int) -> dict[str, torch.Tensor]:
    """Parameters and buffers of ``base`` that produce the states entering layer ``cut``."""
    tensors = dict(base.named_parameters())
    tensors.update(dict(base.named_buffers()))
    above = tuple(f"encoder.layers.{i}." for i in range(cut, len(base.encoder.layers)))
    unused = ("masked_spec_embed",)  # only SpecAugment uses it, never the eval-mode cache
    stable = bool(getattr(base.config, "do_stable_layer_norm", False))
    after = ("encoder.layer_norm.",) if stable else ()  # pre-LN: runs after the last layer
    return {k: v for k, v in tensors.items()
            if not k.startswith(above + after) and k not in unused}


class StatesCache:
    """Hidden states entering layer ``cut`` for every training clip (see the module doc).

    With an ``augmenter`` and ``views`` > 1, each clip also has ``views - 1`` perturbed copies
    (view 0 is the clip itself), each cached like a clip of its own.
    """

    def __init__(self, folder: Path, cut: int, *, ram_limit: int = RAM_LIMIT_BYTES,
                 augmenter: Augmenter | None = None, views: int = 1):
        self.folder = Path(folder)
        self.cut = cut
        self.ram_limit = ram_limit
        self.augmenter = augmenter
        self.views = views if augmenter is not None else 1
        self.paths: dict[tuple[str, int], Path] = {}
        self.held: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def build(self, model, feature_extractor, utterances: list[Utterance], root: Path, *,
              device: torch.device | str = "cpu", progress: bool = False) -> CacheReport:
        """Compute the missing clips' (and views') states, one at a time, fp32, eval mode."""
        started = time.perf_counter()
        hidden = model.config.hidden_size
        estimate = sum(_frames(model, u) for u in utterances) * hidden * 4
        estimate = round(estimate * (1 + (self.views - 1) * MAX_VIEW_STRETCH))
        in_ram = estimate <= self.ram_limit
        missing = []
        for utterance in utterances:
            key = clip_key(utterance, root)
            for view in range(self.views):
                path = self.folder / f"{key}{self._view_suffix(view)}.npy"
                self.paths[utterance.id, view] = path
                if not path.exists():
                    missing.append((utterance, view))
        if missing:
            share = sum(_frames(model, u) * (1 if v == 0 else MAX_VIEW_STRETCH)
                        for u, v in missing) * hidden * 4
            check_free_space(self.folder.parent, round(share),
                             "caching the lower layers' states")
            write_json_atomic(self.folder / "info.json",
                              {"model": str(getattr(model.config, "_name_or_path", "")),
                               "cut": self.cut, "hidden_size": hidden})
        was_training, home = model.training, next(model.parameters()).device
        model.eval().to(device)
        try:
            for utterance, view in tqdm(missing, desc=f"Caching layers below {self.cut}",
                                        unit="clip", disable=not progress):
                samples = self._samples(utterance, view, root)
                states = capture_states(model, self.cut, feature_extractor, samples, device)
                buffer = io.BytesIO()
                np.save(buffer, states.numpy(), allow_pickle=False)
                write_bytes_atomic(self.paths[utterance.id, view], buffer.getvalue())
                if in_ram:
                    self.held[utterance.id, view] = states
                release_freed_memory()
        finally:
            model.to(home).train(was_training)
        if in_ram:
            for key in self.paths:
                if key not in self.held:
                    self.held[key] = self._read(key)
        return CacheReport(folder=str(self.folder), cut=self.cut, clips=len(utterances),
                           computed=len(missing),
                           reused=len(utterances) * self.views - len(missing),
                           seconds=round(time.perf_counter() - started, 3), bytes=estimate,
                           in_ram=in_ram, views=self.views)

    def states(self, utterance_id: str, view: int = 0) -> torch.Tensor:
        """The cached states of the clip (or of its perturbed copy ``view``), (frames, hidden)."""
        key = (utterance_id, view % self.views)
        found = self.held.get(key)
        return found if found is not None else self._read(key)

    def _read(self, key: tuple[str, int]) -> torch.Tensor:
        return torch.from_numpy(np.load(self.paths[key], allow_pickle=False))

    def _view_suffix(self, view: int) -> str:
        """'' for the clip itself; else the augmentation settings' hash and the view."""
        if view == 0:
            return ""
        settings = f"{AUGMENT_KEY_VERSION}:{self.augmenter.probability!r}:{self.augmenter.seed}"
        return f"-a{hashlib.blake2b(settings.encode(), digest_size=4).hexdigest()}-v{view}"

    def _samples(self, utterance: Utterance, view: int, root: Path) -> np.ndarray:
        samples, _ = sf.read(root / utterance.audio, dtype="float32")
        if view == 0:
            return samples
        # Seeded by the clip's audio, not its place in the split: the same clip gets the same
        # copies in every run with these settings, so they can be reused.
        return self.augmenter(samples, int(clip_key(utterance, root)[:8], 16), view)


def clip_key(utterance: Utterance, root: Path) -> str:
    """The clip's audio hash (its manifest sha1, else the file's own)."""
    sha1 = utterance.sha1 or hashlib.sha1((root / utterance.audio).read_bytes()).hexdigest()
    return hashlib.blake2b(sha1.encode(), digest_size=12).hexdigest()


def _frames(model, utterance: Utterance) -> int:
    samples = round(utterance.duration * 16_000)
    return int(model._get_feat_extract_output_lengths(torch.tensor(samples)))


def capture_states(model, cut: int, feature_extractor, samples: np.ndarray,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The states entering transformer layer ``cut`` for one clip, (frames, hidden), on CPU.

    Runs the model's own forward pass on the audio and stops it at layer ``cut`` (a hook
    raises :class:`Captured`), so the states are exactly what the full model computes there.
    """
    features = feature_extractor(samples, sampling_rate=feature_extractor.sampling_rate,
                                 return_tensors="pt")
    inputs = {k: v.to(device) for k, v in features.items()
              if k in ("input_values", "attention_mask")}
    return states_at(model, cut, inputs)[0].float().cpu().clone()


def states_at(model, cut: int, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The states entering layer ``cut`` for a batch the feature extractor made,
    (batch, frames, hidden), where the model computes them."""

    def stop(_module, args):
        raise Captured(args[0].detach())

    handle = model.base_model.encoder.layers[cut].register_forward_pre_hook(stop)
    try:
        with without_onednn():  # one compiled kernel kept per clip length otherwise
            model.base_model(**inputs)
    except Captured as captured:
        return captured.states
    finally:
        handle.remove()
    raise RuntimeError(f"layer {cut} never ran")  # the hook always fires in eval mode
