"""The measuring child of :mod:`workbench.estimate`: real training steps timed in a process
of their own (``python -m workbench.estimate_child WS CONFIG STEPS KEY``), so that its peak
RSS is the training's; prints the :class:`~workbench.estimate.Measurement` as JSON."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from workbench.config import TrainConfig, load_config, resolve_schedule
from workbench.estimate import Measurement
from workbench.workspace import Workspace


def _measure_here(ws: Workspace, config: TrainConfig, steps: int, key: str) -> Measurement:
    """The child's side of :func:`measure`: load as training does, time, report."""
    import torch

    from workbench.data import CTCCollator, DurationBatchSampler
    from workbench.distributed import logit_lengths, make_accelerator, weighted_ctc_loss
    from workbench.text import load_profile
    from workbench.train import (
        _encoder_cache,
        build_model,
        build_optimizer,
        build_processor,
        load_training_data,
    )
    from workbench.vocab import load_vocab

    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    accelerator, runtime = make_accelerator(config)
    vocab = load_vocab(ws.vocab_path)
    data = load_training_data(ws, vocab, load_profile(ws.profile_path),
                              pseudolabels=config.data.pseudolabels,
                              pseudo_weight=config.data.pseudo_weight)
    model = build_model(config, vocab, runtime.attn_implementation)
    adapters = _adapter_parameters(model)
    if config.model.mode == "adapter":
        from workbench.adapters import prepare_adapter_training
        prepare_adapter_training(model, config.model.name)
    processor = build_processor(ws, model)
    durations = data.train.durations
    cache = _encoder_cache(model, processor, config, runtime)
    collate = CTCCollator(processor.feature_extractor, encoder_cache=cache)
    schedule = resolve_schedule(config, 1)
    optimizer, _ = build_optimizer(model, config, schedule, runtime.fused_adamw)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    batches = sorted(DurationBatchSampler(durations, config.data.max_batch_seconds).batches(0),
                     key=lambda b: -len(b) * max(durations[i] for i in b))[:steps + 1]
    batches = (batches * (steps + 1))[:steps + 1]
    _touch(unwrapped)  # weights loaded lazily (memory-mapped) count once resident
    base_mb = _rss_mb()
    loading_peak_mb = _peak_mb()  # transients of loading count towards the run's peak
    top_steps = (_measure_top_steps(unwrapped, processor, data, batches[:3], config,
                                    accelerator.device)
                 if config.model.mode == "full" else (0.0, 0))
    _reset_peak()  # the full steps' peak is their own
    timings = []
    model.train()
    for batch in batches:
        examples = [data.train[i] for i in batch]
        started = time.perf_counter()
        inputs = collate(examples)
        collated = time.perf_counter()
        collate(examples)  # again: the encoder features now come from the cache
        cached_at = time.perf_counter()
        inputs = {k: v.to(accelerator.device) for k, v in inputs.items()}
        labels = inputs.pop("labels")
        with accelerator.autocast():
            logits = model(**inputs).logits
        loss = weighted_ctc_loss(logits.float(), labels, logit_lengths(unwrapped, inputs),
                                 torch.full((len(batch),), 1 / len(batch)),
                                 blank=unwrapped.config.pad_token_id, zero_infinity=True)
        _sync()
        forward = time.perf_counter()
        accelerator.backward(loss)
        _sync()
        backward = time.perf_counter()
        if config.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync()
        done = time.perf_counter()
        audio = sum(durations[i] for i in batch)
        padded = len(batch) * max(durations[i] for i in batch)
        timings.append((padded, forward - cached_at, backward - forward, done - backward,
                        cached_at - collated, (collated - started) - (cached_at - collated),
                        audio))
    timed = timings[1:] or timings
    padded = sum(t[0] for t in timed) / len(timed)
    mean = [sum(t[i] for t in timed) / len(timed) for i in range(1, 5)]
    audio = sum(t[6] for t in timings)
    encoder_s_per_s = (sum(max(0.0, t[5]) for t in timed) / sum(t[6] for t in timed)
                       if cache is not None else 0.0)
    cache_mb = cache.bytes / 2**20 if cache is not None else 0.0
    inference = _time_inference(unwrapped, processor, data, batches[0], accelerator.device)
    top = (_probe_top(unwrapped, data, batches[0], accelerator.device)
           if config.model.mode == "full" else (0.0, 0.0, 0.0))
    params = sum(p.numel() for p in unwrapped.parameters())
    return Measurement(
        key=key, model=config.model.name, params=params,
        trainable=sum(p.numel() for p in unwrapped.parameters() if p.requires_grad),
        layers=int(getattr(unwrapped.config, "num_hidden_layers", 0)),
        layer_share=_layer_share(unwrapped), adapters=adapters, batch_seconds=padded,
        steps=len(timed), forward_s=mean[0], backward_s=mean[1], optimizer_s=mean[2],
        data_s=mean[3], encoder_s_per_s=encoder_s_per_s, inference_s_per_s=inference,
        base_mb=base_mb, peak_mb=max(loading_peak_mb, _peak_mb()), encoder_cache_mb=cache_mb,
        encoder_mb_per_s=cache_mb / audio, device=str(accelerator.device),
        threads=torch.get_num_threads(), mode=config.model.mode,
        hidden_size=int(getattr(unwrapped.config, "hidden_size", 0)),
        top_layer_mb=top[0], top_rest_mb=top[1], top_probe_seconds=top[2],
        top_step_mb=top_steps[0], top_step_layers=top_steps[1])


