"""Māori sentences of real words: the second unseen language with words that mean something."""

from __future__ import annotations

import itertools
import random

import pytest

from data_recipes import maori_lexicon as mi
from data_recipes.synthetic import LANGUAGES, lexicon_sentences


def test_sentences_are_reproducible_distinct_and_in_the_alphabet():
    first = list(itertools.islice(lexicon_sentences("mi", "7"), 2000))
    assert first == list(itertools.islice(mi.maori_sentences(random.Random("7")), 2000))
    assert len(set(first)) == len(first)
    assert set("".join(first)) <= LANGUAGES["mi"].alphabet | {" "}
    particles = {"ka", "i", "kei", "e", "kua", "he", "kāore"}
    time_words = {w.split()[0] for words in mi.TENSES.values() for w in words}
    assert all(s.split()[0] in particles | time_words for s in first)


@pytest.mark.parametrize(("tense", "expected"), [("ka", "ka kai"), ("e ana", "e kai ana"),
                                                 ("kei te", "kei te kai")])
def test_tense_particles_frame_the_verb(tense, expected):
    assert mi.verb_phrase("kai", tense) == expected


def test_possessives_follow_the_nouns_class():
    rng = random.Random(0)
    phrases = {mi.noun_phrase("whare", {"whare": ("whare", "o")}, rng) for _ in range(300)}
    owned = {p.split()[0] for p in phrases} - {"te", "ngā"}
    assert owned == {"tōku", "tōu", "tōna"}  # o-class: never taku/tāu/tana
    phrases = {mi.noun_phrase("kai", mi.FOOD, rng) for _ in range(300)}
    assert {p.split()[0] for p in phrases} - {"te", "ngā"} == {"taku", "tāu", "tana"}


def test_a_language_without_a_lexicon_is_refused():
    with pytest.raises(ValueError, match="No lexicon for 'gn'"):
        lexicon_sentences("gn", "0")
