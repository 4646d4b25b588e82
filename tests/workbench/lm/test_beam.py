"""Beam search with an n-gram LM (flashlight-text): the LM fixes what the acoustics leave open."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workbench.ctc_fixtures import VOCAB
from workbench.errors import WorkbenchError
from workbench.lm.beam import BeamDecoder, BeamSettings
from workbench.lm.ngram import estimate, write_arpa

TOKENS = [t for t, _ in sorted(VOCAB.items(), key=lambda item: item[1])]
TEXT = ["kami tomu nika", "kami tomu", "nika kami tomu daku", "daku nika", "tomu daku kami"] * 4
TEXT += ["tomi daku kamu"]  # the acoustically close words are real words too, only rarer


def emissions(spoken: str, doubts: dict[int, tuple[str, float]]) -> np.ndarray:
    """Log-probs that spell ``spoken`` (a blank after each letter); at letter ``i`` in
    ``doubts`` the acoustics prefer another letter with probability p over the spoken one."""
    frames = []
    for i, char in enumerate(spoken.replace(" ", "|")):
        row = np.full(len(TOKENS), 1e-4)
        if i in doubts:
            other, p = doubts[i]
            row[VOCAB[other]], row[VOCAB[char]] = p, 1 - p
        else:
            row[VOCAB[char]] = 1.0
        frames += [row / row.sum(), _blank()]
    return np.log(np.array(frames, dtype=np.float32))


def _blank() -> np.ndarray:
    row = np.full(len(TOKENS), 1e-4)
    row[VOCAB["[PAD]"]] = 1.0
    return row / row.sum()


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "word.arpa"
    return write_arpa(estimate([line.split() for line in TEXT], 3), path)


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "char.arpa"
    return write_arpa(estimate([list(line.replace(" ", "|")) for line in TEXT], 5), path)


def lexicon() -> dict[str, list[str]]:
    return {w: list(w) for line in TEXT for w in line.split()}


# "kami tomu": the acoustics lean to "kamu tomi" (u for i at 3, i for u at 8).
DOUBTS = {3: ("u", 0.6), 8: ("i", 0.6)}


@pytest.mark.parametrize("unit", ["word", "char"])
def test_the_lm_fixes_letters_the_acoustics_get_wrong(unit, word_lm, char_lm):
    arpa, words = (word_lm, lexicon()) if unit == "word" else (char_lm, None)
    log_probs = emissions("kami tomu", DOUBTS)
    without = BeamDecoder(TOKENS, 0, "|", arpa, unit, words, BeamSettings(alpha=0.0, beta=0.0))
    with_lm = BeamDecoder(TOKENS, 0, "|", arpa, unit, words, BeamSettings(alpha=1.0, beta=0.0))
    assert without.decode(log_probs) == "kamu tomi"  # alpha 0: the acoustics alone
    assert with_lm.decode(log_probs) == "kami tomu"


def test_with_settings_changes_the_search_not_the_lm(char_lm):
    decoder = BeamDecoder(TOKENS, 0, "|", char_lm, "char", None, BeamSettings(alpha=0.0))
    log_probs = emissions("kami tomu", DOUBTS)
    assert decoder.decode(log_probs) == "kamu tomi"
    assert decoder.with_settings(BeamSettings(alpha=1.0)).decode(log_probs) == "kami tomu"
    assert decoder.decode(log_probs) == "kamu tomi"  # the original is unchanged


def test_repeated_letters_need_a_blank_and_special_tokens_are_not_written(char_lm):
    decoder = BeamDecoder(TOKENS, 0, "|", char_lm, "char", None, BeamSettings(alpha=0.0),
                          skip=["[UNK]", "[PAD]", "|"])  # a real tokenizer's special tokens
    rows = np.full((5, len(TOKENS)), 1e-4)
    for frame, token in enumerate(["t", "t", "[PAD]", "t", "[UNK]"]):
        rows[frame, VOCAB[token]] = 1.0
    assert decoder.decode(np.log(rows / rows.sum(1, keepdims=True))) == "tt"
    assert decoder.decode(emissions("kami tomu", {})) == "kami tomu"  # "|" is still a space
    assert decoder.decode(np.zeros((0, len(TOKENS)), dtype=np.float32)) == ""


def test_mismatched_outputs_and_missing_delimiter_are_refused(char_lm, word_lm):
    decoder = BeamDecoder(TOKENS, 0, "|", char_lm, "char")
    with pytest.raises(WorkbenchError, match="15 tokens"):
        decoder.decode(np.zeros((4, 7), dtype=np.float32))
    with pytest.raises(WorkbenchError, match="word delimiter"):
        BeamDecoder([t for t in TOKENS if t != "|"], 0, "|", char_lm, "char")
    with pytest.raises(WorkbenchError, match="can be spelled"):
        BeamDecoder(TOKENS, 0, "|", word_lm, "word", {"xyz": ["x", "y", "z"]})


@pytest.mark.parametrize("unit", ["word", "char"])
def test_lm_timed_utterances_take_the_lm_words_at_the_acoustic_times(unit, word_lm, char_lm,
                                                                    tmp_path):
    """Two utterances 1 s apart: cut at the pause as greedy does, words spelled by the LM's
    own best path (per frame), and timed on it."""
    from tests.workbench.ctc_fixtures import tiny_processor
    from workbench.segments import segment_log_probs

    arpa, words = (word_lm, lexicon()) if unit == "word" else (char_lm, None)
    decoder = BeamDecoder(TOKENS, 0, "|", arpa, unit, words, BeamSettings(alpha=1.0, beta=0.0))
    pause = np.log(np.array([_blank()] * 50, dtype=np.float32))
    first, second = emissions("kami tomu", DOUBTS), emissions("daku nika", {})
    log_probs = np.concatenate([pause, first, pause, second, pause])
    path = decoder.frame_tokens(log_probs)
    assert path.shape == (len(log_probs),)
    tokenizer = tiny_processor(tmp_path).tokenizer
    segments = segment_log_probs(log_probs, tokenizer, 0.02, len(log_probs) * 320, decoder,
                                 min_s=0.0)
    assert [s.text for s in segments] == ["kami tomu", "daku nika"]  # greedy: "kamu tomi"
    kami, tomu = segments[0].words
    assert (kami.start, kami.end) == (1.0, 1.14)  # frames 50-56: k a m i, a blank after each
    assert (tomu.start, tomu.end) == (1.2, 1.34)
    assert segments[1].words[0].start == pytest.approx(0.02 * (50 + 18 + 50))
    # the probability of the letters the LM chose: "i" in kami had 0.4 against "u"'s 0.6
    assert kami.confidence == pytest.approx((1 + 1 + 1 + 0.4) / 4, abs=0.01)
    assert segments[1].words[0].confidence == pytest.approx(1.0, abs=0.01)
