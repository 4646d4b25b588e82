"""Every writing system: transcripts -> labels -> text, exactly, under both label units.

Abugidas (vowel signs and viramas are combining marks), a syllabary without marks, scripts
with vowel points, tone marks on Latin letters, scripts written without spaces, and the Latin
cases the workbench has always handled.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from workbench.text import (
    OrthographyProfile,
    detokenize,
    labels,
    normalize,
    tokenize,
    well_formed,
)

SAMPLES = {
    "Hindi (Devanagari)": "नमस्ते दुनिया, क्षत्रिय ज्ञान",
    "Malayalam": "കേരളം നിന്റെ മലയാളം",
    "Tamil": "தமிழ் மொழி கற்போம்",
    "Amharic (Ethiopic)": "ሰላም ዓለም እንዴት ነህ",
    "Arabic with harakat": "مَرْحَبًا بِالْعَالَمِ",
    "Hebrew with niqqud": "שָׁלוֹם עוֹלָם",
    "Thai": "สวัสดีชาวโลก ภาษาไทย",
    "Vietnamese": "Tiếng Việt rất hay",
    "Yoruba": "Ẹ ṣé púpọ̀, ọmọ́ mi",
    "Cherokee": "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
    "Chinese": "你好世界，我们学习",
    "Latin with apostrophes": "Ch’aska allin p'unchaw",
    "Latin, NFD input": "Ma\u0304ori ngo\u0304 ko\u0304rero",
}
UNITS = ("codepoint", "grapheme")


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("script", list(SAMPLES))
def test_labels_join_back_into_the_normalised_text_exactly(script, unit):
    profile = OrthographyProfile(label_unit=unit)
    text = normalize(SAMPLES[script], profile)
    tokens = tokenize(text, profile)
    assert detokenize(tokens, profile) == text
    assert unicodedata.is_normalized("NFC", detokenize(tokens, profile))
    if unit == "codepoint":  # every label one code point (no graphemes in the profile)
        assert all(len(t) == 1 for t in tokens)


def test_the_hawaiian_okina_stays_a_letter_of_its_own():
    profile = OrthographyProfile(distinct_letters=("ʻ",))
    tokens = labels("ʻŌlelo Hawaiʻi", profile)
    assert tokens[:2] == ["ʻ", "ō"] and detokenize(tokens, profile) == "ʻōlelo hawaiʻi"


def test_in_an_abugida_code_points_are_few_labels_shared_by_many_syllables():
    """Hindi syllables: each consonant with each vowel sign is a label of its own by grapheme,
    while by code point the consonants and vowel signs are shared."""
    consonants, signs = "कखगचजतदनपमरलस", ["", "ा", "ि", "ी", "ु", "ू", "े", "ो", "्"]
    words = " ".join(c + s for c in consonants for s in signs)
    by_point = set(labels(words)) - {"|"}
    by_cluster = set(labels(words, OrthographyProfile(label_unit="grapheme"))) - {"|"}
    assert len(by_point) == len(consonants) + len(signs) - 1  # 14 + 8
    assert len(by_cluster) == len(consonants) * len(signs)  # 126: one per syllable


@pytest.mark.parametrize(("emitted", "text"), [
    ("\u093fक", "क"),  # a vowel sign first: dropped
    ("नम \u094dस्ते", "नम स्ते"),  # a virama after a space: dropped
    ("e\u0301", "é"),  # code points recomposed to NFC
    ("ọ\u0301mọ", "ọ́mọ"),  # Yoruba high tone on a dotted o: kept, composed where Unicode can
    ("\u05b8שלום", "שלום"),  # a Hebrew point with no letter before it
])
def test_decoded_text_is_well_formed(emitted, text):
    assert well_formed(emitted) == unicodedata.normalize("NFC", text)
    assert "\u25cc" not in well_formed(emitted)


def test_greedy_decoding_of_code_point_labels_gives_well_formed_nfc(tmp_path):
    from workbench.decode import greedy_decode
    from workbench.manifest import write_json_atomic
    from workbench.vocab import build_vocab, make_tokenizer

    vocab = build_vocab(["नमस्ते नि", "ẹ́ e"])  # ẹ́ has no precomposed form: ẹ + U+0301
    write_json_atomic(tmp_path / "vocab.json", vocab)
    tokenizer = make_tokenizer(tmp_path / "vocab.json")
    sequence = ["\u093f", "न", "म", "स", "\u094d", "त", "\u0947", "|", "e", "\u0301"]
    logits = np.full((len(sequence), len(vocab)), -10.0, dtype=np.float32)
    for frame, label in enumerate(sequence):
        logits[frame, vocab[label]] = 10.0
    assert greedy_decode(logits, tokenizer) == ["नमस्ते é"]  # e + U+0301 composed: é
