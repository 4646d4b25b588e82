"""NFC, grapheme clusters and scripts written without spaces between words."""

from __future__ import annotations

import unicodedata

import pytest

from workbench.scripts_info import graphemes, nfc, unspaced_script


def test_nfc_composes_what_nfd_splits():
    decomposed = unicodedata.normalize("NFD", "tiếng Việt")
    assert len(decomposed) == 14 and nfc(decomposed) == "tiếng Việt"
    assert len(nfc(decomposed)) == 10


@pytest.mark.parametrize(("text", "clusters"), [
    ("क्षि", ["क्षि"]),                      # Hindi: क ् ष ि, 4 code points
    ("தமிழ்", ["த", "மி", "ழ்"]),             # Tamil
    ("മലയാളം", ["മ", "ല", "യാ", "ളം"]),      # Malayalam
    ("ไม่", ["ไ", "ม่"]),                     # Thai: the tone mark sits on its consonant
    ("ọ̀rọ̀", ["ọ̀", "r", "ọ̀"]),                # Yoruba: dot below and low tone
    ("việt nam", ["v", "i", "ệ", "t", " ", "n", "a", "m"]),  # a space is a cluster
    ("北京", ["北", "京"]),
])
def test_grapheme_clusters_are_what_a_reader_sees(text, clusters):
    assert graphemes(text) == clusters
    assert "".join(graphemes(text)) == text


@pytest.mark.parametrize(("texts", "script"), [
    (["ภาษาไทยเป็นภาษาราชการ"], "Thai"),
    (["ພາສາລາວ"], "Lao"),
    (["ភាសាខ្មែរ"], "Khmer"),
    (["မြန်မာဘာသာ"], "Myanmar"),
    (["我爱北京天安门", "今天天气很好"], "Chinese"),
    (["日本語のテキストです"], "Japanese"),
    (["コーヒー"], "Japanese"),  # ー is Common script, shared by the kana
    (["ฉันชอบ iPhone มาก"], "Thai"),  # mixed: an English word in Thai text
])
def test_scripts_without_spaces_are_recognised(texts, script):
    assert unspaced_script(texts) == script


@pytest.mark.parametrize("texts", [
    ["नमस्ते दुनिया", "क्षत्रिय"],  # Hindi (Devanagari) has spaces
    ["ሰላም ዓለም"],                  # Amharic (Ethiopic)
    ["kia ora koutou", "tēnā koe"],
    ["Hello 北京 friends, welcome"],  # mostly Latin letters
    ["123 456", ""],                  # no letters
    [],
])
def test_scripts_with_spaces_or_no_letters_are_not(texts):
    assert unspaced_script(texts) is None


def test_the_majority_of_letters_decides_over_the_whole_corpus():
    thai, latin = "ภาษาไทย", "abcdefghij"
    assert unspaced_script([thai, latin]) is None      # 7 Thai letters of 17
    assert unspaced_script([thai, thai, latin]) == "Thai"  # 14 of 24
