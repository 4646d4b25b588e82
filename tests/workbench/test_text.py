"""Tests for workbench.text: normalisation, tokenisation and the YAML profile."""

from __future__ import annotations

import unicodedata

import pytest

from workbench.errors import WorkbenchError
from workbench.text import (
    APOSTROPHE_LOOK_ALIKES,
    DEFAULT_IGNORE,
    OrthographyProfile,
    apostrophe_folding,
    detokenize,
    load_profile,
    normalize,
    profile_to_dict,
    save_profile,
    split_characters,
    tokenize,
)

GRAPHEMES = OrthographyProfile(label_unit="grapheme")  # a letter with its marks per label


def _has_bare_mark(tokens: list[str]) -> bool:
    return any(unicodedata.category(t[0]).startswith("M") for t in tokens)


# --- normalize -------------------------------------------------------------------------------


def test_nfd_input_becomes_nfc():
    nfd = unicodedata.normalize("NFD", "Élève señor")
    assert nfd != unicodedata.normalize("NFC", nfd)
    out = normalize(nfd)
    assert out == "élève señor"
    assert unicodedata.is_normalized("NFC", out)
    assert not _has_bare_mark(tokenize(out))


def test_default_ignore_removes_punctuation_but_keeps_apostrophes():
    text = "«Ch'aki», dijo… “¡ʻOkina!” (kuna) — ¿a|b? ʼ’‘"
    # By default the apostrophe look-alikes are kept, folded into one (tests further down).
    assert normalize(text) == "ch'aki dijo 'okina kuna ab " + "'" * 3
    unfolded = OrthographyProfile(fold_apostrophes=None)
    assert normalize(text, unfolded) == "ch'aki dijo ʻokina kuna ab ʼ’‘"
    assert "'" not in DEFAULT_IGNORE and "|" in DEFAULT_IGNORE


def test_ignore_is_taken_literally_not_as_a_range():
    profile = OrthographyProfile(ignore="!-;")
    # Everything between "!" (U+0021) and ";" (U+003B) would go if "!-;" became a range.
    assert normalize("a!b-c;d,e.f#g0h/i+j", profile) == "abcd,e.f#g0h/i+j"


def test_regex_metacharacters_in_ignore_are_literal():
    profile = OrthographyProfile(ignore="^]\\[.")
    assert normalize("a^b]c\\d[e.f", profile) == "abcdef"
    assert normalize("xyz", profile) == "xyz"


def test_combining_mark_in_ignore_strips_it_from_precomposed_letters():
    profile = OrthographyProfile(ignore="\u0301")
    assert normalize("café ÁNDALE", profile) == "cafe andale"


def test_format_characters_are_always_removed():
    text = "ka\u200bna\u200d\u200e ta\ufeff\u2060ta"
    out = normalize(text, OrthographyProfile(ignore=""))
    assert out == "kana tata"
    assert not any(unicodedata.category(c) == "Cf" for c in out)


def test_whitespace_collapsed_and_stripped():
    assert normalize("  a\t\tb \n c\u00a0\u2003d  ") == "a b c d"


def test_lowercase_can_be_turned_off():
    assert normalize("ABC Def", OrthographyProfile(lowercase=False)) == "ABC Def"
    assert normalize("ABC Def") == "abc def"


def test_mappings_longest_first_and_single_pass():
    profile = OrthographyProfile(mappings={"’": "'", "a": "b", "b": "c", "aa": "x"})
    assert normalize("aab’", profile) == "xc'"
    assert normalize("ab", profile) == "bc"  # "a" -> "b" is not mapped again to "c"


def test_mappings_apply_after_lowercase_and_before_ignore():
    profile = OrthographyProfile(mappings={"ʼ": "'", "ñ": "ny", "x": "."})
    assert normalize("ÑAʼX", profile) == "nya'"


def test_mapping_sources_in_nfd_still_match():
    profile = OrthographyProfile(mappings={unicodedata.normalize("NFD", "ñ"): "ny"})
    assert normalize("Ñandú", profile) == "nyandú"


def test_word_delimiter_never_survives_normalisation():
    profile = OrthographyProfile(ignore="")
    assert normalize("a|b c", profile) == "ab c"
    other = OrthographyProfile(word_delimiter="#", ignore=".")
    assert normalize("a#b|c.", other) == "ab|c"