def _touch(model) -> None:
    """Read every weight once, so that the RSS before the first step includes them all."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            param.sum()


def _time_inference(model, processor, data, batch: list[int], device) -> float:
    """Seconds of dev scoring per second of audio (raw audio through the whole model)."""
    import torch

    model.eval()
    examples = [data.train[i].samples for i in batch]
    features = processor.feature_extractor(examples, sampling_rate=16000, padding=True,
                                           return_tensors="pt")
    started = time.perf_counter()
    with torch.no_grad():
        model(**{k: v.to(device) for k, v in features.items()})
    _sync()
    model.train()
    return (time.perf_counter() - started) / (sum(len(e) for e in examples) / 16000)


def _measure_top_steps(model, processor, data, batches: list[list[int]], config,
                       device) -> tuple[float, int]:
    """Laptop mode's steps for real, before the full ones, on ``batches`` (the largest):
    how many MiB the process grows by over them (activations, gradients, AdamW's state and
    what the allocator keeps), with the run's top layers (``model.top_layers`` or the
    default) trained; and that layer count. The states of the batches' clips are computed
    as the cache computes them, and held. (0, 0) where laptop mode cannot cut."""
    import torch

    from workbench.cpu_memory import release_freed_memory
    from workbench.laptop import TopCollator, default_top_layers, run_top, trainable_prefixes
    from workbench.laptop_cache import capture_states

    layers = int(getattr(model.config, "num_hidden_layers", 0))
    if layers < 2 or not hasattr(getattr(model, "base_model", None), "encoder"):
        return 0.0, 0
    top_layers = min(layers, config.model.top_layers or default_top_layers(layers))
    cut = layers - top_layers
    model.eval()
    held = {}
    with torch.no_grad():
        for index in {i for batch in batches for i in batch}:
            example = data.train[index]
            held[example.id] = capture_states(model, cut, processor.feature_extractor,
                                              example.samples, device)
            release_freed_memory()
    model.train()
    prefixes = trainable_prefixes(model, cut)
    optimizer = torch.optim.AdamW([p for n, p in model.named_parameters()
                                   if n.startswith(prefixes)], lr=1e-9)
    collate = TopCollator(_HeldStates(held), model.config)
    run_top(model, cut)
    start = _rss_mb()
    _reset_peak()
    try:
        for batch in batches:
            _laptop_loss(model, collate, [data.train[i] for i in batch], device).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        grown = _peak_mb() - start
    finally:
        del model.base_model.forward  # the full forward again (run_top set it on the instance)
    del optimizer, held
    release_freed_memory()
    return max(0.0, grown), top_layers


def _laptop_loss(model, collate, examples: list, device):
    """The CTC loss of laptop mode's step on ``examples`` (``model`` patched by ``run_top``)."""
    import torch

    from workbench.distributed import logit_lengths, weighted_ctc_loss

    inputs = {k: v.to(device) for k, v in collate(examples).items()}
    labels = inputs.pop("labels")
    logits = model(**inputs).logits
    return weighted_ctc_loss(logits.float(), labels, logit_lengths(model, inputs),
                             torch.full((len(examples),), 1 / len(examples)),
                             blank=model.config.pad_token_id, zero_infinity=True)


