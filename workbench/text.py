"""Orthography profile and transcript normalisation.

The profile says how raw transcripts become the label sequences a CTC model learns:

1. invisible format characters (zero-width space/joiner, direction marks) are dropped;
2. apostrophe look-alikes (``ʼ ' ’ ‘ ʻ ` ´ ′``) are folded into one character, ``'`` by
   default (``fold_apostrophes``), except those listed in ``distinct_letters``;
3. Unicode normalisation (NFC by default) and, if asked, lower-casing;
4. ``mappings`` replace look-alikes in one pass, longest source first (``ñ`` -> ``ny``);
5. ``ignore`` characters are removed one by one (never as a regex range), and so is the
   word delimiter, which is reserved for word boundaries;
6. whitespace is collapsed to single spaces and the result is recomposed to NFC.

Folding comes first, so mapping sources and graphemes may be written with any of the
look-alikes. A look-alike the profile names on its own (in ``ignore``, as a one-character
mapping source, or in ``distinct_letters``) is left out of the folding.

``tokenize`` then cuts the normalised text into labels: the profile's multi-character
graphemes (``ch``, ``ll``, ``ch'``) first, otherwise one label per ``label_unit``, and spaces
become the word delimiter. ``label_unit`` is ``codepoint`` by default: each code point of the
NFC text is a label, so in an abugida the consonant, the vowel sign and the virama are labels
of their own and a syllable never seen whole in training can still be spelled (the practice
of the XLSR recipes for Hindi, Tamil, Bengali...). ``grapheme`` makes a base letter with its
combining marks one label, for orthographies where a letter with its mark really is one unit;
in an abugida it makes nearly every syllable a label of its own.

``well_formed`` turns decoded labels back into text: a combining mark the model emits with no
base (at the start of the text or after a space) is dropped, and the text is recomposed to
NFC, so no mark floats on its own (drawn on a dotted circle).

A profile lives in the workspace as ``orthography.yaml``, for example::

    lowercase: true
    ignore: ".,;:!?\\"()[]|"
    fold_apostrophes: "'"      # ʼ ’ ‘ ` ´ ′ are written as ' (null: keep them apart)
    distinct_letters: ["ʻ"]    # ...but the ʻokina stays a letter of its own
    mappings: {"ñ": "ny"}
    graphemes: [ch, ll, "ch'"]
    label_unit: codepoint      # or grapheme: a letter with its combining marks is one label
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from workbench.errors import WorkbenchError
from workbench.fsio import write_text_atomic

# Punctuation removed by default. Apostrophes and their look-alikes (' ’ ‘ ʼ ʻ `) are kept on
# purpose: in many orthographies (Quechua ch', Hawaiian ʻokina, Guarani puso) they are letters.
# "|" is here because it is the word delimiter label and must never come from a transcript.
DEFAULT_IGNORE = '.,;:!?¡¿"“”„«»‹›()[]{}<>…–—‒―-/\\*|_~#%&+=@^·•§¶'
DEFAULT_WORD_DELIMITER = "|"
# Characters typed for the same apostrophe-like letter (glottal stop, ejective mark, elision):
# keyboards, word processors and transcribers pick any of them, and each would otherwise
# become a label of its own. They are folded into DEFAULT_APOSTROPHE unless the profile says
# otherwise (Hawaiian keeps the ʻokina U+02BB apart with ``distinct_letters: ["ʻ"]``).
APOSTROPHE_LOOK_ALIKES = (
    "\u02bc"  # ʼ MODIFIER LETTER APOSTROPHE (the Unicode letter for a glottal stop)
    "\u0027"  # ' APOSTROPHE (the keyboard key)
    "\u2019"  # ’ RIGHT SINGLE QUOTATION MARK (word processors' "smart" apostrophe)
    "\u2018"  # ‘ LEFT SINGLE QUOTATION MARK
    "\u02bb"  # ʻ MODIFIER LETTER TURNED COMMA (Hawaiian ʻokina, Tongan fakauʻa)
    "\u0060"  # ` GRAVE ACCENT
    "\u00b4"  # ´ ACUTE ACCENT (spacing; NFKC would turn it into a space + combining accent)
    "\u2032"  # ′ PRIME
)
DEFAULT_APOSTROPHE = "'"
# Forms whose output is composed; NFD/NFKD would leave bare combining marks as labels.
ALLOWED_UNICODE_FORMS = ("NFC", "NFKC")
CODEPOINT = "codepoint"  # one label per code point of the NFC text (the default)
GRAPHEME = "grapheme"  # one label per base letter with its combining marks
LABEL_UNITS = (CODEPOINT, GRAPHEME)
LEGACY_LABEL_UNIT = GRAPHEME  # what vocabularies built before label_unit existed used


@dataclass(frozen=True)
class OrthographyProfile:
    """How to normalise and cut transcripts of one language.

    Attributes:
        unicode_form: "NFC" (default) or "NFKC" (also folds compatibility forms such as
            ligatures and full-width letters).
        lowercase: Lower-case transcripts before mapping (``str.lower``, not case folding,
            so ``ß`` stays ``ß``).
        ignore: Characters removed from transcripts, each taken literally. A combining mark
            here (e.g. U+0301) is stripped from every letter that carries it.
        mappings: Replacements applied after normalisation and lower-casing, longest
            source first, in one pass (a replacement is never replaced again).
        graphemes: Multi-character letters that form a single label, e.g. ("ch", "ll").
        word_delimiter: The label that stands for a space between words.
        fold_apostrophes: The character every apostrophe look-alike
            (:data:`APOSTROPHE_LOOK_ALIKES`) is written as, so they share one label; None
            keeps each look-alike as it is.
        distinct_letters: Look-alikes that are letters of their own in this orthography and
            are left out of the folding, e.g. ("ʻ",) for the Hawaiian ʻokina.
        label_unit: "codepoint" (each code point of the NFC text is a label) or "grapheme"
            (a base letter with its combining marks is one label).
    """

    unicode_form: str = "NFC"
    lowercase: bool = True
    ignore: str = DEFAULT_IGNORE
    mappings: dict[str, str] = field(default_factory=dict)
    graphemes: tuple[str, ...] = ()
    word_delimiter: str = DEFAULT_WORD_DELIMITER
    fold_apostrophes: str | None = DEFAULT_APOSTROPHE
    distinct_letters: tuple[str, ...] = ()
    label_unit: str = CODEPOINT

    def __post_init__(self) -> None:
        # Compose mapping sources and graphemes so NFD spellings in a YAML file still match.
        mappings = {_nfc(src): _nfc(dst) for src, dst in dict(self.mappings).items()}
        object.__setattr__(self, "mappings", mappings)
        object.__setattr__(self, "graphemes", tuple(_nfc(g) for g in self.graphemes))
        object.__setattr__(self, "fold_apostrophes", self.fold_apostrophes or None)
        distinct = tuple(dict.fromkeys(_nfc(c) for c in self.distinct_letters))
        object.__setattr__(self, "distinct_letters", distinct)
        validate_profile(self)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def validate_profile(profile: OrthographyProfile) -> None:
    """Check a profile for settings that would silently corrupt the labels.

    Raises:
        WorkbenchError: With a message that names the offending setting.
    """
    if profile.label_unit not in LABEL_UNITS:
        raise WorkbenchError(
            f"label_unit {profile.label_unit!r} is not known; use {CODEPOINT!r} (each code "
            f"point is a label, the default) or {GRAPHEME!r} (a letter with its combining "
            "marks is one label).")
    if profile.unicode_form not in ALLOWED_UNICODE_FORMS:
        raise WorkbenchError(
            f"unicode_form {profile.unicode_form!r} is not supported; use "
            f"{' or '.join(ALLOWED_UNICODE_FORMS)} (decomposed forms would turn accents into "
            "separate labels)."
        )
    delim = profile.word_delimiter
    if len(delim) != 1 or delim.isspace() or unicodedata.category(delim).startswith("M"):
        raise WorkbenchError(
            f"word_delimiter {delim!r} must be exactly one visible character, such as '|'."
        )
    for char in profile.ignore:
        if char.isspace():
            raise WorkbenchError(
                "ignore must not contain spaces or other whitespace: words would run together. "
                "Remove the whitespace from the ignore setting."
            )
    for source, target in profile.mappings.items():
        if not source:
            raise WorkbenchError("mappings has an empty source; every mapping needs a 'from' text.")
        if delim in target:
            raise WorkbenchError(
                f"mapping {source!r} -> {target!r} produces the word delimiter {delim!r}, "
                "which is reserved for word boundaries; map it to something else."
            )
        if profile.lowercase and source != source.lower():
            raise WorkbenchError(
                f"mapping source {source!r} has capitals, but lowercase is on, so it could "
                f"never match; write it as {source.lower()!r}."
            )
    _validate_folding(profile)
    _validate_folded_mappings(profile)
    for grapheme in profile.graphemes:
        _validate_grapheme(grapheme, profile)


def _validate_folding(profile: OrthographyProfile) -> None:
    target = profile.fold_apostrophes
    if target is not None and (
        len(target) != 1
        or target.isspace()
        or target == profile.word_delimiter
        or unicodedata.category(target).startswith("M")
        or unicodedata.normalize(profile.unicode_form, target) != target
    ):
        raise WorkbenchError(
            f"fold_apostrophes {target!r} must be one visible character other than the word "
            "delimiter, such as \"'\" or \"ʼ\" (or null to keep the look-alikes apart)."
        )
    for letter in profile.distinct_letters:
        if len(letter) != 1 or letter not in APOSTROPHE_LOOK_ALIKES:
            raise WorkbenchError(
                f"distinct_letters lists {letter!r}, which is not one of the apostrophe "
                f"look-alikes ({' '.join(APOSTROPHE_LOOK_ALIKES)}), so it is never folded "
                "anyway; list only those of them that are letters of their own."
            )


def _validate_folded_mappings(profile: OrthographyProfile) -> None:
    """Two mapping sources that become the same text once folded must agree."""
    table = apostrophe_folding(profile)
    seen: dict[str, str] = {}
    for source in profile.mappings:
        folded = fold_look_alikes(source, table) if len(source) > 1 else source
        other = seen.setdefault(folded, source)
        if other != source and profile.mappings[other] != profile.mappings[source]:
            raise WorkbenchError(
                f"mappings {other!r} and {source!r} are the same text once apostrophe "
                "look-alikes are folded, but map to different text; keep one of them, or "
                "list the look-alike under distinct_letters."
            )


def _validate_grapheme(grapheme: str, profile: OrthographyProfile) -> None:
    if len(grapheme) < 2:
        raise WorkbenchError(
            f"grapheme {grapheme!r} is not a multi-character letter; list only letters "
            "written with two or more characters (single characters are labels anyway)."
        )
    if any(c.isspace() for c in grapheme) or profile.word_delimiter in grapheme:
        raise WorkbenchError(
            f"grapheme {grapheme!r} contains a space or the word delimiter; a grapheme must "
            "lie inside one word."
        )
    if profile.lowercase and grapheme != grapheme.lower():
        raise WorkbenchError(
            f"grapheme {grapheme!r} has capitals, but lowercase is on, so it could never "
            f"match; write it as {grapheme.lower()!r}."
        )
    folded = fold_look_alikes(grapheme, apostrophe_folding(profile))
    dropped = sorted({c for c in folded if c in profile.ignore})
    if dropped:
        raise WorkbenchError(
            f"grapheme {grapheme!r} contains {''.join(dropped)!r}, which the ignore setting "
            "removes, so it could never match; remove it from ignore or from the grapheme."
        )


# ---------------------------------------------------------------------------------------------
# Normalisation


def normalize(text: str, profile: OrthographyProfile | None = None) -> str:
    """Normalise a raw transcript according to ``profile``.

    Args:
        text: The transcript as the source gave it.
        profile: The orthography profile; defaults apply when None.

    Returns:
        NFC text with single spaces between words, no ignored characters, no format
        characters and no word delimiter.
    """
    profile = profile or OrthographyProfile()
    table = apostrophe_folding(profile)
    text = remove_format_characters(text)
    # Fold before NFKC, which would split a spacing ´ into a space and a combining accent,
    # and again after it, which can make look-alikes (″ -> ′′).
    text = fold_look_alikes(text, table)
    text = unicodedata.normalize(profile.unicode_form, text)
    text = fold_look_alikes(text, table)
    if profile.lowercase:
        text = text.lower()
    text = apply_mappings(text, folded_mappings(profile, table))
    text = remove_characters(text, profile.ignore + profile.word_delimiter)
    text = " ".join(text.split())
    return _nfc(text)


def remove_format_characters(text: str) -> str:
    """Drop Unicode format characters (category Cf: zero-width space, joiners, marks)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def apostrophe_folding(profile: OrthographyProfile) -> dict[str, str]:
    """Which apostrophe look-alikes the profile folds, and into what.

    Left out: the target itself, ``distinct_letters``, characters in ``ignore`` and
    one-character mapping sources (the profile already says what happens to those).

    Returns:
        {look-alike: target}; empty when ``fold_apostrophes`` is None.
    """
    target = profile.fold_apostrophes
    if target is None:
        return {}
    named = set(profile.distinct_letters) | set(profile.ignore)
    named |= {source for source in profile.mappings if len(source) == 1}
    return {c: target for c in APOSTROPHE_LOOK_ALIKES if c != target and c not in named}


