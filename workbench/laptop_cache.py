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

from workbench.fsio import check_free_space, write_bytes_atomic, write_json_atomic
from workbench.manifest import Utterance

CACHE_VERSION = 1
RAM_LIMIT_BYTES = 2 << 30  # beyond this, cached states are read from disk batch by batch


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
    """Hidden states entering layer ``cut`` for every training clip (see the module doc)."""

    def __init__(self, folder: Path, cut: int, *, ram_limit: int = RAM_LIMIT_BYTES):
        self.folder = Path(folder)
        self.cut = cut
        self.ram_limit = ram_limit
        self.paths: dict[str, Path] = {}
        self.held: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def build(self, model, feature_extractor, utterances: list[Utterance], root: Path, *,
              device: torch.device | str = "cpu", progress: bool = False) -> CacheReport:
        """Compute the missing clips' states (one clip at a time, fp32, eval mode)."""
        started = time.perf_counter()
        hidden = model.config.hidden_size
        frames = [_frames(model, u) for u in utterances]
        estimate = sum(frames) * hidden * 4
        in_ram = estimate <= self.ram_limit
        missing = []
        for utterance in utterances:
            path = self.folder / f"{clip_key(utterance, root)}.npy"
            self.paths[utterance.id] = path
            if not path.exists():
                missing.append(utterance)
        if missing:
            share = sum(_frames(model, u) for u in missing) * hidden * 4
            check_free_space(self.folder.parent, share, "caching the lower layers' states")
            write_json_atomic(self.folder / "info.json",
                              {"model": str(getattr(model.config, "_name_or_path", "")),
                               "cut": self.cut, "hidden_size": hidden})
        was_training, home = model.training, next(model.parameters()).device
        model.eval().to(device)
        try:
            for utterance in tqdm(missing, desc=f"Caching layers below {self.cut}",
                                  unit="clip", disable=not progress):
                samples, _ = sf.read(root / utterance.audio, dtype="float32")
                states = capture_states(model, self.cut, feature_extractor, samples, device)
                buffer = io.BytesIO()
                np.save(buffer, states.numpy(), allow_pickle=False)
                write_bytes_atomic(self.paths[utterance.id], buffer.getvalue())
                if in_ram:
                    self.held[utterance.id] = states
        finally:
            model.to(home).train(was_training)
        if in_ram:
            for utterance in utterances:
                if utterance.id not in self.held:
                    self.held[utterance.id] = self._read(utterance.id)
        return CacheReport(folder=str(self.folder), cut=self.cut, clips=len(utterances),
                           computed=len(missing), reused=len(utterances) - len(missing),
                           seconds=round(time.perf_counter() - started, 3), bytes=estimate,
                           in_ram=in_ram)

    def states(self, utterance_id: str) -> torch.Tensor:
        """The clip's cached states, (frames, hidden)."""
        found = self.held.get(utterance_id)
        return found if found is not None else self._read(utterance_id)

    def _read(self, utterance_id: str) -> torch.Tensor:
        return torch.from_numpy(np.load(self.paths[utterance_id], allow_pickle=False))


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

    def stop(_module, args):
        raise Captured(args[0].detach())

    handle = model.base_model.encoder.layers[cut].register_forward_pre_hook(stop)
    try:
        model.base_model(**inputs)
    except Captured as captured:
        return captured.states[0].float().cpu().clone()
    finally:
        handle.remove()
    raise RuntimeError(f"layer {cut} never ran")  # the hook always fires in eval mode
