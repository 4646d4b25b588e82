"""Sentences of Māori made from a small lexicon of real words: a second unseen language with
words that mean something, beside the Quechua demo.

As :mod:`data_recipes.quechua_lexicon`: every sentence is composed here from real words in a
few simple patterns, none copied from a text. Māori marks tense and aspect with particles
before the verb (``ka`` future, ``i`` past, ``kei te`` present, ``e ... ana`` continuous,
``kua`` perfect); the subject follows the verb, the object takes ``i``, a goal ``ki``;
nouns take the article ``te`` (one) or ``ngā`` (several), and a possessive ``taku`` /
``tōku`` (my) by the noun's a- or o-class. Adjectives follow the noun.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from data_recipes.sentences import distinct_sentences, weighted_sentence

# Noun -> (plural form, possession class "a" or "o").
PEOPLE = {"tamaiti": ("tamariki", "a"), "wahine": ("wāhine", "a"), "tāne": ("tāne", "a"),
          "kuia": ("kuia", "o"), "koroua": ("koroua", "o"), "kaiako": ("kaiako", "o"),
          "whaea": ("whaea", "o"), "matua": ("mātua", "o"), "kōtiro": ("kōtiro", "a"),
          "tama": ("tama", "a"), "hoa": ("hoa", "o"), "tuahine": ("tuāhine", "o"),
          "kaumātua": ("kaumātua", "o"), "tuakana": ("tuākana", "o"), "teina": ("tēina", "o"),
          "pēpi": ("pēpi", "a"), "rangatira": ("rangatira", "o"), "kaimahi": ("kaimahi", "a"),
          "tākuta": ("tākuta", "o"), "tauira": ("tauira", "a"), "kaihautū": ("kaihautū", "o")}
ANIMALS = {"kurī": ("kurī", "a"), "ngeru": ("ngeru", "a"), "manu": ("manu", "a"),
           "hōiho": ("hōiho", "a"), "kau": ("kau", "a"), "poaka": ("poaka", "a"),
           "kiore": ("kiore", "a"), "tuna": ("tuna", "a"), "tohorā": ("tohorā", "a"),
           "kekeno": ("kekeno", "a"), "kiwi": ("kiwi", "a"), "tūī": ("tūī", "a"),
           "kererū": ("kererū", "a"), "hipi": ("hipi", "a"), "heihei": ("heihei", "a"),
           "pīwakawaka": ("pīwakawaka", "a")}
FOOD = {"kai": ("kai", "a"), "āporo": ("āporo", "a"), "rīwai": ("rīwai", "a"),
        "kūmara": ("kūmara", "a"), "ika": ("ika", "a"), "parāoa": ("parāoa", "a"),
        "hua manu": ("hua manu", "a"), "mīti": ("mīti", "a"), "pāua": ("pāua", "a"),
        "kōura": ("kōura", "a"), "kānga": ("kānga", "a"), "paukena": ("paukena", "a"),
        "kāpeti": ("kāpeti", "a"), "panana": ("panana", "a"), "pihikete": ("pihikete", "a"),
        "hupa": ("hupa", "a"), "rēmana": ("rēmana", "a")}
DRINK = {"wai": ("wai", "o"), "tī": ("tī", "a"), "miraka": ("miraka", "a"),
         "kawhe": ("kawhe", "a"), "waiū": ("waiū", "a")}
THINGS = {"pukapuka": ("pukapuka", "a"), "reta": ("reta", "a"), "waka": ("waka", "o"),
          "kākahu": ("kākahu", "o"), "pōro": ("pōro", "a"), "moni": ("moni", "a"),
          "pene": ("pene", "a"), "kete": ("kete", "a"), "hū": ("hū", "o"),
          "rākau": ("rākau", "a"), "kōhatu": ("kōhatu", "a"), "peke": ("peke", "a"),
          "tēpu": ("tēpu", "a"), "tūru": ("tūru", "o"), "matapihi": ("matapihi", "o"),
          "kūaha": ("kūaha", "o"), "pouaka": ("pouaka", "a"), "pahikara": ("pahikara", "a"),
          "rorohiko": ("rorohiko", "a"), "waea": ("waea", "a"), "whāriki": ("whāriki", "o"),
          "korowai": ("korowai", "o"), "taonga": ("taonga", "o"), "kāri": ("kāri", "a")}
PLACES = ("kura", "toa", "marae", "moana", "awa", "maunga", "ngahere", "tāone", "whare",
          "kāinga", "māra", "roto", "tātahi", "hōhipera", "whare karakia", "papa tākaro",
          "puna", "pāmu", "whare pukapuka", "huarahi", "motu", "wharenui", "pā", "taiwhanga",
          "wharekai", "repo", "raorao", "whārua")
NAMES = ("hēmi", "mere", "rewi", "aroha", "tama", "hine", "wiremu", "ānaru", "hōhepa",
         "mereana", "tipene", "kiri", "rāwiri", "huia", "pita", "wai")
PRONOUNS = ("ahau", "koe", "ia", "mātou", "tātou", "rātou", "kōrua", "māua")
ADJECTIVES = ("nui", "iti", "pai", "ātaahua", "hou", "tawhito", "whero", "pango", "mā",
              "kākāriki", "kikorangi", "reka", "makariri", "wera", "roa", "poto", "kino",
              "māmā", "taumaha", "mākū", "maroke", "kōwhai", "parauri", "hōhonu", "teitei",
              "mōhio", "koa", "pōuri", "ngenge", "hiakai", "pukumahi", "tere", "pōturi")

# Verb -> (subjects, objects); intransitive verbs have no objects.
TRANSITIVE = {
    "kai": ({**PEOPLE, **ANIMALS}, FOOD),
    "inu": ({**PEOPLE, **ANIMALS}, DRINK),
    "tunu": (PEOPLE, FOOD),
    "hoko": (PEOPLE, {**FOOD, **DRINK, **THINGS}),
    "pānui": (PEOPLE, {"pukapuka": THINGS["pukapuka"], "reta": THINGS["reta"]}),
    "tuhi": (PEOPLE, {"reta": THINGS["reta"], "pukapuka": THINGS["pukapuka"]}),
    "titiro": ({**PEOPLE, **ANIMALS}, {**PEOPLE, **ANIMALS, **THINGS}),
    "kite": ({**PEOPLE, **ANIMALS}, {**PEOPLE, **ANIMALS, **THINGS}),
    "horoi": (PEOPLE, {"kākahu": THINGS["kākahu"], "waka": THINGS["waka"], "hū": THINGS["hū"]}),
    "āwhina": (PEOPLE, PEOPLE),
    "tiki": (PEOPLE, {**FOOD, **DRINK, **THINGS}),
    "hopu": ({**PEOPLE, **ANIMALS}, {"ika": FOOD["ika"], "pōro": THINGS["pōro"],
                                     "manu": ANIMALS["manu"]}),
    "whakarongo": (PEOPLE, PEOPLE),
    "kawe": (PEOPLE, {**FOOD, **DRINK, **THINGS}),
    "whakatika": (PEOPLE, THINGS),
    "hanga": (PEOPLE, {"waka": THINGS["waka"], "tēpu": THINGS["tēpu"],
                       "tūru": THINGS["tūru"], "kete": THINGS["kete"],
                       "whāriki": THINGS["whāriki"], "korowai": THINGS["korowai"]}),
    "tango": (PEOPLE, {**FOOD, **THINGS}),
    "whāngai": (PEOPLE, {**PEOPLE, **ANIMALS}),
    "kimi": ({**PEOPLE, **ANIMALS}, {**FOOD, **THINGS, **PEOPLE, **ANIMALS}),
    "tapahi": (PEOPLE, {**FOOD, "rākau": THINGS["rākau"]}),
    "whakatō": (PEOPLE, {"kūmara": FOOD["kūmara"], "rīwai": FOOD["rīwai"],
                         "kānga": FOOD["kānga"], "paukena": FOOD["paukena"],
                         "rākau": THINGS["rākau"]}),
    "pupuri": (PEOPLE, THINGS),
    "ui": (PEOPLE, PEOPLE),
    "whakaako": (PEOPLE, PEOPLE),
    "ako": (PEOPLE, {"pukapuka": THINGS["pukapuka"], "waiata": ("waiata", "a"),
                     "haka": ("haka", "a"), "reo": ("reo", "o")}),
}
INTRANSITIVE = {"moe": {**PEOPLE, **ANIMALS}, "noho": {**PEOPLE, **ANIMALS},
                "mahi": PEOPLE, "tākaro": {**PEOPLE, **ANIMALS}, "waiata": PEOPLE,
                "kōrero": PEOPLE, "oma": {**PEOPLE, **ANIMALS}, "tangi": {**PEOPLE, **ANIMALS},
                "kata": PEOPLE, "kauhoe": {**PEOPLE, **ANIMALS}, "tū": PEOPLE,
                "karakia": PEOPLE, "whakatā": {**PEOPLE, **ANIMALS}}
MOTION = ("haere", "hoki", "oma", "hīkoi", "tae", "rere", "heke", "piki", "whakawhiti")
# Tense-aspect particles, and the time words that fit each.
TENSES = {
    "ka": ("āpōpō", "ā te pō", "ā tērā wiki"),
    "i": ("inanahi", "i te ata nei", "i tērā wiki"),
    "kei te": ("ināianei",),
    "e ana": ("ināianei", "ia rā"),
    "kua": (),
}
_POSSESSIVE = {"a": ("taku", "tāu", "tana"), "o": ("tōku", "tōu", "tōna")}


def noun_phrase(noun: str, kinds: dict[str, tuple[str, str]], rng: random.Random) -> str:
    """``te whare``, ``ngā tamariki``, ``tōku whare``, ``te kurī pango``."""
    plural, kind = kinds[noun]
    roll = rng.random()
    if roll < 0.2:
        phrase = f"{rng.choice(_POSSESSIVE[kind])} {noun}"
    elif roll < 0.4:
        phrase = f"ngā {plural}"
    else:
        phrase = f"te {noun}"
    if rng.random() < 0.25:
        phrase += f" {rng.choice(ADJECTIVES)}"
    return phrase


def place_phrase(rng: random.Random) -> str:
    """A place with its article: ``te kura``, ``te whare nui``."""
    phrase = f"te {rng.choice(PLACES)}"
    return phrase + (f" {rng.choice(ADJECTIVES)}" if rng.random() < 0.15 else "")


def subject(kinds: dict[str, tuple[str, str]], rng: random.Random) -> str:
    """A noun phrase, a pronoun or a name."""
    roll = rng.random()
    if roll < 0.2:
        return rng.choice(PRONOUNS)
    if roll < 0.3:
        return rng.choice(NAMES)
    return noun_phrase(rng.choice(sorted(kinds)), kinds, rng)


def verb_phrase(verb: str, tense: str) -> str:
    """``ka kai``, ``e kai ana``, ``kei te kai``."""
    return f"e {verb} ana" if tense == "e ana" else f"{tense} {verb}"


def _with_time(clause: str, tense: str, rng: random.Random) -> str:
    words = TENSES[tense]
    if words and rng.random() < 0.3:
        return f"{rng.choice(words)} {clause}"
    return clause


def _transitive(rng: random.Random) -> str:
    verb = rng.choice(sorted(TRANSITIVE))
    subjects, objects = TRANSITIVE[verb]
    tense = rng.choice(sorted(TENSES))
    obj = noun_phrase(rng.choice(sorted(objects)), objects, rng)
    clause = f"{verb_phrase(verb, tense)} {subject(subjects, rng)} i {obj}"
    return _with_time(clause, tense, rng)


def _intransitive(rng: random.Random) -> str:
    verb = rng.choice(sorted(INTRANSITIVE))
    tense = rng.choice(sorted(TENSES))
    clause = f"{verb_phrase(verb, tense)} {subject(INTRANSITIVE[verb], rng)}"
    if rng.random() < 0.6:
        clause += f" i {place_phrase(rng)}"
    return _with_time(clause, tense, rng)


def _motion(rng: random.Random) -> str:
    verb = rng.choice(MOTION)
    tense = rng.choice(sorted(TENSES))
    who = subject({**PEOPLE, **ANIMALS}, rng)
    clause = f"{verb_phrase(verb, tense)} {who} ki {place_phrase(rng)}"
    if rng.random() < 0.2:
        name = rng.choice(NAMES)
        clause = f"{verb_phrase(verb, tense)} {who} ki {place_phrase(rng)} me {name}"
    return _with_time(clause, tense, rng)


def _description(rng: random.Random) -> str:
    """``he nui te whare`` (the house is big)."""
    kinds = {**PEOPLE, **ANIMALS, **FOOD, **THINGS}
    noun = rng.choice(sorted(kinds))
    article = "ngā " + kinds[noun][0] if rng.random() < 0.2 else f"te {noun}"
    return f"he {rng.choice(ADJECTIVES)} {article}"


def _negative(rng: random.Random) -> str:
    """``kāore te tamaiti i kai i te āporo`` (the child did not eat the apple)."""
    verb = rng.choice(sorted(TRANSITIVE))
    subjects, objects = TRANSITIVE[verb]
    obj = noun_phrase(rng.choice(sorted(objects)), objects, rng)
    return f"kāore {subject(subjects, rng)} i {verb} i {obj}"


_PATTERNS = ((_transitive, 5), (_intransitive, 2), (_motion, 3), (_description, 1),
             (_negative, 1))


def maori_sentence(rng: random.Random) -> str:
    """One sentence, lower case, no punctuation."""
    return weighted_sentence(_PATTERNS, rng)


def maori_sentences(rng: random.Random, exclude: frozenset[str] = frozenset()
                    ) -> Iterator[str]:
    """Endless stream of distinct sentences not in ``exclude``."""
    return distinct_sentences(maori_sentence, rng, exclude)
