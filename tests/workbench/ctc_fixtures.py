"""Tiny random wav2vec2 CTC models saved in Hugging Face format, for decode/transcribe/evaluate
tests (no download: everything is built locally from a config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2Processor

from workbench.vocab import make_processor

VOCAB = {
    "[PAD]": 0,
    "[UNK]": 1,
    "|": 2,
    "a": 3,
    "b": 4,
    "c": 5,
    "d": 6,
    "e": 7,
    "i": 8,
    "k": 9,
    "m": 10,
    "n": 11,
    "o": 12,
    "t": 13,
    "u": 14,
}


def tiny_processor(directory: Path, *, attention_mask: bool = True) -> Wav2Vec2Processor:
    """The workbench's own processor (``workbench.vocab.make_processor``) over VOCAB."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = directory / "vocab.json"
    vocab_path.write_text(json.dumps(VOCAB), encoding="utf-8")
    processor = make_processor(vocab_path)
    processor.feature_extractor.return_attention_mask = attention_mask
    return processor


def tiny_config(norm: str = "layer") -> Wav2Vec2Config:
    """A two-layer wav2vec2 config with a 320-sample hop, as the real models have."""
    return Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32, 32, 32, 32, 32),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        pad_token_id=0,
        ctc_loss_reduction="mean",
    )


def save_tiny_model(directory: Path, *, norm: str = "layer", seed: int = 0) -> Path:
    """Save a random tiny Wav2Vec2ForCTC + processor to ``directory``; return it."""
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(tiny_config(norm))
    # Spread the output layer so that random inputs give varied letters, not one token.
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(directory, safe_serialization=True)
    tiny_processor(directory, attention_mask=norm == "layer").save_pretrained(directory)
    return directory


def noise(seconds: float, seed: int) -> np.ndarray:
    """Reproducible speech-like test signal: noise under a slow envelope, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16_000)
    envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 6 * np.pi * seconds, n))
    return (0.3 * envelope * rng.standard_normal(n)).astype(np.float32)
