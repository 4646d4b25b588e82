"""Checkpoint registry and loading for CTC fine-tuning.

Safety: weights are loaded from safetensors only and remote code is never run, so a
checkpoint from an untrusted source cannot execute code on the user's machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCTC, PretrainedConfig, PreTrainedModel

from workbench.errors import WorkbenchError

# No telemetry, and no network call unless a Hub id is really asked for.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

TINY = "tiny"
SMALL = "small"
DEMO_BASE = "demo-base"
DEMO_BASE_DIR = Path(__file__).parent / "assets" / DEMO_BASE
HEAD_INITS = ("normal", "zero", "uniform")  # how a fresh CTC head starts (model.head_init)

# Architectures built locally with random weights (nothing to download). `small` is the
# architecture of the shipped `demo-base` checkpoint, so it is also the from-scratch baseline.
LOCAL_ARCHITECTURES: dict[str, dict] = {
    TINY: {"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4,
           "intermediate_size": 256, "conv_dim": (64,) * 7, "num_conv_pos_embeddings": 32,
           "num_conv_pos_embedding_groups": 4},
    SMALL: {"hidden_size": 192, "num_hidden_layers": 6, "num_attention_heads": 4,
            "intermediate_size": 512, "conv_dim": (64, 128, 128, 128, 128, 128, 128),
            "num_conv_pos_embeddings": 64, "num_conv_pos_embedding_groups": 16},
}


@dataclass(frozen=True)
class RegisteredModel:
    """A checkpoint users can pick by short name (``millions``: its size in millions of
    parameters, from its model card)."""

    hub_id: str
    description: str
    millions: float = 0.0


REGISTRY: dict[str, RegisteredModel] = {
    "xls-r-300m": RegisteredModel("facebook/wav2vec2-xls-r-300m",
                                  "XLS-R 300M, 128 languages (default)", 315),
    "xls-r-1b": RegisteredModel("facebook/wav2vec2-xls-r-1b", "XLS-R 1B, 128 languages", 965),
    "mms-300m": RegisteredModel("facebook/mms-300m", "MMS 300M, 1,400 languages", 315),
    "mms-1b": RegisteredModel("facebook/mms-1b", "MMS 1B, 1,400 languages", 965),
    "wav2vec2-base": RegisteredModel("facebook/wav2vec2-base", "wav2vec 2.0 base, English", 95),
    "hubert-large": RegisteredModel("facebook/hubert-large-ll60k", "HuBERT large, English", 316),
    "wavlm-large": RegisteredModel("microsoft/wavlm-large", "WavLM large, English", 316),
    "data2vec-audio-base": RegisteredModel("facebook/data2vec-audio-base",
                                           "data2vec-audio base, English", 94),
    DEMO_BASE: RegisteredModel("", "the project's small base trained on synthetic speech in 23 "
                                   "languages (offline demos and tests; not for real use)", 2.5),
    TINY: RegisteredModel("", "tiny randomly initialised wav2vec2, built locally (offline, tests)",
                          0.5),
    SMALL: RegisteredModel("", "demo-base's architecture, randomly initialised (from scratch)",
                           2.5),
}

# Settings copied from the run configuration onto the model config (all wav2vec2-family
# configs have them).
CONFIG_KEYS = ("mask_time_prob", "mask_feature_prob", "layerdrop", "hidden_dropout",
               "activation_dropout", "attention_dropout", "feat_proj_dropout", "final_dropout")


def resolve_model_name(name: str) -> str:
    """A registry short name becomes its Hub id or bundled folder; others pass through."""
    if name == DEMO_BASE:
        return str(DEMO_BASE_DIR)
    entry = REGISTRY.get(name)
    return entry.hub_id if entry and entry.hub_id else name


@dataclass(frozen=True)
class Availability:
    """Whether a checkpoint can be loaded here, and from where.

    Attributes:
        ok: It can be loaded now.
        where: "built" (a local architecture), "folder" (a checkpoint folder), "cached"
            (downloaded before), "hub" (reachable on the Hub: downloaded when training
            starts), or "" when not available.
        reason: Why not (or what to know), in plain words.
    """

    ok: bool
    where: str = ""
    reason: str = ""


def checkpoint_availability(name: str, *, ask_hub: bool = False,
                            timeout_s: float = 8.0) -> Availability:
    """Can ``name`` (a registry name, a folder or a Hub id) be loaded on this machine?

    Looks only on this machine (the bundled and built models, a folder, the Hugging Face
    cache) unless ``ask_hub``: then a Hub id not downloaded yet is looked up on the Hub (one
    request, no download), unless the Hub is switched off (``HF_HUB_OFFLINE``).
    """
    if is_from_scratch(name):
        return Availability(True, "built")
    source = resolve_model_name(name)
    folder = Path(source)
    if folder.is_dir():
        return _folder_availability(folder)
    if folder.is_absolute() or source.count("/") != 1:
        return Availability(False, reason=f"there is no checkpoint folder {source}")
    cached = _cached_snapshot(source)
    if cached is not None:
        return _folder_availability(cached, where="cached")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return Availability(False, reason=f"{source} has not been downloaded to this machine, "
                                          "and downloads are switched off (HF_HUB_OFFLINE)")
    if not ask_hub:
        return Availability(True, "hub", f"{source} will be downloaded from the Hugging Face "
                                         "Hub when training starts")
    return _hub_availability(source, timeout_s)


def _folder_availability(folder: Path, where: str = "folder") -> Availability:
    if not (folder / "config.json").is_file():
        return Availability(False, reason=f"{folder.name} has no config.json")
    if not any(folder.glob("*.safetensors")):
        return Availability(False, reason=f"{folder.name} has no .safetensors weights (the "
                                          "workbench loads safetensors only)")
    return Availability(True, where)


def _cached_snapshot(hub_id: str) -> Path | None:
    """The downloaded copy of ``hub_id`` in the Hugging Face cache (None: not downloaded)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def _hub_availability(hub_id: str, timeout_s: float) -> Availability:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        HfApi().model_info(hub_id, timeout=timeout_s)
    except RepositoryNotFoundError:
        return Availability(False, reason=f"there is no model {hub_id} on the Hugging Face Hub "
                                          "(or it is private)")
    except Exception as err:  # noqa: BLE001 - any failure (DNS, proxy, HTTP) means unreachable
        return Availability(False, reason=f"the Hugging Face Hub cannot be reached from here "
                                          f"to download {hub_id} ({type(err).__name__})")
    return Availability(True, "hub", f"{hub_id} will be downloaded from the Hugging Face Hub")


