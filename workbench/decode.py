"""CTC decoding: frame logits -> text.

Greedy decoding (:func:`greedy_decode`) is what the workbench uses everywhere: take the most
likely token per frame, collapse repeats, drop the blank (``[PAD]``, id 0) and turn the word
delimiter ``|`` into a space. It follows ``Wav2Vec2CTCTokenizer.decode``, so its text equals
what the transformers ASR pipeline prints for the same logits, and then makes it well-formed
(``workbench.text.well_formed``): code-point labels are recomposed to NFC and a combining
mark emitted with no base (after a space or first) is dropped, where the pipeline would print
it floating on a dotted circle.

Every consumer decodes through :func:`decode_utterance`: greedy, or, given a language model
(``workbench.lm``), a beam search over the same logits' log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.text import well_formed


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
# The one entry point: greedy, or beam search with a language model


def decode_utterance(logits: torch.Tensor | np.ndarray, tokenizer: Any, lm: Any = None) -> str:
    """Text of one utterance's ``(frames, vocab)`` logits: greedy, or with ``lm`` (a
    :class:`workbench.lm.beam.BeamDecoder`) a beam search over their log-probabilities."""
    if lm is None:
        return greedy_decode(logits, tokenizer)[0]
    return lm.decode(log_softmax(logits))


def log_softmax(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Natural-log probabilities of ``(frames, vocab)`` logits, float32."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().float().cpu().numpy()
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim == 3 and logits.shape[0] == 1:
        logits = logits[0]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
