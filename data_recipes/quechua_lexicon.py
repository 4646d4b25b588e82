"""Sentences of Southern Quechua made from a small lexicon of real words.

The demo corpus (and the community text that ships beside it) are sentences composed here:
real Southern Quechua stems in the Cusco-Collao orthography (``ch' k' p' q' t'`` ejectives,
``chh kh ph qh th`` aspirates, ``ñ``, ``ll``) with the language's own suffixes, in a handful
of simple patterns. Every sentence is the project's own, made by the code below; none is
copied from a text. They are grammatical in the simple way a first reader is, not literature:
a language model built from more of them has something real to learn (words recur, suffixes
combine by rule, verbs take fitting objects), which random syllable strings never give.

Morphology used (suffix forms after a vowel / after a consonant):

- topic ``-qa``; direct-witness evidential ``-n`` / ``-mi`` on the focused word;
- cases ``-ta`` (object), ``-pi`` (in, at), ``-man`` (to), ``-manta`` (from), ``-wan`` (with);
- plural ``-kuna``; possessors ``-y`` / ``-niy`` (my), ``-yki`` / ``-niyki`` (your),
  ``-n`` / ``-nin`` (his, her);
- verbs: present, progressive ``-chka-``, past ``-rqa-`` and future, in five persons;
  negation ``mana ... -chu``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from data_recipes.sentences import distinct_sentences, weighted_sentence

# Nouns by meaning: what a verb may take is said in terms of these groups.
PEOPLE = ("runa", "warmi", "qhari", "wawa", "irqi", "mama", "tayta", "wayqi", "ñaña",
          "yachachiq", "awicha", "machula", "sipas", "wayna", "michiq", "llamk'aq")
ANIMALS = ("allqu", "misi", "wallpa", "llama", "paqucha", "uwiha", "waka", "kuntur",
           "kuchi", "quwi", "atuq", "challwa", "pisqu")
FOOD = ("tanta", "aycha", "papa", "sara", "kancha", "chuñu", "uchu", "mut'i", "runtu",
        "kinwa", "lisas", "uqa")
DRINK = ("yaku", "unu", "lichi", "api", "aqha")
PLACES = ("wasi", "llaqta", "chakra", "urqu", "qucha", "mayu", "pampa", "ñan", "qhatu",
          "yachaywasi", "kancha", "k'ullu", "muqu")
THINGS = ("p'acha", "chumpi", "q'ipi", "p'anqa", "qillqa", "rumi", "t'ika", "k'aspi",
          "manka", "urpu", "lliklla", "ch'uspa")
NATURE = ("inti", "killa", "quyllur", "para", "wayra", "nina", "sacha", "t'ika", "urqu",
          "qucha", "mayu", "rit'i", "phuyu")
ADJECTIVES = ("hatun", "huch'uy", "sumaq", "musuq", "machu", "chiri", "q'uñi", "puka",
              "q'illu", "yana", "yuraq", "k'acha", "kusisqa", "sayk'usqa", "yarqasqa",
              "unquq", "mat'i", "llamp'u")

# Verb stem -> (who does it, what it takes). Subjects and objects are noun groups.
TRANSITIVE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mikhu": (PEOPLE + ANIMALS, FOOD),
    "upya": (PEOPLE + ANIMALS, DRINK),
    "wayk'u": (PEOPLE, FOOD),
    "ranti": (PEOPLE, FOOD + THINGS + ANIMALS),
    "apa": (PEOPLE, FOOD + DRINK + THINGS),
    "qhawa": (PEOPLE + ANIMALS, NATURE + ANIMALS + PEOPLE),
    "muna": (PEOPLE, FOOD + DRINK + THINGS + ANIMALS),
    "ruwa": (PEOPLE, ("wasi", "p'acha", "chumpi", "manka", "urpu", "lliklla", "tanta")),
    "awa": (PEOPLE, ("p'acha", "chumpi", "lliklla", "ch'uspa")),
    "tarpu": (PEOPLE, ("papa", "sara", "kinwa", "lisas", "uqa", "t'ika")),
    "michi": (PEOPLE, ("llama", "paqucha", "uwiha", "waka", "kuchi")),
    "ñawincha": (PEOPLE, ("p'anqa", "qillqa")),
    "qillqa": (PEOPLE, ("p'anqa", "qillqa", "suti")),
    "maylla": (PEOPLE, ("p'acha", "manka", "urpu", "papa", "lliklla")),
    "tapu": (PEOPLE, PEOPLE),
    "yanapa": (PEOPLE, PEOPLE),
    "riqsi": (PEOPLE, PEOPLE + PLACES),
    "uyari": (PEOPLE + ANIMALS, PEOPLE + ANIMALS + ("wayra", "para", "mayu")),
    "maska": (PEOPLE + ANIMALS, FOOD + THINGS + ANIMALS + PEOPLE),
}
# Verbs without an object, said of somebody somewhere (-pi).
INTRANSITIVE: dict[str, tuple[str, ...]] = {
    "puñu": PEOPLE + ANIMALS,
    "tiya": PEOPLE + ANIMALS,
    "llamk'a": PEOPLE,
    "puklla": ("wawa", "irqi", "sipas", "wayna", "allqu", "misi"),
    "taki": PEOPLE + ("pisqu",),
    "tusu": PEOPLE,
    "waqa": PEOPLE + ANIMALS,
    "asi": PEOPLE,
    "rima": PEOPLE,
    "samari": PEOPLE + ANIMALS,
}
# Verbs of motion: to (-man) a place, or from (-manta) it.
MOTION = ("ri", "hamu", "puri", "kuti", "chaya", "yayku", "lluqsi", "phawa")

PRONOUNS = {"ñuqa": "1s", "qam": "2s", "pay": "3s", "ñuqanchik": "1p", "paykuna": "3p"}
# Person endings by tense; present, progressive and past share the personal endings.
_PERSONAL = {"1s": "ni", "2s": "nki", "3s": "n", "1p": "nchik", "3p": "nku"}
_FUTURE = {"1s": "saq", "2s": "nki", "3s": "nqa", "1p": "sunchik", "3p": "nqaku"}
_TENSE_MARK = {"present": "", "progressive": "chka", "past": "rqa"}
# Time words that fit each tense (used in some sentences only).
TIME_WORDS = {
    "present": ("sapa p'unchaw", "tutamanta", "sapa tuta"),
    "progressive": ("kunan", "kunallan"),
    "past": ("qayna p'unchaw", "qayna wata", "ñawpaqta"),
    "future": ("paqarin", "minchha", "hamuq wata"),
}
_POSSESSORS = ("my", "your", "his")
_VOWELS = frozenset("aeiou")


def ends_in_vowel(word: str) -> bool:
    """True when the word's last letter is a vowel (suffix forms depend on it)."""
    return word[-1] in _VOWELS


