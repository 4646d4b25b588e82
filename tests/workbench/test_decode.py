"""Greedy CTC decoding and the LM-decoding hook."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from tests.workbench.ctc_fixtures import VOCAB, tiny_processor
from workbench.decode import (
    build_lm_decoder,
    collapse_repeats,
    ctc_labels,
    decode_with_lm,
    greedy_decode,
)
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("processor"))


def one_hot(tokens: list[str], vocab_size: int = len(VOCAB)) -> np.ndarray:
    """Logits whose argmax spells ``tokens`` frame by frame."""
    logits = np.zeros((len(tokens), vocab_size), dtype=np.float32)
    for frame, token in enumerate(tokens):
        logits[frame, VOCAB[token]] = 5.0
    return logits


def test_collapses_repeats_drops_blank_and_maps_delimiter(processor):
    logits = one_hot(["a", "a", "[PAD]", "a", "|", "b"])
    assert greedy_decode(logits, processor.tokenizer) == ["aa b"]


def test_accepts_processor_tensor_and_2d_input(processor):
    logits = one_hot(["[PAD]", "c", "c", "|", "|", "o", "[PAD]", "k", "k"])
    expected = ["c ok"]
    assert greedy_decode(logits, processor) == expected
    assert greedy_decode(torch.from_numpy(logits), processor) == expected
    assert greedy_decode(torch.from_numpy(logits)[None], processor) == expected


def test_lengths_ignore_padding_frames(processor):
    first = one_hot(["b", "a", "[PAD]", "d"])
    second = one_hot(["n", "o", "n", "o"])
    second[2:] = one_hot(["m", "m"])  # these frames are padding and must not show
    batch = np.stack([first, second])
    assert greedy_decode(batch, processor, lengths=[4, 2]) == ["bad", "no"]
    assert greedy_decode(batch, processor, lengths=torch.tensor([4, 0])) == ["bad", ""]


def test_matches_tokenizer_batch_decode(processor):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 50, len(VOCAB))).astype(np.float32)
    expected = processor.tokenizer.batch_decode(logits.argmax(-1))
    assert greedy_decode(logits, processor.tokenizer) == expected


def test_collapse_repeats_keeps_blanks_between_equal_tokens():
    ids = np.array([3, 3, 0, 3, 2, 2, 4])
    assert collapse_repeats(ids).tolist() == [3, 0, 3, 2, 4]
    assert collapse_repeats(np.array([], dtype=np.int64)).tolist() == []


def test_bad_shapes_and_lengths_are_reported(processor):
    with pytest.raises(WorkbenchError, match="dimensions"):
        greedy_decode(np.zeros((1, 2, 3, 4)), processor)
    with pytest.raises(WorkbenchError, match="one length per batch item"):
        greedy_decode(np.zeros((2, 5, len(VOCAB))), processor, lengths=[5])
    with pytest.raises(WorkbenchError, match="between 0 and the 5 frames"):
        greedy_decode(np.zeros((1, 5, len(VOCAB))), processor, lengths=[6])


def test_ctc_labels_follow_pyctcdecode_convention(processor):
    labels = ctc_labels(processor, len(VOCAB))
    assert labels[:4] == ["", "[UNK]", " ", "a"]
    assert len(labels) == len(VOCAB)


def test_lm_decoder_without_pyctcdecode_says_how_to_install(processor, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # import fails as if not installed
    with pytest.raises(WorkbenchError, match="pip install pyctcdecode kenlm"):
        build_lm_decoder(processor)


def test_decode_with_lm_passes_log_probs_per_item(processor):
    class FakeDecoder:
        def __init__(self):
            self.calls = []

        def decode(self, log_probs, beam_width):
            self.calls.append((log_probs, beam_width))
            return f"{len(log_probs)} frames"

    decoder = FakeDecoder()
    logits = torch.randn(2, 6, len(VOCAB))
    texts = decode_with_lm(logits, decoder, lengths=[6, 3], beam_width=7)
    assert texts == ["6 frames", "3 frames"]
    for (log_probs, beam_width), n in zip(decoder.calls, (6, 3), strict=True):
        assert beam_width == 7
        np.testing.assert_allclose(np.exp(log_probs).sum(-1), np.ones(n), rtol=1e-5)
        expected = torch.log_softmax(logits[0 if n == 6 else 1, :n], dim=-1).numpy()
        np.testing.assert_allclose(log_probs, expected, rtol=1e-5, atol=1e-5)
    assert decode_with_lm(logits, decoder, lengths=[0, 0]) == ["", ""]