def fold_look_alikes(text: str, table: dict[str, str]) -> str:
    """Replace every look-alike in ``text`` by its target (see :func:`apostrophe_folding`)."""
    if not table:
        return text
    return text.translate({ord(c): target for c, target in table.items()})


def folded_mappings(profile: OrthographyProfile, table: dict[str, str]) -> dict[str, str]:
    """The profile's mappings with look-alikes folded in multi-character sources.

    Folded text no longer holds the look-alikes, so ``"chʼ": "ch'"`` must be matched as
    ``"ch'"``; a one-character source is never folded (:func:`apostrophe_folding`).
    """
    if not table:
        return profile.mappings
    return {
        (fold_look_alikes(src, table) if len(src) > 1 else src): dst
        for src, dst in profile.mappings.items()
    }


def apply_mappings(text: str, mappings: dict[str, str]) -> str:
    """Replace every mapping source by its target in one left-to-right pass.

    At each position the longest matching source wins, and replaced text is not scanned
    again, so {"a": "b", "b": "c"} turns "ab" into "bc", not "cc".
    """
    if not mappings:
        return text
    sources = sorted(mappings, key=lambda s: (-len(s), s))
    pattern = re.compile("|".join(re.escape(s) for s in sources))
    return pattern.sub(lambda m: mappings[m.group(0)], text)