def test_nfkc_folds_compatibility_forms():
    assert normalize("ﬁna ＡＢ", OrthographyProfile(unicode_form="NFKC")) == "fina ab"
    assert normalize("ﬁna") == "ﬁna"


def test_lowercasing_dotted_capital_i_leaves_no_bare_mark():
    out = normalize("İstanbul")
    assert unicodedata.is_normalized("NFC", out)
    tokens = tokenize(out, GRAPHEMES)
    assert not _has_bare_mark(tokens) and tokens[0] == "i\u0307"
    tokens = tokenize(out)  # one label per code point (the default): the dot is its own
    assert tokens[:3] == ["i", "\u0307", "s"] and detokenize(tokens) == out


# --- tokenize --------------------------------------------------------------------------------


def test_tokenize_multigraphs_greedy_longest_match():
    profile = OrthographyProfile(graphemes=("ch", "ll", "ch'"))
    assert tokenize("ch'alla chacha", profile) == [
        "ch'", "a", "ll", "a", "|", "ch", "a", "ch", "a",
    ]  # fmt: skip


def test_tokenize_keeps_base_and_combining_mark_together_by_grapheme():
    text = normalize("o\u0331ma n\u0304")  # no precomposed o-macron-below or n-macron
    assert tokenize(text, GRAPHEMES) == ["o\u0331", "m", "a", "|", "n\u0304"]
    assert tokenize(text) == ["o", "\u0331", "m", "a", "|", "n", "\u0304"]  # code points


def test_grapheme_never_splits_a_letter_from_its_mark():
    profile = OrthographyProfile(graphemes=("ch",), label_unit="grapheme")
    text = normalize("c\u0308ha cha", profile)  # c + diaeresis has no precomposed form
    assert tokenize(text, profile) == ["c\u0308", "h", "a", "|", "ch", "a"]
    by_codepoint = OrthographyProfile(graphemes=("ch",))  # then "ch" is matched on code points
    assert tokenize(text, by_codepoint) == ["c", "\u0308", "h", "a", "|", "ch", "a"]


def test_grapheme_with_mark_matches_as_one_token():
    for unit in ("codepoint", "grapheme"):
        profile = OrthographyProfile(graphemes=("a\u0331a",), label_unit=unit)
        assert tokenize(normalize("ka\u0331ak", profile), profile) == ["k", "a\u0331a", "k"]


def test_spaces_become_one_delimiter_each_run():
    assert tokenize("a  b c") == ["a", "|", "b", "|", "c"]
    custom = OrthographyProfile(word_delimiter="#")
    assert tokenize("a b", custom) == ["a", "#", "b"]


def test_split_characters_mark_after_space_stands_alone():
    assert split_characters("a \u0301b") == ["a", " ", "\u0301", "b"]


def test_detokenize_round_trip():
    profile = OrthographyProfile(graphemes=("ch'", "ll"))
    text = normalize("Ch'ulla  llama, ñawi", profile)
    assert detokenize(tokenize(text, profile), profile) == text


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"unicode_form": "NFD"}, "unicode_form"),
        ({"word_delimiter": "||"}, "word_delimiter"),
        ({"word_delimiter": " "}, "word_delimiter"),
        ({"ignore": ". ,"}, "whitespace"),
        ({"mappings": {"/": "|"}}, "word delimiter"),
        ({"mappings": {"": "x"}}, "empty source"),
        ({"mappings": {"Ñ": "ny"}}, "capitals"),
        ({"graphemes": ("c",)}, "multi-character"),
        ({"graphemes": ("Ch",)}, "capitals"),
        ({"graphemes": ("c-h",)}, "ignore"),
        ({"graphemes": ("a b",)}, "space"),
    ],
)
def test_invalid_profiles_are_rejected(kwargs, fragment):
    with pytest.raises(WorkbenchError, match=fragment):
        OrthographyProfile(**kwargs)


def test_capital_mapping_allowed_when_not_lowercasing():
    profile = OrthographyProfile(lowercase=False, mappings={"Ñ": "NY"})
    assert normalize("Ña", profile) == "NYa"


# --- YAML ------------------------------------------------------------------------------------


def test_missing_or_none_profile_gives_defaults(tmp_path):
    assert load_profile(None) == OrthographyProfile()
    assert load_profile(tmp_path / "nope.yaml") == OrthographyProfile()
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_profile(empty) == OrthographyProfile()


