"""What the lexicon sentence makers share: a weighted choice of pattern, and an endless stream
of distinct sentences (``data_recipes.quechua_lexicon``, ``data_recipes.maori_lexicon``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

Pattern = Callable[[random.Random], str]


def weighted_sentence(patterns: Sequence[tuple[Pattern, int]], rng: random.Random) -> str:
    """One sentence from a pattern drawn by weight."""
    makers, weights = zip(*patterns, strict=True)
    return rng.choices(makers, weights)[0](rng)


def distinct_sentences(make: Pattern, rng: random.Random,
                       exclude: frozenset[str] = frozenset()) -> Iterator[str]:
    """Endless stream of sentences from ``make``, each once, none in ``exclude``."""
    seen = set(exclude)
    while True:
        sentence = make(rng)
        if sentence not in seen:
            seen.add(sentence)
            yield sentence