def remove_characters(text: str, characters: str) -> str:
    """Remove each of ``characters`` from ``text``, every one taken literally.

    Combining marks in ``characters`` are also removed from precomposed letters (the text is
    decomposed for that step and recomposed afterwards).
    """
    if not characters:
        return text
    text = text.translate({ord(c): None for c in characters})
    marks = {ord(c): None for c in characters if unicodedata.category(c).startswith("M")}
    if marks:
        text = unicodedata.normalize("NFD", text).translate(marks)
        text = _nfc(text)
    return text


# ---------------------------------------------------------------------------------------------
# Tokenisation


def split_characters(text: str) -> list[str]:
    """Split text into user-perceived characters: a base with its combining marks.

    A combining mark (category M*) sticks to the character before it unless that is
    whitespace or it opens the text; then it stands alone.
    """
    clusters: list[str] = []
    for char in text:
        is_mark = unicodedata.category(char).startswith("M")
        if is_mark and clusters and not clusters[-1].isspace():
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def tokenize(normalized: str, profile: OrthographyProfile | None = None) -> list[str]:
    """Cut normalised text into labels.

    Each code point is a label (``label_unit: codepoint``), or each base letter with its
    combining marks (``grapheme``); the profile's multi-character graphemes are matched
    greedily (longest first) over those units, so with ``grapheme`` they never split a letter
    from its marks. Whitespace runs become one word delimiter.

    Args:
        normalized: Output of :func:`normalize`.
        profile: The orthography profile; defaults apply when None.

    Returns:
        The list of labels, e.g. ["ch'", "a", "|", "ll", "a"].
    """
    profile = profile or OrthographyProfile()
    split = split_characters if profile.label_unit == GRAPHEME else list
    clusters = split(normalized.strip())
    table = apostrophe_folding(profile)  # "chʼ" in the profile matches the folded "ch'"
    folded = (fold_look_alikes(g, table) for g in profile.graphemes)
    graphemes = {tuple(split(g)): g for g in folded}
    longest = max((len(key) for key in graphemes), default=0)
    tokens: list[str] = []
    i = 0
    while i < len(clusters):
        if clusters[i].isspace():
            if not tokens or tokens[-1] != profile.word_delimiter:
                tokens.append(profile.word_delimiter)
            i += 1
            continue
        size = _longest_grapheme_at(clusters, i, graphemes, longest)
        tokens.append("".join(clusters[i : i + size]))
        i += size
    return tokens


