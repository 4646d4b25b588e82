"""Beam-search CTC decoding with an n-gram LM, through flashlight-text.

Why flashlight-text (measured for issue 13, ``docs/lm_decoders_research.md``): its wheel
bundles KenLM and both decoders this workbench needs, and it depends on nothing (no numpy
pin). pyctcdecode 0.5.0 declares ``numpy<2`` (a plain install would downgrade numpy) and has
no character-LM mode; torchaudio's ``ctc_decoder`` wraps the same flashlight code, but the
PyPI torchaudio is a CUDA build that does not import with the CPU torch.

- ``word`` LMs: the lexicon decoder. Words are spelled in the model's labels (the LM folder's
  ``lexicon.txt``); the search only ever outputs lexicon words, so use it when most words of
  new speech are in the text. ``beta`` is the bonus per word.
- ``char`` LMs: the lexicon-free decoder with an n-gram over the model's own labels (``|``
  between words): open vocabulary, for rich morphology. ``beta`` is the bonus per word
  delimiter (flashlight's ``sil_score``; its lexicon-free options have no word score).

KenLM scores are log10 and the emissions natural logs; ``alpha`` absorbs the factor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.text import well_formed

INSTALL_HINT = ("LM decoding needs flashlight-text (a dependency of the workbench, with wheels "
                "for Python 3.8-3.12): `pip install flashlight-text==0.0.7`.")


@dataclass(frozen=True)
class BeamSettings:
    """Search settings. alpha: LM weight; beta: word bonus; beam: hypotheses kept."""

    alpha: float = 0.5
    beta: float = 1.0
    beam: int = 50
    beam_threshold: float = 25.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _flashlight() -> Any:
    try:
        from flashlight.lib.text import decoder, dictionary
        from flashlight.lib.text.decoder.kenlm import KenLM
    except ImportError as err:
        raise WorkbenchError(INSTALL_HINT) from err
    return decoder, dictionary, KenLM


def require_decoder() -> None:
    """Raise ``WorkbenchError`` (with the install hint) when flashlight-text is missing."""
    _flashlight()


@contextmanager
def _quiet_stderr():
    """KenLM prints a progress bar on stderr for every model it loads."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class BeamDecoder:
    """CTC beam search with a KenLM model over one model's output tokens.

    Args:
        tokens: The model's output tokens in id order (``convert_ids_to_tokens``).
        blank_id: The CTC blank (the pad token).
        delimiter: The word delimiter token (``|``).
        arpa: The ARPA file.
        unit: ``word`` (needs ``lexicon``) or ``char``.
        lexicon: word -> its labels, for ``word`` LMs.
        skip: Tokens never written out (the tokenizer's special tokens, such as ``[UNK]``).
    """

    def __init__(self, tokens: Sequence[str], blank_id: int, delimiter: str, arpa: Path,
                 unit: str, lexicon: dict[str, list[str]] | None = None,
                 settings: BeamSettings = BeamSettings(), skip: Sequence[str] = ()) -> None:
        if delimiter not in tokens:
            raise WorkbenchError(f"The model has no word delimiter {delimiter!r}; LM decoding "
                                 "needs one between words.")
        self.tokens, self.blank_id, self.unit = list(tokens), blank_id, unit
        self.delimiter_id = self.tokens.index(delimiter)
        self._silent = ({i for i, t in enumerate(self.tokens) if t in set(skip)} | {blank_id}
                        ) - {self.delimiter_id}  # the tokenizer lists "|" among its specials
        self.settings = settings
        decoder, dictionary, kenlm = _flashlight()
        self._fl = decoder
        self._token_dict = dictionary.Dictionary(self.tokens)
        if unit == "word":
            self._setup_lexicon(dictionary, kenlm, Path(arpa), lexicon or {})
        else:
            with _quiet_stderr():
                self._lm = kenlm(str(arpa), self._token_dict)
        self._decoder = self._build(settings)

    def _setup_lexicon(self, dictionary: Any, kenlm: Any, arpa: Path,
                       lexicon: dict[str, list[str]]) -> None:
        index = {token: i for i, token in enumerate(self.tokens)}
        spelled = {w: [index[t] for t in labels] for w, labels in lexicon.items()
                   if labels and all(t in index for t in labels)}
        if not spelled:
            raise WorkbenchError(f"{arpa.parent}: no word of the LM's lexicon can be spelled "
                                 "with this model's labels; was it built for another workspace?")
        self._words = dictionary.Dictionary([*spelled, "<unk>"])
        self._unk_word = self._words.get_index("<unk>")
        self._words.set_default_index(self._unk_word)
        with _quiet_stderr():
            self._lm = kenlm(str(arpa), self._words)
        self._trie = self._fl.Trie(len(self.tokens), self.delimiter_id)
        start = self._lm.start(False)
        for word, ids in spelled.items():
            word_id = self._words.get_index(word)
            _, score = self._lm.score(start, word_id)
            self._trie.insert([*ids, self.delimiter_id], word_id, score)
        self._trie.smear(self._fl.SmearingMode.MAX)

    def _build(self, s: BeamSettings) -> Any:
        fl = self._fl
        size = len(self.tokens)
        if self.unit == "word":
            options = fl.LexiconDecoderOptions(
                beam_size=s.beam, beam_size_token=size, beam_threshold=s.beam_threshold,
                lm_weight=s.alpha, word_score=s.beta, unk_score=float("-inf"), sil_score=0.0,
                log_add=False, criterion_type=fl.CriterionType.CTC)
            return fl.LexiconDecoder(options, self._trie, self._lm, self.delimiter_id,
                                     self.blank_id, self._unk_word, [], False)
        options = fl.LexiconFreeDecoderOptions(
            beam_size=s.beam, beam_size_token=size, beam_threshold=s.beam_threshold,
            lm_weight=s.alpha, sil_score=s.beta, log_add=False,
            criterion_type=fl.CriterionType.CTC)
        return fl.LexiconFreeDecoder(options, self._lm, self.delimiter_id, self.blank_id, [])

    def with_settings(self, settings: BeamSettings) -> BeamDecoder:
        """The same LM with other search settings (no reload: for tuning)."""
        clone = object.__new__(BeamDecoder)
        clone.__dict__.update(self.__dict__)
        clone.settings = settings
        clone._decoder = clone._build(settings)
        return clone

    def decode(self, log_probs: np.ndarray) -> str:
        """Text of one utterance from its ``(frames, tokens)`` log-probabilities."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        frames, size = emissions.shape
        if frames == 0:
            return ""
        if size != len(self.tokens):
            raise WorkbenchError(f"The model gives {size} outputs per frame but the decoder "
                                 f"knows {len(self.tokens)} tokens.")
        results = self._decoder.decode(emissions.ctypes.data, frames, size)
        if not results:
            return ""
        if self.unit == "word":  # the words found, not the tokens: a word's closing "|"
            return well_formed(" ".join(self._words.get_entry(w)  # may go unemitted
                                        for w in results[0].words if w >= 0))
        return self._text(results[0].tokens)

    def frame_tokens(self, log_probs: np.ndarray) -> np.ndarray:
        """The best hypothesis as one token id per frame (blank where it writes nothing):
        the LM-decoded counterpart of the greedy best path, for timing words."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        frames, size = emissions.shape
        if frames == 0:
            return np.zeros(0, np.int32)
        results = self._decoder.decode(emissions.ctypes.data, frames, size)
        if not results:
            return np.full(frames, self.blank_id, np.int32)
        # flashlight pads the path with one token before the first frame and one after the
        # last: frames + 2 entries.
        tokens = np.asarray(results[0].tokens, np.int32)[1:frames + 1]
        return np.where(np.isin(tokens, list(self._silent - {self.blank_id})), self.blank_id,
                        tokens).astype(np.int32)

    def _text(self, frame_tokens: Sequence[int]) -> str:
        out: list[str] = []
        previous = None
        for token in frame_tokens:
            if token != previous and token not in self._silent:
                out.append(" " if token == self.delimiter_id else self.tokens[token])
            previous = token
        text = " ".join("".join(out).split())
        return well_formed(text)