def is_from_scratch(name: str) -> bool:
    """True for the locally built, randomly initialised architectures."""
    return name in LOCAL_ARCHITECTURES


def local_config(name: str, vocab_size: int, pad_token_id: int = 0) -> PretrainedConfig:
    """Configuration of a locally built wav2vec2 architecture (``tiny`` or ``small``)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        **LOCAL_ARCHITECTURES[name], conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2), feat_extract_norm="layer",
        do_stable_layer_norm=True, vocab_size=vocab_size, pad_token_id=pad_token_id,
        ctc_loss_reduction="mean", ctc_zero_infinity=True, mask_time_length=5,
    )


def load_for_finetuning(
    name: str, *, vocab_size: int, pad_token_id: int = 0, settings: dict | None = None,
    reset_head: bool = True, attn_implementation: str | None = None,
) -> PreTrainedModel:
    """Load ``name`` as an AutoModelForCTC with a fresh CTC head of ``vocab_size`` outputs.

    Args:
        name: ``tiny``/``small`` (random), a registry short name, a Hub id or a local
            directory.
        vocab_size: Number of output tokens (the workspace vocabulary).
        pad_token_id: Id of the padding token, which is the CTC blank.
        settings: Model settings (masking, dropout, layerdrop) to set on the config.
        reset_head: Re-initialise the CTC head even when its shape already fits.
        attn_implementation: Attention kernel to use ("sdpa", "eager") where the
            architecture has it; None or an unsupported one keeps transformers' default.

    Raises:
        WorkbenchError: the checkpoint cannot be found or fetched, has no safetensors weights,
            or is not a CTC-capable architecture.
    """
    overrides = {k: v for k, v in (settings or {}).items() if k in CONFIG_KEYS}
    if is_from_scratch(name):
        config = local_config(name, vocab_size, pad_token_id)
        for key, value in overrides.items():
            setattr(config, key, value)
        torch.manual_seed(0)
        return AutoModelForCTC.from_config(
            config, **_attention(config, attn_implementation))
    source = resolve_model_name(name)
    config = _load_config(source, vocab_size, pad_token_id, overrides)
    model = _load_weights(source, config, _attention(config, attn_implementation))
    if reset_head:
        fresh_head(model, (settings or {}).get("head_init", "normal"))
    return model


def fresh_head(model: PreTrainedModel, how: str) -> None:
    """Start the CTC head afresh: ``normal`` (what transformers gives a new head: weights
    drawn from N(0, ``initializer_range``), bias 0), ``zero`` (every label equally likely at
    first, the same start for every seed) or ``uniform`` (``nn.Linear``'s own draw, bias
    included: the workbench's head before session 9).

    On demo-base the uniform head sent one seed in six on a second corpus onto CTC's plateau
    for good (dev CER 0.56 against 0.08 on the other five); normal and zero rescued it
    (bench/RESULTS.md).

    Raises:
        WorkbenchError: ``how`` is none of them.
    """
    if how not in HEAD_INITS:
        raise WorkbenchError(f"model.head_init={how!r}: give one of {', '.join(HEAD_INITS)}.")
    head = model.lm_head
    if how == "uniform":
        head.reset_parameters()
        return
    with torch.no_grad():
        if how == "normal":
            head.weight.normal_(0.0, float(getattr(model.config, "initializer_range", 0.02)))
        else:
            head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()


def _load_config(source: str, vocab_size: int, pad_token_id: int, overrides: dict):
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _unreachable(source, err) from err
    config.update({"vocab_size": vocab_size, "pad_token_id": pad_token_id,
                   "ctc_loss_reduction": "mean", "ctc_zero_infinity": True, **overrides})
    return config


def _attention(config, wanted: str | None) -> dict:
    """``{"attn_implementation": wanted}`` if the CTC class of ``config`` supports it, else {}.

    wav2vec2, HuBERT and data2vec-audio have SDPA attention; WavLM (relative position bias)
    does not and keeps its own.
    """
    if wanted is None:
        return {}
    model_class = AutoModelForCTC._model_mapping.get(type(config), None)
    flag = {"sdpa": "_supports_sdpa", "flash_attention_2": "_supports_flash_attn"}.get(wanted)
    if wanted != "eager" and not (model_class and flag and getattr(model_class, flag, False)):
        return {}
    return {"attn_implementation": wanted}


def _load_weights(source: str, config, attention: dict | None = None) -> PreTrainedModel:
    local = Path(source)
    if source == str(DEMO_BASE_DIR) and not local.is_dir():
        raise WorkbenchError(f"The bundled demo-base checkpoint is missing from {local}; "
                             "reinstall the workbench.")
    if local.is_dir() and not any(local.glob("*.safetensors")):
        raise WorkbenchError(
            f"{local} has no .safetensors weights. The workbench loads safetensors only "
            "(pickled .bin checkpoints can run code when loaded). Convert the checkpoint on "
            "a machine you trust: `model.save_pretrained(dir, safe_serialization=True)`."
        )
    try:
        return AutoModelForCTC.from_pretrained(
            source, config=config, use_safetensors=True, trust_remote_code=False,
            ignore_mismatched_sizes=True, **(attention or {}),
        )
    except ValueError as err:
        if "Unrecognized configuration" in str(err) or "AutoModelForCTC" in str(err):
            raise WorkbenchError(
                f"{source} is a {config.model_type!r} model, which has no CTC head in "
                "transformers. Choose a wav2vec2, XLS-R, MMS, HuBERT, WavLM or "
                "data2vec-audio checkpoint."
            ) from err
        raise _unreachable(source, err) from err
    except OSError as err:
        raise _unreachable(source, err) from err


def _unreachable(source: str, err: Exception) -> WorkbenchError:
    """The error for a checkpoint that cannot be loaded, for the command line and the page."""
    text = str(err).strip()
    reason = text.splitlines()[0].rstrip(".") if text else type(err).__name__
    if Path(source).exists():
        return WorkbenchError(f"Cannot load the checkpoint in {source}: {reason}")
    return WorkbenchError(
        f"Cannot load the checkpoint {source!r}: {reason}. It is neither a local folder nor "
        "reachable on the Hugging Face Hub from here. On a machine with internet, download "
        f"it once (`huggingface-cli download {source} --local-dir DIR`), copy DIR here and "
        "pass --model DIR; or use --model demo-base to try the workbench offline.",
        page=f"The model {source} cannot be loaded: it is not on this machine and the Hugging "
             "Face Hub cannot be reached from here. Choose demo-base (works offline), or copy "
             "a downloaded checkpoint folder into the models folder and choose it as local:.")