def _longest_grapheme_at(
    clusters: Sequence[str], start: int, graphemes: dict[tuple[str, ...], str], longest: int
) -> int:
    """Number of clusters the longest grapheme starting at ``start`` spans (1 if none)."""
    for size in range(min(longest, len(clusters) - start), 1, -1):
        if tuple(clusters[start : start + size]) in graphemes:
            return size
    return 1


def detokenize(tokens: Iterable[str], profile: OrthographyProfile | None = None) -> str:
    """Join labels back into well-formed text; word delimiters become single spaces."""
    profile = profile or OrthographyProfile()
    text = "".join(" " if t == profile.word_delimiter else t for t in tokens)
    return " ".join(well_formed(text).split())


def well_formed(text: str) -> str:
    """Decoded text as a reader gets it: no combining mark without a base (one at the start
    of the text or after whitespace is dropped), recomposed to NFC; spacing is kept."""
    kept: list[str] = []
    for char in text:
        if unicodedata.category(char).startswith("M") and (not kept or kept[-1].isspace()):
            continue
        kept.append(char)
    return _nfc("".join(kept))


def labels(text: str, profile: OrthographyProfile | None = None) -> list[str]:
    """Normalise a raw transcript and tokenise it (the labels a model is trained on)."""
    return tokenize(normalize(text, profile), profile)