def test_save_and_load_round_trip(tmp_path):
    profile = OrthographyProfile(
        lowercase=False,
        ignore='!-;"\\[]`',
        mappings={"’": "'", "ʼ": "'", "\\": ""},
        graphemes=("ch", "ch'", "ll"),
        word_delimiter="#",
    )
    path = tmp_path / "sub" / "orthography.yaml"
    save_profile(profile, path)
    assert load_profile(path) == profile


def test_load_profile_from_hand_written_yaml(tmp_path):
    path = tmp_path / "orthography.yaml"
    path.write_text(
        'ignore: [".", ","]\nmappings: {"’": "\'"}\ngraphemes: [ch, ll]\n', encoding="utf-8"
    )
    profile = load_profile(path)
    assert profile.ignore == ".,"
    assert profile.graphemes == ("ch", "ll")
    assert normalize("Ch’a.", profile) == "ch'a"


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "orthography.yaml"
    path.write_text("lowercase: true\nnormalise: NFC\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="normalise") as err:
        load_profile(path)
    assert str(path) in str(err.value)


def test_invalid_yaml_names_file(tmp_path):
    path = tmp_path / "orthography.yaml"
    path.write_text("ignore: [unclosed\n", encoding="utf-8")
    with pytest.raises(WorkbenchError) as err:
        load_profile(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("lowercase: 'yes please'\n", "lowercase"),
        ("mappings: [a, b]\n", "mappings"),
        ("graphemes: ch\n", "graphemes"),
        ("ignore: 5\n", "ignore"),
        ("- a\n- b\n", "mapping of settings"),
        ("unicode_form: NFD\n", "unicode_form"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "orthography.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=key) as err:
        load_profile(path)
    assert str(path) in str(err.value)


# --- apostrophe look-alikes, invisible characters, composed/decomposed forms -----------------

LOOK_ALIKES = "ʼ'’‘ʻ`´′"  # U+02BC U+0027 U+2019 U+2018 U+02BB U+0060 U+00B4 U+2032


def test_look_alike_list_is_the_documented_one():
    assert APOSTROPHE_LOOK_ALIKES == LOOK_ALIKES
    assert [f"{ord(c):04X}" for c in LOOK_ALIKES] == [
        "02BC", "0027", "2019", "2018", "02BB", "0060", "00B4", "2032",
    ]  # fmt: skip


def test_every_look_alike_folds_into_the_plain_apostrophe_by_default():
    words = [f"ch{c}aki" for c in LOOK_ALIKES]
    assert {normalize(w) for w in words} == {"ch'aki"}
    assert {tuple(tokenize(normalize(w))) for w in words} == {("c", "h", "'", "a", "k", "i")}


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_spacing_acute_folds_even_under_nfkc(form):
    # NFKC alone would turn ´ into a space and a combining accent.
    profile = OrthographyProfile(unicode_form=form)
    assert normalize("ch´aki", profile) == "ch'aki"


def test_fold_target_is_configurable():
    profile = OrthographyProfile(fold_apostrophes="ʼ")
    assert normalize("p'a p’a pʼa p`a", profile) == "pʼa pʼa pʼa pʼa"


def test_distinct_letters_keep_the_hawaiian_okina_apart():
    profile = OrthographyProfile(distinct_letters=("ʻ",))
    assert normalize("ʻŌlelo Hawaiʻi: kaʼa ka’a", profile) == "ʻōlelo hawaiʻi ka'a ka'a"
    assert apostrophe_folding(profile) == {c: "'" for c in "ʼ’‘`´′"}


def test_folding_can_be_turned_off():
    profile = OrthographyProfile(fold_apostrophes=None)
    assert normalize("kaʼa ka’a ka'a", profile) == "kaʼa ka’a ka'a"
    assert apostrophe_folding(profile) == {}
    assert OrthographyProfile(fold_apostrophes="").fold_apostrophes is None


def test_profile_written_with_look_alikes_still_matches_folded_text():
    profile = OrthographyProfile(graphemes=("chʼ", "k’"), mappings={"tʼ": "tt"})
    text = normalize("Chʼaki k'usi tʼanta", profile)
    assert text == "ch'aki k'usi ttanta"
    assert tokenize(text, profile)[:2] == ["ch'", "a"]
    assert "k'" in tokenize(text, profile)


def test_look_alikes_named_in_the_profile_are_not_folded():
    # A one-character mapping or an ignore entry says what happens to that very character.
    profile = OrthographyProfile(mappings={"ʼ": "h"}, ignore=DEFAULT_IGNORE + "`")
    assert normalize("kaʼa ka’a `quoted`", profile) == "kaha ka'a quoted"
    assert "ʼ" not in apostrophe_folding(profile) and "`" not in apostrophe_folding(profile)


def test_ignoring_the_target_removes_every_apostrophe():
    profile = OrthographyProfile(ignore=DEFAULT_IGNORE + "'")
    assert normalize("kaʼa ka’a ka'a", profile) == "kaa kaa kaa"


@pytest.mark.parametrize(
    "mark",
    ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c",
     "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u061c", "\u2060",
     "\ufeff", "\u00ad"],
)
def test_zero_width_and_direction_marks_never_become_labels(mark):
    text = normalize(f"ka{mark}na{mark} wa{mark}si")
    assert text == "kana wasi"
    assert set(tokenize(text)) == set("knaws|i")


def test_composed_and_decomposed_spellings_give_the_same_labels():
    words = "ñawi pé ʻōlelo ü"
    nfd = unicodedata.normalize("NFD", words)
    assert nfd != words
    assert tokenize(normalize(nfd)) == tokenize(normalize(words))
    profile = OrthographyProfile(graphemes=(unicodedata.normalize("NFD", "ñw"),))
    assert "ñw" in tokenize(normalize("añwa", profile), profile)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"fold_apostrophes": "''"}, "fold_apostrophes"),
        ({"fold_apostrophes": " "}, "fold_apostrophes"),
        ({"fold_apostrophes": "|"}, "fold_apostrophes"),
        ({"fold_apostrophes": "\u0301"}, "fold_apostrophes"),
        ({"fold_apostrophes": "´", "unicode_form": "NFKC"}, "fold_apostrophes"),
        ({"distinct_letters": ("x",)}, "not one of the apostrophe look-alikes"),
        ({"distinct_letters": ("ʻʼ",)}, "distinct_letters"),
        ({"mappings": {"tʼ": "t", "t’": "d"}}, "same text once apostrophe"),
    ],
)
def test_invalid_folding_settings_are_rejected(kwargs, fragment):
    with pytest.raises(WorkbenchError, match=fragment):
        OrthographyProfile(**kwargs)


