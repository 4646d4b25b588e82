"""Synthetic transcribed speech made with espeak-ng: demo data and pretraining material.

Sentences are strings of random words built from each language's own syllable inventory
(onset + vowel nucleus + coda, 1-4 syllables a word), so a model cannot memorise a fixed
script; espeak-ng then reads each sentence with a random voice variant, speed and pitch.
Everything follows from the seed, so a corpus can be regenerated exactly.

Output layout (a Hugging Face ``audiofolder``)::

    <out_dir>/
      metadata.csv          file_name,transcription,speaker[,language]
      clips/
        qu_00000.wav        16 kHz mono; PCM_16 WAV or OGG/Vorbis
        qu_00001.wav
        ...

``speaker`` is the espeak voice variant (``m3``, ``f2``, ``klatt``...) for a one-language
corpus and ``<language>-<variant>`` (``es-m3``) for a multilingual one, so a
speaker-disjoint split holds whole voices out. The multilingual corpus adds a ``language``
column. Transcripts are NFC and lower case.

The bundled demo (``demo/quechua_demo.tar``, built by :func:`build_demo_archive`) holds a
``quechua_demo/`` folder in this layout; :func:`unpack_corpus` extracts it safely. Its
sentences are not random words but real Quechua words composed into simple sentences
(:mod:`data_recipes.quechua_lexicon`), and ``demo/quechua_community_text.txt`` holds other
sentences from the same lexicon: the "community text" a language model is built from.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import unicodedata
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from data_recipes.archive import unpack_into
from workbench.audio import SAMPLE_RATE
from workbench.fsio import write_text_atomic

SPEED_RANGE = (130, 190)  # espeak words per minute, drawn per utterance (inclusive)
PITCH_RANGE = (30, 70)  # espeak pitch 0-99, drawn per utterance (inclusive)
SYLLABLES_PER_WORD = (1, 4)  # inclusive
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
MAX_WORKERS = 2  # concurrent espeak-ng processes; synthesis is CPU-bound
_LOOKAHEAD = 2 * MAX_WORKERS  # utterances queued ahead of the one being written

ESPEAK = "espeak-ng"
AUDIO_FORMATS = {"wav": ("WAV", "PCM_16"), "ogg": ("OGG", "VORBIS")}  # ext -> (format, subtype)

# Espeak voice variants (files in espeak-ng-data/voices/!v) that sound clearly different.
DEFAULT_VOICES = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt4")

DEMO_ARCHIVE = Path(__file__).parent / "demo" / "quechua_demo.tar"
DEMO_NAME = "quechua_demo"  # the folder inside the demo archive
# Other sentences from the demo's lexicon: the community's text a language model learns from.
DEMO_TEXT = DEMO_ARCHIVE.parent / "quechua_community_text.txt"
DEMO_TEXT_SENTENCES = 10_000


@dataclass(frozen=True)
class LanguageSpec:
    """How to make plausible random words in one language.

    Repeating a grapheme in a tuple makes it more likely; ``""`` is an empty onset or coda.

    Attributes:
        voice: espeak-ng voice code that reads the language.
        name: English name of the language.
        onsets: Consonant(s) that may open any syllable.
        nuclei: Vowels and diphthongs.
        codas: Consonant(s) that may close a syllable.
        medial_onsets: Onsets allowed only after the first syllable of a word (for example
            Guarani's glottal stop ``'`` or Turkish ``ğ``).
        syllables_per_word: Inclusive range (Vietnamese writes every syllable apart: 1-1).
    """

    voice: str
    name: str
    onsets: tuple[str, ...]
    nuclei: tuple[str, ...]
    codas: tuple[str, ...] = ("",)
    medial_onsets: tuple[str, ...] = ()
    syllables_per_word: tuple[int, int] = SYLLABLES_PER_WORD

    def __post_init__(self) -> None:
        for grapheme in self.onsets + self.nuclei + self.codas + self.medial_onsets:
            if grapheme != unicodedata.normalize("NFC", grapheme).lower():
                raise ValueError(f"{self.name}: grapheme {grapheme!r} is not NFC lower case")
        if not self.onsets or not self.nuclei or not self.codas:
            raise ValueError(f"{self.name}: onsets, nuclei and codas must not be empty")

    @property
    def alphabet(self) -> frozenset[str]:
        """Every character a transcript in this language can contain, space excluded."""
        graphemes = self.onsets + self.nuclei + self.codas + self.medial_onsets
        return frozenset("".join(graphemes))


def _g(graphemes: str) -> tuple[str, ...]:
    """Split a space-separated grapheme list; ``_`` stands for the empty grapheme."""
    return tuple("" if item == "_" else item for item in graphemes.split())


LANGUAGES: dict[str, LanguageSpec] = {
    # Southern Quechua (standard alphabet): three vowels, plain/aspirated/ejective stops.
    "qu": LanguageSpec(
        "qu",
        "Quechua",
        onsets=_g(
            "_ _ p p t t k k q q ch ch m m n n r r s s w w y y ll ll h "
            "ph p' th t' kh k' qh q' chh ch' ñ"
        ),
        nuclei=_g("a a a i i u u"),
        codas=_g("_ _ _ _ _ _ n n y y q s k r w m p ch"),
    ),
    "es": LanguageSpec(
        "es",
        "Spanish",
        onsets=_g(
            "_ _ b c d f g j l ll m n ñ p qu r s t v y z ch bl br cl cr dr fl fr gr pl pr tr"
        ),
        nuclei=_g("a a e e i o o u á é í ó ú ie ue ia io"),
        codas=_g("_ _ _ _ n s r l d z"),
        medial_onsets=_g("rr"),
    ),
    "it": LanguageSpec(
        "it",
        "Italian",
        onsets=_g("_ _ b c d f g l m n p r s t v z ch gh gl gn sc br pr tr st sp"),
        nuclei=_g("a a e e i o o u à è é ì ò ù ia io ie uo"),
        codas=_g("_ _ _ _ _ n r l s"),
        medial_onsets=_g("cc ll mm nn pp rr ss tt zz"),
    ),
    "pt": LanguageSpec(
        "pt",
        "Portuguese",
        onsets=_g("_ _ b c d f g j l m n p qu r s t v x z ch br pr tr"),
        nuclei=_g("a a e e i o o u á é í ó ú â ê ô ã õ ai ei ou"),
        codas=_g("_ _ _ _ s r l m"),
        medial_onsets=_g("lh nh rr ss ç"),
    ),
    "ro": LanguageSpec(
        "ro",
        "Romanian",
        onsets=_g("_ _ b c d f g h j l m n p r s ș t ț v z"),
        nuclei=_g("a a e e i o u ă ă â î ea oa"),
        codas=_g("_ _ _ n r s t l m"),
    ),
    "ca": LanguageSpec(
        "ca",
        "Catalan",
        onsets=_g("_ _ b c d f g j l ll m n ny p qu r s t v x"),
        nuclei=_g("a a e e i o o u à è é í ò ó ú"),
        codas=_g("_ _ _ n r s l t"),
        medial_onsets=_g("ç rr ss"),
    ),
    "de": LanguageSpec(
        "de",
        "German",
        onsets=_g("_ _ b d f g h j k l m n p r s t w z sch pf st sp kl kr tr br gr fl schl schw"),
        nuclei=_g("a a e e i o u ä ö ü au ei eu ie"),
        codas=_g("_ _ _ n r l s t ch ng m ck"),
    ),
    "nl": LanguageSpec(
        "nl",
        "Dutch",
        onsets=_g("_ _ b d f g h j k l m n p r s t v w z sch kl kr tr br gr st sp"),
        nuclei=_g("a a e e i o u aa ee oo uu ie oe eu ij ui ou"),
        codas=_g("_ _ _ n r l s t k m ng ch"),
    ),
    "fi": LanguageSpec(
        "fi",
        "Finnish",
        onsets=_g("_ _ h j k l m n p r s t v"),
        nuclei=_g("a a e i i o u y ä ö aa ii uu ää ai ei oi ui äi"),
        codas=_g("_ _ _ _ n s t l r"),
        medial_onsets=_g("kk pp tt ss ll d"),
    ),
    "et": LanguageSpec(
        "et",
        "Estonian",
        onsets=_g("_ _ h j k l m n p r s t v"),
        nuclei=_g("a a e i o u õ ä ö ü aa ee ii uu ai ei"),
        codas=_g("_ _ _ n s t l r k d m"),
    ),
    "hu": LanguageSpec(
        "hu",
        "Hungarian",
        onsets=_g("_ _ b c cs d f g gy h j k l ly m n ny p r s sz t ty v z zs"),
        nuclei=_g("a a á e e é i í o ó ö ő u ú ü ű"),
        codas=_g("_ _ _ n s sz t k l r m z"),
    ),
    "tr": LanguageSpec(
        "tr",
        "Turkish",
        onsets=_g("_ _ b c ç d f g h j k l m n p r s ş t v y z"),
        nuclei=_g("a a e e ı i o ö u ü"),
        codas=_g("_ _ _ n r l k m s t z ş ğ"),
        medial_onsets=_g("ğ"),
    ),
    "pl": LanguageSpec(
        "pl",
        "Polish",
        onsets=_g("_ _ b c ć ch cz d dz f g h j k l ł m n p r rz s ś sz t w z ź ż"),
        nuclei=_g("a a e e i o o u y ą ę ó"),
        codas=_g("_ _ _ _ n m s k ł j r ć ń"),
    ),
    "cs": LanguageSpec(
        "cs",
        "Czech",
        onsets=_g("_ _ b c č d ď f g h ch j k l m n ň p r ř s š t ť v z ž"),
        nuclei=_g("a a á e e é i í o ó u ú y ý"),
        codas=_g("_ _ _ n s k l m t j"),
        medial_onsets=_g("bě vě mě pě"),
    ),
    "hr": LanguageSpec(
        "hr",
        "Croatian",
        onsets=_g("_ _ b c č ć d dž đ f g h j k l lj m n nj p r s š t v z ž"),
        nuclei=_g("a a e e i o u"),
        codas=_g("_ _ _ n s k l m t j r"),
    ),
    "sw": LanguageSpec(
        "sw",
        "Swahili",
        onsets=_g("_ b ch d dh f g gh h j k k l m n ng' ny p r s sh t t th v w y z mb nd ng nj"),
        nuclei=_g("a a a e i i o u u"),
    ),
    "id": LanguageSpec(
        "id",
        "Indonesian",
        onsets=_g("_ _ b c d f g h j k l m n ny p r s t w y"),
        nuclei=_g("a a a e i i o u u ai au"),
        codas=_g("_ _ _ n ng r s t k l m h"),
        medial_onsets=_g("ng"),
    ),
    "eo": LanguageSpec(
        "eo",
        "Esperanto",
        onsets=_g("_ _ b c ĉ d f g ĝ h ĥ j ĵ k l m n p r s ŝ t v z"),
        nuclei=_g("a a e i i o o u aŭ eŭ"),
        codas=_g("_ _ _ n s l r j k"),
    ),
    "eu": LanguageSpec(
        "eu",
        "Basque",
        onsets=_g("_ _ b d g h j k l m n ñ p s t tx ts tz x z"),
        nuclei=_g("a a e e i o u"),
        codas=_g("_ _ _ n r s l k t z tz"),
        medial_onsets=_g("r rr"),
    ),
    # Added to the pretraining mix (issue 12) for sounds the European languages lack: tone
    # (Vietnamese), retroflex and aspirated stops (Tamil, Bengali), pharyngeals and
    # emphatics (Arabic), lateral affricates (Setswana). espeak-ng has no Zulu voice, and
    # reads random Thai syllables unreliably (stray consonants), so neither is here.
    "vi": LanguageSpec(
        "vi",
        "Vietnamese",
        onsets=_g("_ b c ch d đ g gi h kh l m n ng nh ph qu r s t th tr v x"),
        nuclei=_g("a à á ả ã ạ ă ắ â ấ ầ e é è ê ế ề i í ì o ó ò ô ố ồ ơ ớ ờ u ú ù ư ứ ừ "
                  "ai ao oi ưa ươ iê uô"),
        codas=_g("_ _ _ n ng m c t p nh"),
        syllables_per_word=(1, 1),
    ),
    "tn": LanguageSpec(
        "tn",
        "Setswana",
        onsets=_g("_ b d f g h j k kg kh l m n ng ny p ph r s t th tl tlh ts tsh w y"),
        nuclei=_g("a a a e ê i o ô u"),
    ),
    "ta": LanguageSpec(
        "ta",
        "Tamil",
        onsets=_g("க ச ட த ப ற ம ந ன ண ஞ ங ய ர ல வ ழ ள"),
        nuclei=_g("_ _ ா ா ி ீ ு ூ ெ ே ை ொ ோ"),
        codas=_g("_ _ _ _ ம் ன் ல் ர் ள் ட்"),
    ),
    "bn": LanguageSpec(
        "bn",
        "Bengali",
        onsets=_g("ক খ গ ঘ চ ছ জ ট ঠ ড ত থ দ ধ ন প ফ ব ভ ম র ল শ স হ"),
        nuclei=_g("_ _ া া ি ী ু ূ ে ো ৈ"),
        codas=_g("_ _ _ _ ং ন্ র্"),
    ),
    # Arabic written with its short vowels (harakat) and sukun, as espeak-ng reads best.
    "ar": LanguageSpec(
        "ar",
        "Arabic",
        onsets=_g("ب ت ث ج ح خ د ذ ر ز س ش ص ض ط ظ ع غ ف ق ك ل م ن ه و ي"),
        nuclei=_g("َ َ ُ ِ َا ِي ُو"),
        codas=_g("_ _ _ نْ مْ لْ رْ سْ بْ"),
    ),
    # Held out of pretraining (see UNSEEN_LANGUAGES).
    "mi": LanguageSpec(
        "mi",
        "Māori",
        onsets=_g("_ h k k m n ng p r r t t w wh"),
        nuclei=_g("a a a e i o u ā ē ī ō ū ai ae ao au ou"),
    ),
    # Guarani: open syllables; g̃ is left out because it has no precomposed NFC form.
    "gn": LanguageSpec(
        "gn",
        "Guarani",
        onsets=_g("_ ch h j k k m mb n nd ng nt ñ p p r s t t v y"),
        nuclei=_g("a a e i o u y ã ẽ ĩ õ ũ ỹ á é í ó ú ý"),
        medial_onsets=_g("' ' rr"),
    ),
    "haw": LanguageSpec(
        "haw",
        "Hawaiian",
        onsets=_g("_ h k k l l m n p w ʻ"),
        nuclei=_g("a a a e i o o u ā ē ī ō ū ai ae ao au ei eu oi ou iu"),
    ),
}

# Target languages for evaluating a pretrained base; keep them out of pretraining data.
UNSEEN_LANGUAGES = ("mi", "gn", "qu", "haw")
PRETRAINING_LANGUAGES = tuple(code for code in LANGUAGES if code not in UNSEEN_LANGUAGES)

# Languages in scripts of their own, for the script benchmark (``bench/scripts.py``); never
# pretraining data. In the abugidas a syllable is a consonant (onset) with a dependent vowel
# sign or the inherent vowel ("", nucleus), closed by an anusvara or a virama-final consonant
# (coda): marks that NFC leaves as code points of their own. Ethiopic is a syllabary whose
# syllables are single code points (a control: code points and graphemes coincide).
SCRIPT_LANGUAGES: dict[str, LanguageSpec] = {
    "hi": LanguageSpec(
        "hi",
        "Hindi (Devanagari)",
        onsets=_g("क ख ग घ च छ ज झ ट ड त थ द ध न प फ ब भ म य र ल व श स ह"),
        nuclei=_g("_ _ ा ा ि ी ु ू े ै ो ौ"),
        codas=_g("_ _ _ _ ं ं न् र् स्"),
    ),
    "ml": LanguageSpec(
        "ml",
        "Malayalam",
        onsets=_g("ക ഖ ഗ ങ ച ജ ഞ ട ഡ ണ ത ദ ന പ ബ മ യ ര ല വ ശ ഷ സ ഹ ള ഴ റ"),
        nuclei=_g("_ _ ാ ാ ി ീ ു ൂ െ േ ൊ ോ"),
        codas=_g("_ _ _ _ ം ം ്"),
    ),
    "am": LanguageSpec(
        "am",
        "Amharic (Ethiopic)",
        onsets=_g("ሀ ሁ ሂ ሃ ሄ ህ ሆ ለ ሉ ሊ ላ ሌ ል ሎ መ ሙ ሚ ማ ሜ ም ሞ ረ ሩ ሪ ራ ሬ ር ሮ ሰ ሱ ሲ ሳ ሴ ስ ሶ "
                  "ሸ ሹ ሺ ሻ ሼ ሽ ሾ በ ቡ ቢ ባ ቤ ብ ቦ ተ ቱ ቲ ታ ቴ ት ቶ ነ ኑ ኒ ና ኔ ን ኖ ከ ኩ ኪ ካ ኬ ክ ኮ "
                  "ወ ዉ ዊ ዋ ዌ ው ዎ ዘ ዙ ዚ ዛ ዜ ዝ ዞ የ ዩ ዪ ያ ዬ ይ ዮ ደ ዱ ዲ ዳ ዴ ድ ዶ ገ ጉ ጊ ጋ ጌ ግ ጎ"),
        nuclei=_g("_"),
    ),
}


@dataclass(frozen=True)
class _Utterance:
    """One planned utterance: what to say and how."""

    clip_id: str
    text: str
    variant: str
    speed: int
    pitch: int


def random_word(spec: LanguageSpec, rng: random.Random) -> str:
    """Build one random word of ``spec.syllables_per_word`` syllables (1-4 by default).

    Args:
        spec: Grapheme inventory of the language.
        rng: Source of randomness.

    Returns:
        The word, NFC lower case.
    """
    parts = []
    for index in range(rng.randint(*spec.syllables_per_word)):
        onsets = spec.onsets + spec.medial_onsets if index else spec.onsets
        parts.append(rng.choice(onsets) + rng.choice(spec.nuclei) + rng.choice(spec.codas))
    return unicodedata.normalize("NFC", "".join(parts)).lower()


def random_sentence(
    spec: LanguageSpec, rng: random.Random, words_per_utterance: tuple[int, int] = (2, 7)
) -> str:
    """Build one random sentence: words joined by single spaces, no punctuation.

    Args:
        spec: Grapheme inventory of the language.
        rng: Source of randomness.
        words_per_utterance: Inclusive range of the number of words.

    Returns:
        The sentence, NFC lower case.
    """
    count = rng.randint(*words_per_utterance)
    return " ".join(random_word(spec, rng) for _ in range(count))


def generate_corpus(
    out_dir: Path,
    *,
    language: str = "qu",
    minutes: float = 10.0,
    voices: Sequence[str] | None = None,
    seed: int = 0,
    words_per_utterance: tuple[int, int] = (2, 7),
    audio_format: str = "wav",
    progress: bool = True,
    overwrite: bool = False,
    sentences: Iterator[str] | None = None,
) -> Path:
    """Synthesise a one-language transcribed corpus in the audiofolder layout.

    Args:
        out_dir: Folder to write ``metadata.csv`` and ``clips/`` into.
        language: A key of :data:`LANGUAGES`.
        minutes: Stop once the clips add up to at least this much audio.
        voices: Espeak voice variants to cycle through (default :data:`DEFAULT_VOICES`).
        seed: Makes the transcripts, voices, speeds and pitches reproducible.
        words_per_utterance: Inclusive range of words per sentence.
        audio_format: ``"wav"`` (PCM_16) or ``"ogg"`` (Vorbis, about 6x smaller).
        progress: Show a progress bar.
        overwrite: Replace an existing corpus in ``out_dir``.
        sentences: What to say, in order (for example
            :func:`data_recipes.quechua_lexicon.quechua_sentences`); default random words.
            Its characters must be in the language's alphabet; when it runs out before
            ``minutes`` of audio, the corpus ends there.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: For an unknown language, voice or format, or a bad range.
        FileExistsError: If ``out_dir`` already holds a corpus and ``overwrite`` is False.
        RuntimeError: If espeak-ng is missing or fails.
    """
    spec = _language(language)
    voices = _check_options(voices, minutes, words_per_utterance, audio_format)
    clips_dir = _prepare_out_dir(Path(out_dir), overwrite)
    rng = random.Random(f"{seed}:{language}")
    plan = _plan(spec, rng, voices, words_per_utterance, language, sentences)
    bar = tqdm(total=minutes * 60, desc=language, bar_format=_BAR_FORMAT, disable=not progress)
    with bar:
        rows = _synthesize_until(plan, spec, minutes * 60, clips_dir, audio_format, bar)
    records = [(f"clips/{u.clip_id}.{audio_format}", u.text, u.variant) for u in rows]
    _write_metadata(Path(out_dir), ("file_name", "transcription", "speaker"), records)
    return Path(out_dir)


def generate_multilingual_corpus(
    out_dir: Path,
    *,
    languages: Sequence[str] = PRETRAINING_LANGUAGES,
    minutes_per_language: float = 5.0,
    voices: Sequence[str] | None = None,
    seed: int = 0,
    words_per_utterance: tuple[int, int] = (2, 7),
    audio_format: str = "wav",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Synthesise several languages into one audiofolder with a ``language`` column.

    Each language draws from its own random stream (seeded by ``seed`` and the language
    code), so adding or removing a language leaves the others' utterances unchanged.

    Args:
        out_dir: Folder to write ``metadata.csv`` and ``clips/`` into.
        languages: Keys of :data:`LANGUAGES` (default: every language not held out).
        minutes_per_language: Audio to generate for each language.
        voices: Espeak voice variants to cycle through (default :data:`DEFAULT_VOICES`).
        seed: Makes the whole corpus reproducible.
        words_per_utterance: Inclusive range of words per sentence.
        audio_format: ``"wav"`` (PCM_16) or ``"ogg"`` (Vorbis).
        progress: Show a progress bar.
        overwrite: Replace an existing corpus in ``out_dir``.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: For an unknown language, voice or format, a bad range or no languages.
        FileExistsError: If ``out_dir`` already holds a corpus and ``overwrite`` is False.
        RuntimeError: If espeak-ng is missing or fails.
    """
    specs = {code: _language(code) for code in languages}
    if not specs:
        raise ValueError("Give at least one language to synthesise.")
    voices = _check_options(voices, minutes_per_language, words_per_utterance, audio_format)
    clips_dir = _prepare_out_dir(Path(out_dir), overwrite)
    target = minutes_per_language * 60
    records = []
    bar = tqdm(total=target * len(specs), bar_format=_BAR_FORMAT, disable=not progress)
    with bar:
        for code, spec in specs.items():
            bar.set_description(code)
            rng = random.Random(f"{seed}:{code}")
            plan = _plan(spec, rng, voices, words_per_utterance, code)
            for u in _synthesize_until(plan, spec, target, clips_dir, audio_format, bar):
                name = f"clips/{u.clip_id}.{audio_format}"
                records.append((name, u.text, f"{code}-{u.variant}", code))
    header = ("file_name", "transcription", "speaker", "language")
    _write_metadata(Path(out_dir), header, records)
    return Path(out_dir)