# ---------------------------------------------------------------------------------------------
# YAML


_PROFILE_KEYS = tuple(f.name for f in fields(OrthographyProfile))


def load_profile(path: Path | None) -> OrthographyProfile:
    """Read an orthography profile from YAML.

    Args:
        path: The YAML file; None or a missing file gives the default profile.

    Returns:
        The validated profile.

    Raises:
        WorkbenchError: The file is not valid YAML, has an unknown key, a value of the wrong
            type, or a setting that fails validation; the message names the file and key.
    """
    if path is None or not Path(path).exists():
        return OrthographyProfile()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise WorkbenchError(f"{path} is not a valid YAML orthography profile: {err}") from err
    if data is None:
        return OrthographyProfile()
    if not isinstance(data, dict):
        raise WorkbenchError(
            f"{path} must be a mapping of settings ({', '.join(_PROFILE_KEYS)}), "
            f"not a {type(data).__name__}."
        )
    kwargs = {str(key): _convert_value(path, str(key), value) for key, value in data.items()}
    try:
        return OrthographyProfile(**kwargs)
    except WorkbenchError as err:
        raise WorkbenchError(f"{path}: {err}") from err


def _convert_value(path: Path, key: str, value: object) -> object:
    """Check one YAML value's type and convert it to the dataclass field's type."""
    if key not in _PROFILE_KEYS:
        raise WorkbenchError(
            f"{path}: unknown setting {key!r}; the known settings are {', '.join(_PROFILE_KEYS)}."
        )
    if key == "lowercase":
        if not isinstance(value, bool):
            raise WorkbenchError(f"{path}: {key} must be true or false, not {value!r}.")
        return value
    if key in ("unicode_form", "word_delimiter", "label_unit"):
        if not isinstance(value, str):
            raise WorkbenchError(f"{path}: {key} must be text, not {value!r}.")
        return value
    if key == "ignore":
        return _ignore_from_yaml(path, value)
    if key == "mappings":
        return _mappings_from_yaml(path, value)
    if key == "fold_apostrophes":
        return _fold_from_yaml(path, value)
    if key == "distinct_letters":
        return _distinct_from_yaml(path, value)
    return _graphemes_from_yaml(path, value)


def _ignore_from_yaml(path: Path, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) and len(v) == 1 for v in value):
        return "".join(value)
    raise WorkbenchError(
        f"{path}: ignore must be a string of characters (or a list of single characters), "
        f"not {value!r}."
    )


def _mappings_from_yaml(path: Path, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in value.items()
    ):
        return {k: v or "" for k, v in value.items()}
    raise WorkbenchError(
        f'{path}: mappings must map text to text, e.g. {{"’": "\'"}}, not {value!r}.'
    )


def _graphemes_from_yaml(path: Path, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise WorkbenchError(f"{path}: graphemes must be a list of text, e.g. [ch, ll], not {value!r}.")


def _fold_from_yaml(path: Path, value: object) -> str | None:
    if value is None or value is False or value == "":
        return None
    if isinstance(value, str):
        return value
    raise WorkbenchError(
        f"{path}: fold_apostrophes must be the one character apostrophe look-alikes are "
        f"written as (e.g. \"'\"), or null to keep them apart, not {value!r}."
    )


def _distinct_from_yaml(path: Path, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise WorkbenchError(
        f'{path}: distinct_letters must be a list of characters, e.g. ["ʻ"], not {value!r}.'
    )


def profile_to_dict(profile: OrthographyProfile) -> dict:
    """Plain-data form of a profile (what :func:`save_profile` writes)."""
    data = asdict(profile)
    data["graphemes"] = list(profile.graphemes)
    data["distinct_letters"] = list(profile.distinct_letters)
    return data


def save_profile(profile: OrthographyProfile, path: Path) -> None:
    """Write a profile as YAML, atomically."""
    text = yaml.safe_dump(profile_to_dict(profile), allow_unicode=True, sort_keys=False)
    write_text_atomic(Path(path), text)
