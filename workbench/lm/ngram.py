"""Interpolated modified Kneser-Ney n-gram estimation, written as an ARPA file.

Why by hand: the PyPI ``kenlm`` package (and its forks) can only query a model; KenLM's
estimator ``lmplz`` needs a C++ build with Boost, which the workbench's set-up must not
require. ``kaldingram`` (pure Python) writes backoff Kneser-Ney with one discount per order
and no ``<unk>``, which decodes out-of-vocabulary words at log10 p = -100. This module follows
``lmplz`` (Heafield et al. 2013; Chen and Goodman 1998, eq. 26) so that its ARPA files are
what a KenLM user would get, and ``tests/workbench/lm/test_ngram.py`` checks it against
``lmplz`` outputs on the same text (log-probabilities and backoffs within 1e-4). One known
difference: ``lmplz`` counts the last n-gram of each lower order (in its sort order) by its
raw rather than its adjusted count when it collects the counts of counts (the end of
``AdjustCounts::Run`` passes ``actual_counts``), which can move a discount in the fourth
digit; the test shows that with ``lmplz``'s own discounts every number agrees.

- Sentences are ``<s> w1 ... wn </s>``. The highest order keeps raw counts; a lower-order
  n-gram's adjusted count is the number of distinct words seen to its left, except n-grams
  that begin with ``<s>`` (nothing can precede them), which keep their raw counts.
- Per order, discounts D1, D2, D3+ from the counts of adjusted counts 1-4; when one is
  undefined or out of range (small or artificial text) ``lmplz --discount_fallback``'s values
  0.5, 1, 1.5 are used, and the model records that it happened.
- p(w|h) = (a(hw) - D(a(hw))) / sum_x a(hx) + gamma(h) p(w|h'), with
  gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / sum_x a(hx); unigrams interpolate with
  the uniform distribution over the vocabulary (``</s>`` and ``<unk>`` included, ``<s>`` not),
  so ``<unk>`` gets gamma/|V|. ``<s>`` is written with log10 p = 0, as ``lmplz`` writes it.

Memory: one dict per order, keyed by tuples of interned strings.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from workbench.errors import WorkbenchError
from workbench.fsio import atomic_output

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = (BOS, EOS, UNK)
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz --discount_fallback
BOS_LOG10 = 0.0  # what lmplz writes for <s> (never predicted; SRILM writes -99)
BOS_FLOOR = -99.0  # log10 of a zero probability or backoff
MIN_ORDER, MAX_ORDER = 1, 6

Gram = tuple[str, ...]


@dataclass
class NgramModel:
    """An estimated model: log10 probabilities and backoffs per order (index 0 = unigrams)."""

    order: int
    log10_probs: list[dict[Gram, float]]
    log10_backoffs: list[dict[Gram, float]]
    discounts: list[tuple[float, float, float]]
    fallback_orders: list[int] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0  # words (or characters) of the text, without <s> and </s>

    @property
    def vocabulary(self) -> list[str]:
        """Every unigram but ``<s>``, ``</s>`` and ``<unk>``."""
        return [g[0] for g in self.log10_probs[0] if g[0] not in SPECIAL]

    def counts(self) -> list[int]:
        return [len(probs) for probs in self.log10_probs]

    def log10_prob(self, word: str, history: Sequence[str] = ()) -> float:
        """log10 p(word | history), backing off as a reader of the ARPA file would."""
        history = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        gram = (*history, word if (word,) in self.log10_probs[0] else UNK)
        penalty = 0.0
        while len(gram) > 1 and gram not in self.log10_probs[len(gram) - 1]:
            penalty += self.log10_backoffs[len(gram) - 2].get(gram[:-1], 0.0)
            gram = gram[1:]
        return penalty + self.log10_probs[len(gram) - 1][gram]


def estimate(sentences: Iterable[Sequence[str]], order: int,
             discounts: Sequence[tuple[float, float, float]] | None = None) -> NgramModel:
    """Estimate an interpolated modified Kneser-Ney model of ``order`` from token lists.

    ``discounts`` (D1, D2, D3+ per order) replace the estimated ones, as ``lmplz
    --discount_fallback`` values or a test's reference values do.
    """
    if not MIN_ORDER <= order <= MAX_ORDER:
        raise WorkbenchError(f"n-gram order {order} is not supported; use 1 to {MAX_ORDER}.")
    grams, n_sentences, n_tokens = _raw_counts(sentences, order)
    if n_tokens == 0:
        raise WorkbenchError("The text has no words after normalisation: nothing to estimate.")
    adjusted = _adjusted_counts(grams, order)
    estimated, fallback = _discounts(adjusted)
    discounts = [tuple(d) for d in discounts] if discounts else estimated
    probs, backoffs = _interpolate(adjusted, discounts)
    return NgramModel(order, probs, backoffs, discounts, fallback, n_sentences, n_tokens)


def _raw_counts(sentences: Iterable[Sequence[str]], order: int) -> tuple[list[Counter], int, int]:
    """Highest-order counts, and raw counts of the shorter n-grams that begin with <s>."""
    grams: list[Counter] = [Counter() for _ in range(order)]
    highest, bos_initial = grams[order - 1], grams
    n_sentences = n_tokens = 0
    canonical = {BOS: BOS, EOS: EOS}.setdefault  # one string object per word type: the
    for words in sentences:                      # n-gram tuples share them (memory)
        tokens = (BOS, *(canonical(w, w) for w in words if w not in SPECIAL), EOS)
        if len(tokens) == 2:
            continue
        n_sentences += 1
        n_tokens += len(tokens) - 2
        highest.update(zip(*(tokens[i:] for i in range(order)), strict=False))
        for n in range(2, min(order, len(tokens) + 1)):
            bos_initial[n - 1][tokens[:n]] += 1
    return grams, n_sentences, n_tokens


def _adjusted_counts(grams: list[Counter], order: int) -> list[Counter]:
    """Lower orders: distinct left extensions (or the raw count, for <s>-initial n-grams)."""
    for n in range(order - 1, 0, -1):
        lower = grams[n - 1]  # holds the <s>-initial raw counts already
        for gram in grams[n]:
            lower[gram[1:]] += 1  # never <s>-initial: <s> only ever starts a sentence
    grams[0].pop((BOS,), None)
    return grams


def _discounts(adjusted: list[Counter]) -> tuple[list[tuple[float, float, float]], list[int]]:
    """D1, D2, D3+ per order from counts of adjusted counts (Chen and Goodman eq. 26)."""
    discounts, fallback = [], []
    for n, counts in enumerate(adjusted, start=1):
        t = Counter(c for c in counts.values() if c < 5)
        try:
            if any(t[k] == 0 for k in (1, 2, 3)):
                raise ValueError
            y = t[1] / (t[1] + 2 * t[2])
            values = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
            if any(not 0.0 <= d <= k for k, d in zip((1, 2, 3), values, strict=True)):
                raise ValueError
        except ValueError:
            values = FALLBACK_DISCOUNTS
            fallback.append(n)
        discounts.append(values)
    return discounts, fallback


def _interpolate(adjusted: list[Counter], discounts: list[tuple[float, float, float]]
                 ) -> tuple[list[dict[Gram, float]], list[dict[Gram, float]]]:
    """Turn adjusted counts into interpolated probabilities (in place, order by order: the
    counts' dicts become the probabilities' dicts), then log10 probabilities and backoffs."""
    gammas: list[dict[Gram, float]] = []
    for n, counts in enumerate(adjusted, start=1):
        d = discounts[n - 1]
        totals: dict[Gram, int] = defaultdict(int)
        gamma: dict[Gram, float] = defaultdict(float)  # D1 N1 + D2 N2 + D3 N3+, then / total
        for gram, count in counts.items():
            totals[gram[:-1]] += count
            gamma[gram[:-1]] += d[min(count, 3) - 1]
        for context, total in totals.items():
            gamma[context] /= total
        lower = adjusted[n - 2] if n > 1 else None
        uniform = gamma[()] / (len(counts) + (0 if (UNK,) in counts else 1)) if n == 1 else 0.0
        for gram in counts:
            count = counts[gram]
            u = (count - d[min(count, 3) - 1]) / totals[gram[:-1]]
            counts[gram] = u + (uniform if lower is None else gamma[gram[:-1]] * lower[gram[1:]])
        if n == 1:
            counts.setdefault((UNK,), uniform)
        del totals
        gammas.append(gamma)
    return _to_log10(adjusted, gammas)


def _to_log10(probs: list[dict[Gram, float]], gammas: list[dict[Gram, float]]
              ) -> tuple[list[dict[Gram, float]], list[dict[Gram, float]]]:
    """log10 in place; the backoff of an n-gram is the gamma of the context it forms."""
    for level in (*probs, *gammas[1:]):
        for key in level:
            value = level[key]
            level[key] = math.log10(value) if value > 0 else BOS_FLOOR
    probs[0][(BOS,)] = BOS_LOG10
    return probs, gammas[1:]


# ---------------------------------------------------------------------------------------------
# ARPA


def write_arpa(model: NgramModel, path: Path) -> Path:
    """Write ``model`` as an ARPA file, atomically (a kill leaves the old file or none)."""
    with atomic_output(Path(path)) as out:
        _write_arpa(model, out)
    return Path(path)


def _write_arpa(model: NgramModel, out: TextIO) -> None:
    out.write("\\data\\\n")
    for n, count in enumerate(model.counts(), start=1):
        out.write(f"ngram {n}={count}\n")
    for n, level in enumerate(model.log10_probs, start=1):
        out.write(f"\n\\{n}-grams:\n")
        backoffs = model.log10_backoffs[n - 1] if n < model.order else {}
        for gram, logp in level.items():
            text = " ".join(gram)
            if gram in backoffs:
                out.write(f"{logp:.7g}\t{text}\t{backoffs[gram]:.7g}\n")
            elif n < model.order and gram[-1] != EOS:
                out.write(f"{logp:.7g}\t{text}\t0\n")
            else:
                out.write(f"{logp:.7g}\t{text}\n")
    out.write("\n\\end\\\n")


def read_arpa(path: Path) -> tuple[list[dict[Gram, float]], list[dict[Gram, float]]]:
    """log10 probabilities and backoffs of an ARPA file (for tests and reports)."""
    probs: list[dict[Gram, float]] = []
    backoffs: list[dict[Gram, float]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                probs.append({})
                backoffs.append({})
                continue
            if not probs or not line or line.startswith("\\"):
                continue
            parts = line.split("\t")
            gram = tuple(parts[1].split(" "))
            probs[-1][gram] = float(parts[0])
            if len(parts) > 2:
                backoffs[-1][gram] = float(parts[2])
    return probs, backoffs
