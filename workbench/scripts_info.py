"""What scoring needs to know about a writing system: NFC text, grapheme clusters, and
whether the script separates words with spaces.

- :func:`nfc` is the form every rate is computed on, so a letter typed as one code point
  (é) and the same letter typed as two (e + combining acute) score the same.
- :func:`graphemes` splits text into extended grapheme clusters (Unicode UAX #29, the
  ``regex`` package's ``\\X``): what a reader perceives as one character, such as Hindi
  क्षि (4 code points) or Vietnamese ệ (1 code point in NFC, 3 in NFD). A space is a
  cluster of its own.
- :func:`unspaced_script` tells when most letters of a text belong to a script written
  without spaces between words (Thai, Lao, Khmer, Myanmar, Chinese, Japanese), where a
  "word" split at spaces is a phrase or a whole sentence and the WER means little.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import regex

# Unicode script names (as in \p{Script=...}) of writing systems that do not put spaces
# between words; Japanese mixes Han, Hiragana and Katakana.
UNSPACED_SCRIPTS = ("Thai", "Lao", "Khmer", "Myanmar", "Han", "Hiragana", "Katakana")
JAPANESE_KANA = ("Hiragana", "Katakana")
# Script_Extensions, so marks shared by several of them (ー, 々, 〆) count too.
_UNSPACED = regex.compile("|".join(rf"\p{{scx={s}}}" for s in UNSPACED_SCRIPTS))
_BY_SCRIPT = {s: regex.compile(rf"\p{{scx={s}}}") for s in UNSPACED_SCRIPTS}
_LETTER = regex.compile(r"\p{L}")
_CLUSTER = regex.compile(r"\X")


def nfc(text: str) -> str:
    """``text`` in Unicode normalisation form C (composed)."""
    return unicodedata.normalize("NFC", text)


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of ``text`` (taken as it is; apply :func:`nfc` first)."""
    return _CLUSTER.findall(text)


def unspaced_script(texts: Iterable[str]) -> str | None:
    """The script written without spaces that most letters of ``texts`` belong to, or None.

    Returns a name such as "Thai", "Khmer", "Chinese" (Han only) or "Japanese" (any kana),
    when more than half of all letters are of :data:`UNSPACED_SCRIPTS`; None otherwise
    (also for text without letters).
    """
    joined = "\n".join(texts)
    letters = _LETTER.findall(joined)
    unspaced = [c for c in letters if _UNSPACED.match(c)]
    if not letters or 2 * len(unspaced) <= len(letters):
        return None
    counts = {s: sum(1 for c in unspaced if p.match(c)) for s, p in _BY_SCRIPT.items()}
    if any(counts[s] for s in JAPANESE_KANA):
        return "Japanese"
    top = max(UNSPACED_SCRIPTS, key=lambda s: counts[s])
    return "Chinese" if top == "Han" else top