def evidential(word: str) -> str:
    """Add the direct evidential: ``-n`` after a vowel, ``-mi`` after a consonant."""
    return word + ("n" if ends_in_vowel(word) else "mi")


def possessed(noun: str, possessor: str) -> str:
    """``wasi`` -> ``wasiy`` (my), ``wasiyki`` (your), ``wasin`` (his); ``-ni-`` after a
    consonant (``yachachiqniy``)."""
    link = "" if ends_in_vowel(noun) else "ni"
    return noun + link + {"my": "y", "your": "yki", "his": "n"}[possessor]


def conjugate(stem: str, tense: str, person: str) -> str:
    """``mikhu`` + past + 3s -> ``mikhurqan``; future 1s -> ``mikhusaq``."""
    if tense == "future":
        return stem + _FUTURE[person]
    return stem + _TENSE_MARK[tense] + _PERSONAL[person]


def noun_phrase(noun: str, rng: random.Random) -> tuple[str, str]:
    """A noun, sometimes possessed or plural; returns the word and its person (3s/3p)."""
    roll = rng.random()
    if roll < 0.25:
        noun = possessed(noun, rng.choice(_POSSESSORS))
    if rng.random() < 0.2:
        return noun + "kuna", "3p"
    return noun, "3s"


class _Sentence:
    """Parts of one clause, assembled into a sentence by :meth:`text`."""

    def __init__(self, rng: random.Random, subjects: tuple[str, ...]) -> None:
        self.rng = rng
        self.tense = rng.choice(("present", "present", "progressive", "past", "future"))
        if rng.random() < 0.25:
            self.subject, self.person = rng.choice(list(PRONOUNS.items()))
        else:
            self.subject, self.person = noun_phrase(rng.choice(subjects), rng)

    def text(self, middle: list[str], stem: str) -> str:
        """Subject-qa [time] middle... verb; sometimes negated (mana ... -chu) or with the
        evidential on the word before the verb."""
        rng = self.rng
        verb = conjugate(stem, self.tense, self.person)
        words = [self.subject + "qa"]
        if rng.random() < 0.3:
            words.append(rng.choice(TIME_WORDS[self.tense]))
        if rng.random() < 0.15:
            words += ["mana", *middle, verb + "chu"]
        else:
            if middle and rng.random() < 0.4:
                middle = [*middle[:-1], evidential(middle[-1])]
            words += [*middle, verb]
        return " ".join(words)


