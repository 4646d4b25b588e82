"""CTC decoding: frame logits -> text.

Greedy decoding (:func:`greedy_decode`) is what the workbench uses everywhere: take the most
likely token per frame, collapse repeats, drop the blank (``[PAD]``, id 0) and turn the word
delimiter ``|`` into a space. It follows ``Wav2Vec2CTCTokenizer.decode``, so its text equals
what the transformers ASR pipeline prints for the same logits, and then makes it well-formed
(``workbench.text.well_formed``): code-point labels are recomposed to NFC and a combining
mark emitted with no base (after a space or first) is dropped, where the pipeline would print
it floating on a dotted circle.

LM decoding hook: :func:`build_lm_decoder` + :func:`decode_with_lm` run a beam search with a
KenLM n-gram language model through pyctcdecode. pyctcdecode and kenlm are optional and not
installed with the workbench; without them these functions raise a WorkbenchError that says
how to install them. Both take the same logits and per-item lengths as
:func:`greedy_decode`, so a caller can switch decoders without touching the inference code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.text import well_formed

LM_INSTALL_HINT = (
    "LM decoding needs the optional packages pyctcdecode and kenlm: "
    "`pip install pyctcdecode kenlm` (kenlm compiles from source and needs cmake, a C++ "
    "compiler and the Boost and zlib headers; on Debian/Ubuntu "
    "`apt-get install build-essential cmake libboost-all-dev zlib1g-dev`). "
    "Greedy decoding works without them."
)


def greedy_decode(
    logits: torch.Tensor | np.ndarray,
    tokenizer: Any,
    lengths: Sequence[int] | np.ndarray | torch.Tensor | None = None,
) -> list[str]:
    """Greedy CTC decoding of a batch of frame logits.

    Args:
        logits: ``(batch, frames, vocab)`` or a single ``(frames, vocab)`` array of logits
            (or log-probabilities: only the argmax matters).
        tokenizer: A ``Wav2Vec2CTCTokenizer``, or a processor that holds one as
            ``.tokenizer``.
        lengths: Valid frames per batch item; frames beyond them (padding) are ignored.
            None means every frame is valid.

    Returns:
        One text per batch item: repeats collapsed, blanks dropped, ``|`` as a space.

    Raises:
        WorkbenchError: ``logits`` is not 2- or 3-dimensional, or ``lengths`` does not fit.
    """
    ids = best_path(logits)
    valid = _valid_lengths(lengths, ids.shape[0], ids.shape[1])
    return [decode_best_path(row[:n], tokenizer) for row, n in zip(ids, valid, strict=True)]


def decode_best_path(ids: np.ndarray, tokenizer: Any) -> str:
    """Text of one utterance's best-path token ids (one per frame): the last step of greedy
    decoding, for callers that keep ids rather than logits (long recordings)."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    return well_formed(tokenizer.decode(collapse_repeats(np.asarray(ids)).tolist()))