LEXICON_LANGUAGES = ("qu", "mi")  # languages with sentences of real words (besides random)


def lexicon_sentences(language: str, seed: str, exclude: frozenset[str] = frozenset()
                      ) -> Iterator[str]:
    """Sentences of real words (:mod:`data_recipes.quechua_lexicon`,
    :mod:`data_recipes.maori_lexicon`), distinct and not in ``exclude``, from a random
    stream seeded by ``seed``.

    Raises:
        ValueError: For a language without a lexicon.
    """
    if language == "qu":
        from data_recipes.quechua_lexicon import quechua_sentences as sentences
    elif language == "mi":
        from data_recipes.maori_lexicon import maori_sentences as sentences
    else:
        raise ValueError(f"No lexicon for {language!r}; have {', '.join(LEXICON_LANGUAGES)}.")
    return sentences(random.Random(seed), exclude)


def _language(code: str) -> LanguageSpec:
    """Look a language up, with a helpful error for an unknown code."""
    known = {**LANGUAGES, **SCRIPT_LANGUAGES}
    if code not in known:
        raise ValueError(f"No synthetic recipe for language {code!r}; have {sorted(known)}.")
    return known[code]


def _check_options(
    voices: Sequence[str] | None,
    minutes: float,
    words_per_utterance: tuple[int, int],
    audio_format: str,
) -> tuple[str, ...]:
    """Validate the common options; return the voice variants to use."""
    if minutes <= 0:
        raise ValueError(f"The amount of audio to generate must be positive, got {minutes}.")
    low, high = words_per_utterance
    if not 1 <= low <= high:
        raise ValueError(
            f"words_per_utterance must be (min, max) with 1 <= min <= max, "
            f"got {words_per_utterance}."
        )
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(
            f"audio_format must be one of {sorted(AUDIO_FORMATS)}, got {audio_format!r}."
        )
    voices = tuple(DEFAULT_VOICES if voices is None else voices)
    if not voices:
        raise ValueError("Give at least one espeak voice variant.")
    unknown = sorted(set(voices) - espeak_variants())
    if unknown:
        raise ValueError(
            f"espeak-ng has no voice variant(s) {unknown}; see `espeak-ng --voices=variant`."
        )
    return voices