def _transitive(rng: random.Random) -> str:
    stem = rng.choice(sorted(TRANSITIVE))
    subjects, objects = TRANSITIVE[stem]
    clause = _Sentence(rng, subjects)
    obj, _ = noun_phrase(rng.choice(objects), rng)
    middle = [obj + "ta"]
    if rng.random() < 0.3:
        middle.insert(0, rng.choice(PLACES) + "pi")
    return clause.text(middle, stem)


def _intransitive(rng: random.Random) -> str:
    stem = rng.choice(sorted(INTRANSITIVE))
    clause = _Sentence(rng, INTRANSITIVE[stem])
    place, _ = noun_phrase(rng.choice(PLACES), rng)
    return clause.text([place + "pi"], stem)


def _motion(rng: random.Random) -> str:
    stem = rng.choice(MOTION)
    clause = _Sentence(rng, PEOPLE + ANIMALS)
    place, _ = noun_phrase(rng.choice(PLACES), rng)
    middle = [place + ("manta" if stem == "lluqsi" or rng.random() < 0.2 else "man")]
    if rng.random() < 0.3:
        companion, _ = noun_phrase(rng.choice(PEOPLE + ANIMALS), rng)
        middle.insert(0, companion + "wan")
    return clause.text(middle, stem)


def _description(rng: random.Random) -> str:
    """``wasiqa hatunmi`` (the house is big); ``wasipi allqu kan`` (there is a dog)."""
    if rng.random() < 0.3:
        place, _ = noun_phrase(rng.choice(PLACES), rng)
        thing = rng.choice(ANIMALS + PEOPLE + THINGS + FOOD)
        return f"{place}pi {thing} kan"
    noun, _ = noun_phrase(rng.choice(PEOPLE + ANIMALS + PLACES + THINGS + NATURE), rng)
    return f"{noun}qa {evidential(rng.choice(ADJECTIVES))}"


_PATTERNS = ((_transitive, 5), (_intransitive, 2), (_motion, 3), (_description, 1))


def quechua_sentence(rng: random.Random) -> str:
    """One sentence: 2-7 words, lower case, no punctuation."""
    return weighted_sentence(_PATTERNS, rng)


def quechua_sentences(rng: random.Random, exclude: frozenset[str] = frozenset()
                      ) -> Iterator[str]:
    """Endless stream of distinct sentences not in ``exclude``."""
    return distinct_sentences(quechua_sentence, rng, exclude)
