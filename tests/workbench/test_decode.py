"""Greedy CTC decoding and the one decoding entry point (greedy or with an LM).

Every expected text is written out by hand (or, for random logits, by :func:`ctc_rules`, a
few lines that spell out the CTC rules over VOCAB), never by the tokenizer the code calls:
repeats merge, blanks (``[PAD]``) drop and separate equal letters, the word delimiter ``|``
becomes a space, ``[UNK]`` stays as written, the text is stripped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.workbench.ctc_fixtures import VOCAB, tiny_processor
from workbench.decode import collapse_repeats, decode_utterance, greedy_decode
from workbench.errors import WorkbenchError
from workbench.vocab import make_processor

TOKENS = {index: token for token, index in VOCAB.items()}


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("processor"))


def one_hot(tokens: list[str], vocab: dict[str, int] = VOCAB) -> np.ndarray:
    """Logits whose argmax spells ``tokens`` frame by frame (others get small noise)."""
    rng = np.random.default_rng(len(tokens))
    logits = rng.uniform(-1.0, 1.0, (len(tokens), len(vocab))).astype(np.float32)
    for frame, token in enumerate(tokens):
        logits[frame, vocab[token]] = 5.0
    return logits


def ctc_rules(ids: list[int]) -> str:
    """Greedy CTC text of a best path, from the rules alone (no tokenizer)."""
    merged = [i for k, i in enumerate(ids) if k == 0 or i != ids[k - 1]]
    tokens = [TOKENS[i] for i in merged if TOKENS[i] != "[PAD]"]
    return "".join(" " if token == "|" else token for token in tokens).strip()


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (["k", "k", "a", "a", "a"], "ka"),  # repeats merge
        (["[PAD]", "n", "[PAD]", "[PAD]", "o", "[PAD]"], "no"),  # blanks drop
        (["a", "a", "[PAD]", "a", "|", "b"], "aa b"),  # a blank keeps equal letters apart
        (["|", "|", "t", "u", "|", "|", "|", "m", "i", "|"], "tu mi"),  # one space, stripped
        # Two delimiters with a blank between are two spaces: the pipeline prints the same.
        (["a", "|", "[PAD]", "|", "b"], "a  b"),
        (["[UNK]", "[UNK]", "a", "[PAD]", "[UNK]"], "[UNK]a[UNK]"),  # [UNK] kept, merged
        (["a", "|", "[UNK]", "|", "b"], "a [UNK] b"),
        (["[PAD]", "[PAD]", "[PAD]"], ""),
        (["|", "[PAD]", "|"], ""),
    ],
)
def test_greedy_text_follows_the_ctc_rules(processor, tokens: list[str], text: str):
    assert greedy_decode(one_hot(tokens), processor.tokenizer) == [text]


def test_accepts_processor_tensor_log_probs_and_2d_input(processor):
    logits = one_hot(["[PAD]", "c", "c", "|", "|", "o", "[PAD]", "k", "k"])
    expected = ["c ok"]
    assert greedy_decode(logits, processor) == expected
    assert greedy_decode(torch.from_numpy(logits), processor) == expected
    assert greedy_decode(torch.from_numpy(logits)[None], processor) == expected
    log_probs = torch.log_softmax(torch.from_numpy(logits), dim=-1)  # all negative
    assert greedy_decode(log_probs, processor) == expected


def test_lengths_ignore_padding_frames(processor):
    first = one_hot(["b", "a", "[PAD]", "d"])
    second = one_hot(["n", "o", "m", "m"])  # the last two frames are padding, never shown
    batch = np.stack([first, second])
    assert greedy_decode(batch, processor) == ["bad", "nom"]
    assert greedy_decode(batch, processor, lengths=[4, 2]) == ["bad", "no"]
    assert greedy_decode(batch, processor, lengths=torch.tensor([4, 0])) == ["bad", ""]
    assert greedy_decode(batch, processor, lengths=np.array([1, 3])) == ["b", "nom"]


def test_random_logits_decode_by_the_rules(processor):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 60, len(VOCAB))).astype(np.float32)
    lengths = [60, 41, 7]
    texts = greedy_decode(logits, processor.tokenizer, lengths=lengths)
    paths = logits.argmax(-1)
    assert texts == [ctc_rules(path[:n].tolist()) for path, n in zip(paths, lengths,
                                                                     strict=True)]
    assert " " in texts[0] and "[UNK]" in texts[0] and len(texts[0]) > 30  # rules exercised


def test_multigraphs_and_apostrophes_are_joined_as_written(tmp_path: Path):
    """Multi-letter labels join without spaces; no tokenizer clean-up moves apostrophes."""
    vocab = {"[PAD]": 0, "[UNK]": 1, "|": 2, "ch": 3, "a": 4, "'": 5, "m": 6, "n": 7, "s": 8}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    processor = make_processor(tmp_path / "vocab.json")
    tokens = ["ch", "ch", "a", "|", "n", "|", "'", "m", "[PAD]", "|", "'", "s"]
    assert greedy_decode(one_hot(tokens, vocab), processor) == ["cha n 'm 's"]


def test_collapse_repeats_keeps_blanks_between_equal_tokens():
    ids = np.array([3, 3, 0, 3, 2, 2, 4])
    assert collapse_repeats(ids).tolist() == [3, 0, 3, 2, 4]
    assert collapse_repeats(np.array([0, 0, 0])).tolist() == [0]
    assert collapse_repeats(np.array([], dtype=np.int64)).tolist() == []


def test_bad_shapes_and_lengths_are_reported(processor):
    with pytest.raises(WorkbenchError, match="dimensions"):
        greedy_decode(np.zeros((1, 2, 3, 4)), processor)
    with pytest.raises(WorkbenchError, match="one length per batch item"):
        greedy_decode(np.zeros((2, 5, len(VOCAB))), processor, lengths=[5])
    with pytest.raises(WorkbenchError, match="between 0 and the 5 frames"):
        greedy_decode(np.zeros((1, 5, len(VOCAB))), processor, lengths=[6])
    with pytest.raises(WorkbenchError, match="between 0 and the 5 frames"):
        greedy_decode(np.zeros((1, 5, len(VOCAB))), processor, lengths=[-1])


def test_decode_utterance_is_greedy_without_lm_and_hands_log_probs_to_an_lm(processor):
    class RecordingLM:
        def __init__(self) -> None:
            self.seen: list[np.ndarray] = []

        def decode(self, log_probs: np.ndarray) -> str:
            self.seen.append(log_probs)
            return f"{len(log_probs)} frames"

    logits = torch.randn(6, len(VOCAB))
    assert decode_utterance(logits, processor) == greedy_decode(logits, processor)[0]
    lm = RecordingLM()
    assert decode_utterance(logits, processor, lm) == "6 frames"
    (log_probs,) = lm.seen
    assert log_probs.dtype == np.float32
    np.testing.assert_allclose(log_probs, torch.log_softmax(logits, -1).numpy(), atol=1e-5)
