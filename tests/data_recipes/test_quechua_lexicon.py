"""The demo's Quechua sentences: real words, the language's suffixes, and a community text
that never repeats a transcript of the demo corpus."""

from __future__ import annotations

import csv
import io
import itertools
import random
import tarfile
from collections import Counter

import pytest

from data_recipes import quechua_lexicon as qu
from data_recipes.synthetic import (
    DEMO_ARCHIVE,
    DEMO_NAME,
    DEMO_TEXT,
    DEMO_TEXT_SENTENCES,
    LANGUAGES,
    generate_corpus,
)

needs_espeak = pytest.mark.needs_tool("espeak-ng")


@pytest.mark.parametrize(("word", "expected"), [("wasi", "wasin"), ("sumaq", "sumaqmi"),
                                                ("chakrapi", "chakrapin")])
def test_the_evidential_follows_the_last_sound(word, expected):
    assert qu.evidential(word) == expected


@pytest.mark.parametrize(("noun", "possessor", "expected"), [
    ("wasi", "my", "wasiy"), ("wasi", "your", "wasiyki"), ("wasi", "his", "wasin"),
    ("yachachiq", "my", "yachachiqniy"), ("atuq", "his", "atuqnin")])
def test_possessors_take_ni_after_a_consonant(noun, possessor, expected):
    assert qu.possessed(noun, possessor) == expected


@pytest.mark.parametrize(("tense", "person", "expected"), [
    ("present", "1s", "mikhuni"), ("present", "3p", "mikhunku"),
    ("progressive", "3s", "mikhuchkan"), ("past", "3s", "mikhurqan"),
    ("past", "1p", "mikhurqanchik"), ("future", "1s", "mikhusaq"),
    ("future", "3s", "mikhunqa"), ("future", "3p", "mikhunqaku")])
def test_verbs_are_conjugated_by_tense_and_person(tense, person, expected):
    assert qu.conjugate("mikhu", tense, person) == expected


def test_sentences_are_reproducible_distinct_and_in_the_alphabet():
    first = list(itertools.islice(qu.quechua_sentences(random.Random(7)), 2000))
    again = list(itertools.islice(qu.quechua_sentences(random.Random(7)), 2000))
    assert first == again and len(set(first)) == len(first)
    alphabet = LANGUAGES["qu"].alphabet | {" "}
    assert set("".join(first)) <= alphabet
    assert all(2 <= len(s.split()) <= 7 for s in first)
    assert all(s.split()[0].endswith("qa") or s.split()[0].endswith("pi") for s in first)
    words = Counter(w for s in first for w in s.split())
    assert len(words) > 500 and words.most_common(1)[0][1] > 50  # words recur, by design
    skipped = frozenset(first[:100])
    rest = itertools.islice(qu.quechua_sentences(random.Random(7), exclude=skipped), 500)
    assert not skipped & set(rest)


def test_the_bundled_community_text_never_repeats_a_demo_transcript():
    with tarfile.open(DEMO_ARCHIVE) as archive:
        table = archive.extractfile(f"{DEMO_NAME}/metadata.csv").read().decode("utf-8")
    transcripts = {row["transcription"] for row in csv.DictReader(io.StringIO(table))}
    lines = DEMO_TEXT.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == DEMO_TEXT_SENTENCES
    assert not transcripts & set(lines)
    # Both come from the lexicon's generator with the seed the build uses (seed 0).
    expected = itertools.islice(qu.quechua_sentences(random.Random("0:qu:corpus")),
                                len(transcripts))
    assert set(expected) == transcripts
    assert lines[:50] == list(itertools.islice(
        qu.quechua_sentences(random.Random("0:qu:text"), exclude=frozenset(transcripts)), 50))


@needs_espeak
def test_a_corpus_can_say_given_sentences_and_refuses_foreign_letters(tmp_path):
    sentences = iter(["wasiqa hatunmi", "allquqa mikhun", "misiqa puñun", "ñuqaqa rini"])
    out = generate_corpus(tmp_path / "c", language="qu", minutes=0.05, voices=("m1",),
                          progress=False, sentences=sentences)
    with open(out / "metadata.csv", encoding="utf-8") as handle:
        said = [row["transcription"] for row in csv.DictReader(handle)]
    assert said and said == ["wasiqa hatunmi", "allquqa mikhun", "misiqa puñun",
                             "ñuqaqa rini"][:len(said)]
    with pytest.raises(ValueError, match="outside the alphabet: j"):
        generate_corpus(tmp_path / "d", language="qu", minutes=0.05, voices=("m1",),
                        progress=False, sentences=iter(["uwijaqa mikhun"]))