def test_agreeing_mappings_that_fold_together_are_fine():
    profile = OrthographyProfile(mappings={"tʼ": "t", "t’": "t"})
    assert normalize("tʼa t’a", profile) == "ta ta"


def test_folding_settings_round_trip_through_yaml(tmp_path):
    profile = OrthographyProfile(fold_apostrophes="ʼ", distinct_letters=("ʻ",))
    path = tmp_path / "orthography.yaml"
    save_profile(profile, path)
    assert load_profile(path) == profile
    assert profile_to_dict(profile)["distinct_letters"] == ["ʻ"]
    assert "fold_apostrophes: ʼ" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "fold", "distinct"),
    [
        ('fold_apostrophes: "ʼ"\ndistinct_letters: ["ʻ"]\n', "ʼ", ("ʻ",)),
        ("fold_apostrophes: null\n", None, ()),
        ("fold_apostrophes: false\n", None, ()),
        ("distinct_letters: ʻ’\n", "'", ("ʻ", "’")),
        ("distinct_letters:\n", "'", ()),
    ],
)
def test_folding_settings_from_hand_written_yaml(tmp_path, text, fold, distinct):
    path = tmp_path / "orthography.yaml"
    path.write_text(text, encoding="utf-8")
    profile = load_profile(path)
    assert (profile.fold_apostrophes, profile.distinct_letters) == (fold, distinct)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fold_apostrophes: 5\n", "fold_apostrophes"),
        ("fold_apostrophes: [a]\n", "fold_apostrophes"),
        ("distinct_letters: {a: b}\n", "distinct_letters"),
        ("distinct_letters: [x]\n", "distinct_letters"),
    ],
)
def test_bad_folding_values_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "orthography.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=key) as err:
        load_profile(path)
    assert str(path) in str(err.value)