def best_path(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Most likely token id per frame, as a ``(batch, frames)`` int64 array."""
    if isinstance(logits, torch.Tensor):
        ids = logits.detach().argmax(dim=-1).cpu().numpy()
    else:
        ids = np.asarray(logits).argmax(axis=-1)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2:
        raise WorkbenchError(
            f"CTC logits must have shape (batch, frames, vocab) or (frames, vocab); got "
            f"{ids.ndim + 1} dimensions."
        )
    return ids.astype(np.int64, copy=False)


def collapse_repeats(ids: np.ndarray) -> np.ndarray:
    """Merge runs of the same id into one, keeping blanks (so ``a _ a`` stays three ids).

    The tokenizer then drops the blanks; collapsing first only makes its work shorter.
    """
    if len(ids) == 0:
        return ids
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return ids[keep]


def _valid_lengths(
    lengths: Sequence[int] | np.ndarray | torch.Tensor | None, batch: int, frames: int
) -> list[int]:
    if lengths is None:
        return [frames] * batch
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.detach().cpu().tolist()
    values = [int(n) for n in np.asarray(lengths).reshape(-1)]
    if len(values) != batch:
        raise WorkbenchError(
            f"Got {len(values)} output lengths for a batch of {batch} logits; pass one "
            "length per batch item."
        )
    if any(n < 0 or n > frames for n in values):
        raise WorkbenchError(
            f"Output lengths {values} must lie between 0 and the {frames} frames of the logits."
        )
    return values


# ---------------------------------------------------------------------------------------------
# LM decoding (optional: pyctcdecode + kenlm)


def ctc_labels(tokenizer: Any, vocab_size: int | None = None) -> list[str]:
    """The alphabet in pyctcdecode's convention: one label per output id.

    The blank (pad token) becomes ``""`` and the word delimiter ``" "``; other tokens are
    kept as they are (pyctcdecode recognises ``[UNK]``-style tokens itself).

    Args:
        tokenizer: A ``Wav2Vec2CTCTokenizer`` or a processor holding one.
        vocab_size: Number of model outputs; defaults to the tokenizer's size.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    size = vocab_size if vocab_size is not None else len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    labels = []
    for token in tokens:
        if token == tokenizer.pad_token:
            labels.append("")
        elif token == tokenizer.word_delimiter_token:
            labels.append(" ")
        else:
            labels.append(token)
    return labels


def build_lm_decoder(
    tokenizer: Any,
    kenlm_path: str | Path | None = None,
    *,
    vocab_size: int | None = None,
    alpha: float = 0.5,
    beta: float = 1.0,
    unigrams: Sequence[str] | None = None,
) -> Any:
    """A pyctcdecode beam-search decoder, with a KenLM model when ``kenlm_path`` is given.

    Build it once and reuse it: loading a KenLM model takes a while.

    Args:
        tokenizer: A ``Wav2Vec2CTCTokenizer`` or a processor holding one.
        kenlm_path: An ARPA or binary KenLM model; None gives a beam search without LM.
        vocab_size: Number of model outputs (``model.config.vocab_size``); defaults to the
            tokenizer's size.
        alpha: Language model weight.
        beta: Word insertion bonus.
        unigrams: The LM's word list (lets pyctcdecode score partial words); optional.

    Raises:
        WorkbenchError: pyctcdecode (or kenlm, for an LM) is not installed, or the LM file
            does not exist.
    """
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError as err:
        raise WorkbenchError(LM_INSTALL_HINT) from err
    if kenlm_path is not None:
        kenlm_path = Path(kenlm_path)
        if not kenlm_path.is_file():
            raise WorkbenchError(
                f"Language model {kenlm_path} does not exist; pass the path of an ARPA or "
                "binary KenLM file (built with KenLM's lmplz / build_binary)."
            )
        try:
            import kenlm  # noqa: F401  (pyctcdecode silently skips the LM without it)
        except ImportError as err:
            raise WorkbenchError(LM_INSTALL_HINT) from err
    return build_ctcdecoder(
        ctc_labels(tokenizer, vocab_size),
        kenlm_model_path=str(kenlm_path) if kenlm_path is not None else None,
        unigrams=list(unigrams) if unigrams is not None else None,
        alpha=alpha,
        beta=beta,
    )


def decode_with_lm(
    logits: torch.Tensor | np.ndarray,
    decoder: Any,
    lengths: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    beam_width: int = 100,
) -> list[str]:
    """Beam-search decoding with a pyctcdecode decoder from :func:`build_lm_decoder`.

    Args:
        logits: ``(batch, frames, vocab)`` or ``(frames, vocab)`` logits.
        decoder: What :func:`build_lm_decoder` returned.
        lengths: Valid frames per batch item (padding beyond them is ignored).
        beam_width: Beams kept per step; larger is slower and slightly better.

    Returns:
        One text per batch item.
    """
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().float().cpu().numpy()
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim == 2:
        logits = logits[None]
    if logits.ndim != 3:
        raise WorkbenchError(
            "CTC logits must have shape (batch, frames, vocab) or (frames, vocab); got "
            f"{logits.ndim} dimensions."
        )
    valid = _valid_lengths(lengths, logits.shape[0], logits.shape[1])
    texts = []
    for item, n in zip(logits, valid, strict=True):
        if n == 0:
            texts.append("")
            continue
        log_probs = _log_softmax(item[:n])
        texts.append(well_formed(decoder.decode(log_probs, beam_width=beam_width)))
    return texts


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