class _HeldStates:
    """A stand-in for laptop mode's states cache: each clip's states, held in a dict."""

    def __init__(self, held: dict):
        self.held = held

    def states(self, utterance_id: str, view: int = 0):
        return self.held[utterance_id]


def _probe_top(model, data, batch: list[int], device) -> tuple[float, float, float]:
    """Laptop mode's step on ``batch``: MiB held for backward per top layer and for the rest
    (final norm, head, loss), and the batch's padded seconds. Counted by saved-tensor hooks,
    which the allocator's held memory cannot hide (an RSS reading after the full steps
    grows by nothing). The states are zeros of each clip's frame count: only shapes matter.
    (0, 0, 0) for a model laptop mode cannot cut at two layers."""
    import torch

    from workbench.laptop import TopCollator, run_top

    layers = int(getattr(model.config, "num_hidden_layers", 0))
    if layers < 2 or not hasattr(getattr(model, "base_model", None), "encoder"):
        return 0.0, 0.0, 0.0
    examples = [data.train[i] for i in batch]
    zeros = {e.id: torch.zeros(int(model._get_feat_extract_output_lengths(len(e.samples))),
                               model.config.hidden_size) for e in examples}
    collate = TopCollator(_HeldStates(zeros), model.config)

    def step():
        return _laptop_loss(model, collate, examples, device)

    layerdrop, model.config.layerdrop = model.config.layerdrop, 0.0  # every layer counted
    try:
        held = []
        for top_layers in (1, 2):
            run_top(model, layers - top_layers)
            held.append(_saved_mb(model, step))
    finally:
        model.config.layerdrop = layerdrop
    seconds = len(examples) * max(len(e.samples) for e in examples) / 16000
    return held[1] - held[0], max(0.0, 2 * held[0] - held[1]), seconds


def _saved_mb(model, step) -> float:
    """MiB of the tensors ``step``'s autograd graph saves for backward, weights excluded."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = step()
    del loss
    return sum(storages.values()) / 2**20


def _layer_share(model) -> float:
    """The transformer layers' share of the parameters above the feature encoder."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layers", None)
    encoder = getattr(base, "feature_extractor", None)
    if layers is None:
        return 1.0
    above = sum(p.numel() for p in model.parameters()) - (
        sum(p.numel() for p in encoder.parameters()) if encoder is not None else 0)
    return sum(p.numel() for p in layers.parameters()) / max(1, above)


def _adapter_parameters(model) -> int:
    getter = getattr(model, "_get_adapters", None)
    if getter is None or getattr(model.config, "adapter_attn_dim", None) is None:
        return 0
    try:
        return sum(p.numel() for n, p in getter().items() if not n.startswith("lm_head"))
    except (ValueError, AttributeError):
        return 0


def _peak_mb() -> float:
    """This process's peak RSS since the last :func:`_reset_peak` (MiB; since its start
    where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(ln for ln in status if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Start the peak RSS afresh from the current RSS (Linux; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


def _rss_mb() -> float:
    """This process's resident memory now (MiB; the peak so far where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(ln for ln in status if ln.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return _peak_mb()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _child(argv: list[str]) -> None:
    root, spec, steps, key = argv
    m = _measure_here(Workspace(Path(root)), load_config(Path(spec)), int(steps), key)
    print(json.dumps(asdict(m)))


if __name__ == "__main__":
    _child(sys.argv[1:])
