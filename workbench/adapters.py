"""MMS attention adapters: train a small per-language adapter on a frozen base (mode=adapter).

Checkpoints such as ``facebook/mms-1b-all`` have a small bottleneck layer after every
transformer layer (``Wav2Vec2AttnAdapterLayer``, present when the config sets
``adapter_attn_dim``; only the stable-layer-norm layout, ``do_stable_layer_norm=True``, has
them). In this mode the whole base model is frozen and only those adapters and the CTC head
train: about 2.5M parameters for MMS-1B, with a learning rate of 1e-3 for a few hundred steps
(the Hugging Face blog "Fine-tuning MMS Adapter Models for Multi-Lingual ASR").

Starting point: the adapters start from the checkpoint's own adapter weights (for
mms-1b-all its English adapter, as in the blog, whose ``init_adapter_layers()`` only
re-initialises the head); the head is fresh, sized to the workspace vocabulary.

What can be cached: the adapters sit in every transformer layer and change every step, so
nothing above the convolutional feature encoder can be cached. The frozen feature encoder's
output can, and :class:`workbench.data.EncoderCache` keeps it on CPU runs as in full mode.

Saved: ``model/`` holds the whole model (the recogniser loads it with the adapter active) and,
beside it, ``adapter.<lang>.safetensors`` with the adapters and the head (transformers'
``_get_adapters()``), which ``Wav2Vec2ForCTC.from_pretrained(dir, target_lang=lang)`` or
``model.load_adapter(lang)`` loads onto the same base.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from workbench.errors import WorkbenchError

ADAPTER_FILE = "adapter.{}.safetensors"  # transformers' WAV2VEC2_ADAPTER_SAFE_FILE
# ISO 639-3-like: "quy", "eng", "cmn-script_simplified"; safe inside a file name.
LANG_PATTERN = re.compile(r"[a-z]{2,8}(?:[-_][a-z0-9]{1,16})*")


def check_adapter_lang(lang: str) -> str:
    """Return ``lang`` if it can name an adapter file.

    Raises:
        WorkbenchError: It is missing or not a language code.
    """
    if not LANG_PATTERN.fullmatch(lang or ""):
        given = f"{lang!r} is not a language code" if lang else "no language code was given"
        raise WorkbenchError(
            f"--mode adapter needs the language the adapter is for: {given}. Give an ISO "
            "639-3 code in lowercase letters (2 to 8, optionally with - or _ parts), for "
            "example --adapter-lang quy (model.adapter_lang=quy).")
    return lang


def missing_adapters(config) -> str:
    """Why a model config has no attention adapters to train ("" when it has them)."""
    if getattr(config, "adapter_attn_dim", None) is None:
        return "it has no attention adapters (no adapter_attn_dim in its config)"
    if not getattr(config, "do_stable_layer_norm", False):
        return ("its transformer layers are post-layer-norm, which have no adapter layers "
                "(adapters exist only with do_stable_layer_norm=True)")
    return ""


def no_adapters_error(name: str, reason: str) -> WorkbenchError:
    """The refusal for ``--mode adapter`` on a model without adapters."""
    return WorkbenchError(
        f"--mode adapter cannot train {name}: {reason}. Choose an MMS checkpoint with "
        "adapters, for example --model facebook/mms-1b-all, or train this model with "
        "--mode full (or --mode top).")


def check_adapter_model(name: str) -> None:
    """Refuse ``name`` for adapter training if its config shows no adapters.

    Reads only the config (no weights). A checkpoint that cannot be found is left to
    :func:`workbench.models.load_for_finetuning`, which explains that case.

    Raises:
        WorkbenchError: The model has no attention adapters.
    """
    from transformers import AutoConfig

    from workbench.models import is_from_scratch, local_config, resolve_model_name

    if is_from_scratch(name):
        config = local_config(name, vocab_size=2)
    else:
        try:
            config = AutoConfig.from_pretrained(resolve_model_name(name),
                                                trust_remote_code=False)
        except (OSError, ValueError):
            return
    reason = missing_adapters(config)
    if reason:
        raise no_adapters_error(name, reason)


def prepare_adapter_training(model, name: str) -> int:
    """Freeze the base of ``model``; leave its adapters and CTC head trainable.

    Returns:
        The number of trainable parameters.

    Raises:
        WorkbenchError: The model has no attention adapters.
    """
    reason = missing_adapters(model.config)
    if reason or not hasattr(model, "_get_adapters"):
        raise no_adapters_error(name, reason or "it is not a wav2vec2 model")
    model.freeze_base_model()
    trainable = model._get_adapters()  # the adapters of every layer and lm_head.*
    for param in trainable.values():
        param.requires_grad = True
    return sum(p.numel() for p in trainable.values())


def adapter_weights(model, state_dict: dict[str, torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
    """The adapter and head weights of ``model`` (taken from ``state_dict`` when given)."""
    source = state_dict if state_dict is not None else model.state_dict()
    return {key: source[key].detach().contiguous().cpu() for key in model._get_adapters()}


def save_adapter(model, folder: Path, lang: str,
                 state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``adapter.<lang>.safetensors`` (adapters and head) into ``folder``."""
    from safetensors.torch import save_file

    path = Path(folder) / ADAPTER_FILE.format(check_adapter_lang(lang))
    save_file(adapter_weights(model, state_dict), path, metadata={"format": "pt"})
    return path