@lru_cache(maxsize=1)
def espeak_variants() -> frozenset[str]:
    """Names of the voice variants the installed espeak-ng offers (``m3``, ``klatt``...).

    Raises:
        RuntimeError: If espeak-ng is not installed.
    """
    listing = _run_espeak(["--voices=variant"]).stdout.decode("utf-8", "replace")
    # Rows look like: " 5  variant  --/M  Adam  !v/adam"; the file name is the variant id.
    return frozenset(
        field.split("/", 1)[1]
        for line in listing.splitlines()
        for field in line.split()
        if field.startswith("!v/")
    )


def _run_espeak(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run espeak-ng, turning a missing binary or a failure into a clear RuntimeError."""
    if shutil.which(ESPEAK) is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng).")
    result = subprocess.run([ESPEAK, *args], capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"espeak-ng {' '.join(args)} failed: {message}")
    return result


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    """Create ``out_dir/clips``, refusing to mix with an existing corpus unless asked."""
    clips_dir = out_dir / "clips"
    metadata = out_dir / "metadata.csv"
    exists = metadata.exists() or (clips_dir.is_dir() and any(clips_dir.iterdir()))
    if exists and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a corpus; pass overwrite=True to replace it."
        )
    if exists:
        metadata.unlink(missing_ok=True)
        shutil.rmtree(clips_dir, ignore_errors=True)
    clips_dir.mkdir(parents=True, exist_ok=True)
    return clips_dir


def _plan(
    spec: LanguageSpec,
    rng: random.Random,
    voices: tuple[str, ...],
    words_per_utterance: tuple[int, int],
    prefix: str,
    sentences: Iterator[str] | None = None,
) -> Iterator[_Utterance]:
    """Endless, reproducible stream of utterances; voices are used in shuffled rounds.

    Sentences come from ``sentences`` when given (checked against the alphabet), else
    random words.
    """
    index = 0
    while True:
        order = list(voices)
        rng.shuffle(order)  # each round uses every voice once, so speakers stay balanced
        for variant in order:
            if sentences is None:
                text = random_sentence(spec, rng, words_per_utterance)
            else:
                given = next(sentences, None)
                if given is None:
                    return  # the sentences ran out: the corpus ends here
                text = _checked(given, spec)
            speed, pitch = rng.randint(*SPEED_RANGE), rng.randint(*PITCH_RANGE)
            yield _Utterance(f"{prefix}_{index:05d}", text, variant, speed, pitch)
            index += 1


def _checked(sentence: str, spec: LanguageSpec) -> str:
    """A given sentence, NFC lower case, with no character the language lacks."""
    text = unicodedata.normalize("NFC", sentence).lower()
    stray = set(text) - spec.alphabet - {" "}
    if stray:
        raise ValueError(f"{spec.name}: sentence {sentence!r} has characters outside the "
                         f"alphabet: {''.join(sorted(stray))}")
    return text


def _synthesize_until(
    plan: Iterator[_Utterance],
    spec: LanguageSpec,
    target_seconds: float,
    clips_dir: Path,
    audio_format: str,
    bar: tqdm,
) -> list[_Utterance]:
    """Synthesise planned utterances in order until their audio reaches the target.

    espeak-ng runs in a small thread pool a few utterances ahead; clips are written in
    plan order, so which utterances make the cut depends only on the seed.
    """
    kind, subtype = AUDIO_FORMATS[audio_format]
    written: list[_Utterance] = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(MAX_WORKERS) as pool:
        pending: deque[tuple[_Utterance, Future[np.ndarray]]] = deque()
        while total < target_seconds:
            while len(pending) < _LOOKAHEAD and (utt := next(plan, None)) is not None:
                pending.append((utt, pool.submit(_synthesize, utt, spec.voice, Path(tmp))))
            if not pending:
                break  # a finite list of sentences, all said
            utt, future = pending.popleft()
            audio = future.result()
            path = clips_dir / f"{utt.clip_id}.{audio_format}"
            sf.write(path, audio, SAMPLE_RATE, subtype=subtype, format=kind)
            seconds = len(audio) / SAMPLE_RATE
            bar.update(min(total + seconds, target_seconds) - min(total, target_seconds))
            total += seconds
            written.append(utt)
        for _, future in pending:
            future.cancel()
    return written


def _synthesize(utt: _Utterance, voice: str, tmp_dir: Path) -> np.ndarray:
    """Read one utterance with espeak-ng; return float32 16 kHz mono samples."""
    wav = tmp_dir / f"{utt.clip_id}.wav"
    args = ["-v", f"{voice}+{utt.variant}", "-s", str(utt.speed), "-p", str(utt.pitch)]
    _run_espeak([*args, "-w", str(wav), utt.text])
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    wav.unlink()
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    if audio.size == 0 or not np.any(audio):
        raise RuntimeError(f"espeak-ng produced silence for {utt.text!r} ({voice}+{utt.variant}).")
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _write_metadata(out_dir: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Write ``metadata.csv`` atomically (UTF-8, header first)."""
    tmp = out_dir / "metadata.csv.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, out_dir / "metadata.csv")


def pack_corpus(corpus_dir: Path, archive_path: Path) -> Path:
    """Pack a corpus folder into an uncompressed ``.tar`` (its audio is compressed already).

    The archive holds one top-level folder named like ``corpus_dir``. Entries are sorted
    and their owners and times cleared, so the same corpus always gives the same bytes.

    Args:
        corpus_dir: Folder holding ``metadata.csv`` and ``clips/``.
        archive_path: The ``.tar`` file to write.

    Returns:
        ``archive_path``.

    Raises:
        ValueError: If ``corpus_dir`` has no ``metadata.csv`` or the archive would land
            inside the folder being packed.
    """
    corpus_dir, archive_path = Path(corpus_dir).resolve(), Path(archive_path).resolve()
    if not (corpus_dir / "metadata.csv").is_file():
        raise ValueError(f"{corpus_dir} is not a corpus folder: it has no metadata.csv.")
    if archive_path.is_relative_to(corpus_dir):
        raise ValueError(f"Write the archive outside the folder being packed ({corpus_dir}).")
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive_path.with_name(archive_path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in [corpus_dir, *sorted(corpus_dir.rglob("*"))]:
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ValueError(f"Only plain files and folders can be packed, not {path}.")
            name = (Path(corpus_dir.name) / path.relative_to(corpus_dir)).as_posix()
            tar.add(path, arcname=name, recursive=False, filter=_anonymise)
    os.replace(tmp, archive_path)
    return archive_path


def _anonymise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Clear owner and time so archives are reproducible."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def unpack_corpus(archive: Path, dest: Path) -> Path:
    """Extract a corpus archive, refusing anything that could write outside ``dest``.

    Uses :func:`data_recipes.archive.unpack_into` (members checked before anything is
    written, size and ratio limits enforced while writing).

    Args:
        archive: A ``.tar`` (or compressed tar, or zip) made by :func:`pack_corpus`.
        dest: Folder to extract into (created if missing).

    Returns:
        The extracted corpus folder: ``dest/<top folder>`` when the archive has a single
        top-level folder, else ``dest``.

    Raises:
        ValueError: If a member has an absolute path, a ``..`` component, or is a link,
            device or other special file (``UnsafeArchiveError``, also a ``WorkbenchError``).
    """
    return unpack_into(Path(archive), Path(dest))


def build_demo_archive(
    archive_path: Path = DEMO_ARCHIVE,
    *,
    text_path: Path = DEMO_TEXT,
    minutes: float = 10.0,
    text_sentences: int = DEMO_TEXT_SENTENCES,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Regenerate the bundled Quechua demo corpus (Ogg Vorbis), pack it, and write the
    community text beside it.

    The transcripts are sentences of real Quechua words
    (:mod:`data_recipes.quechua_lexicon`); the community text holds ``text_sentences``
    other sentences from the same lexicon, none of them a transcript of the corpus.

    The transcripts, speakers, decoded audio and text are identical on every run; the
    archive bytes are not, because libsndfile gives each Ogg stream a random serial number.

    Args:
        archive_path: Where to write the ``.tar``.
        text_path: Where to write the community text (one sentence a line, UTF-8).
        minutes: Amount of audio.
        text_sentences: Sentences in the community text.
        seed: Random seed (0 for the bundled archive).
        progress: Show a progress bar.

    Returns:
        ``archive_path``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / DEMO_NAME
        generate_corpus(
            corpus,
            language="qu",
            minutes=minutes,
            seed=seed,
            audio_format="ogg",
            progress=progress,
            sentences=lexicon_sentences("qu", f"{seed}:qu:corpus"),
        )
        with open(corpus / "metadata.csv", encoding="utf-8") as table:
            spoken = frozenset(row["transcription"] for row in csv.DictReader(table))
        others = lexicon_sentences("qu", f"{seed}:qu:text", exclude=spoken)
        lines = [next(others) for _ in range(text_sentences)]
        write_text_atomic(Path(text_path), "\n".join(lines) + "\n")
        return pack_corpus(corpus, archive_path)
