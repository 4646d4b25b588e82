"""Language models in a workspace: ``WS/lm/<name>/`` built from text, loaded for decoding.

A folder holds ``lm.arpa`` (the n-gram model, modified Kneser-Ney with ``<unk>``),
``lexicon.txt`` (word LMs: each word and its labels) and ``lm.json`` (unit, order, the
vocabulary it was built against, the text report, dev perplexity, decoding settings). There is
no binary form: flashlight's bundled KenLM reads ARPA directly and the KenLM wheels on PyPI
have no ``build_binary``. A build is staged and swapped in whole: a kill leaves the previous
model or none, never half of one.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.fsio import staged_dir, write_json_atomic
from workbench.lm.beam import BeamDecoder, BeamSettings
from workbench.lm.corpus import CHAR, WORD, CorpusReport, LeakDetector, SentenceReader
from workbench.lm.ngram import UNK, NgramModel, estimate, write_arpa
from workbench.text import OrthographyProfile, load_profile, normalize, tokenize
from workbench.workspace import Workspace

LM_DIR = "lm"
INFO, ARPA, LEXICON = "lm.json", "lm.arpa", "lexicon.txt"
TRANSCRIPTS = "train-transcripts.txt"
DEFAULT_ORDER = {WORD: 3, CHAR: 6}
DEFAULT_MAX_WORDS = 2_000_000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def lm_root(ws: Workspace) -> Path:
    return ws.root / LM_DIR


def lm_dir(ws: Workspace, name: str) -> Path:
    if not NAME.match(name):
        raise WorkbenchError(f"LM name {name!r}: use letters, digits, '.', '_' or '-' "
                             "(at most 64), starting with a letter or digit.")
    return lm_root(ws) / name


def list_lms(ws: Workspace) -> list[str]:
    root = lm_root(ws)
    return sorted(p.name for p in root.iterdir() if (p / INFO).is_file()) if root.is_dir() else []


@dataclass
class BuildResult:
    folder: Path
    info: dict[str, Any]


def build_lm(ws: Workspace, texts: list[Path], *, name: str = "default", order: int = 0,
             unit: str = WORD, transcripts: bool = False, allow_leakage: bool = False,
             max_words: int = DEFAULT_MAX_WORDS) -> BuildResult:
    """Estimate an n-gram LM from ``texts`` (and the training transcripts, if asked).

    Raises:
        WorkbenchError: No vocabulary, no usable text (with the reasons per file).
    """
    from workbench.vocab import load_vocab, require_current_vocab

    require_current_vocab(ws)
    profile = load_profile(ws.profile_path)
    vocab = load_vocab(ws.vocab_path)
    order = order or DEFAULT_ORDER.get(unit, 3)
    if not texts and not transcripts:
        raise WorkbenchError("Give at least one text file, or use the training transcripts "
                             "(--transcripts).")
    final = lm_dir(ws, name)
    started = time.perf_counter()
    with staged_dir(final, what=f"the language model {name}") as staging:
        sources = [Path(t) for t in texts]
        if transcripts:
            sources.append(_write_transcripts(ws, staging / TRANSCRIPTS))
        reader = SentenceReader(profile, set(vocab), unit, leaks=_leak_detector(ws, profile),
                                allow_leakage=allow_leakage, max_words=max_words)
        model = _estimate(reader, sources, order)
        for record in reader.report.files:
            if record.path == str(staging / TRANSCRIPTS):
                record.path = f"{TRANSCRIPTS} (the training transcripts)"
        write_arpa(model, staging / ARPA)
        if unit == WORD:
            _write_lexicon(model, profile, staging / LEXICON)
        info = _info(name, unit, order, ws, vocab, reader.report, model, profile)
        info["build_seconds"] = round(time.perf_counter() - started, 2)
        write_json_atomic(staging / INFO, info)
    return BuildResult(final, info)


def _estimate(reader: SentenceReader, sources: list[Path], order: int) -> NgramModel:
    try:
        return estimate(reader.sentences(sources), order)
    except WorkbenchError as err:
        raise WorkbenchError(_nothing_usable(reader.report, str(err))) from err


def _nothing_usable(report: CorpusReport, reason: str) -> str:
    lines = [f"No usable text: {reason}"]
    lines += [f"  {f.path}: {f.error}" for f in report.files if f.error]
    if report.words_seen and report.words_outside_alphabet == report.words_seen:
        sample = "".join(c for c, _ in report.outside_alphabet.most_common(12))
        lines.append(f"  None of its {report.words_seen} words can be spelled with the model's "
                     f"alphabet (characters such as {sample!r} are not in the vocabulary): is "
                     "it in another script or orthography?")
    if any(report.leaked_lines.values()) and not report.leakage_allowed:
        lines.append(f"  {sum(report.leaked_lines.values())} line(s) were left out as dev/test "
                     "transcripts.")
    return "\n".join(lines)


def _write_transcripts(ws: Workspace, path: Path) -> Path:
    path.write_text("".join(f"{u.text}\n" for u in ws.read_split("train")), encoding="utf-8")
    return path


def _leak_detector(ws: Workspace, profile: OrthographyProfile) -> LeakDetector:
    return LeakDetector({split: [normalize(u.text, profile) for u in ws.read_split(split)]
                         for split in ("dev", "test")})


def _write_lexicon(model: NgramModel, profile: OrthographyProfile, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for word in model.vocabulary:
            out.write(f"{word}\t{' '.join(tokenize(word, profile))}\n")


def _info(name: str, unit: str, order: int, ws: Workspace, vocab: dict[str, int],
          report: CorpusReport, model: NgramModel, profile: OrthographyProfile) -> dict:
    return {
        "name": name, "unit": unit, "order": order, "label_unit": profile.label_unit,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "tokens": _tokens(vocab), "ngrams": model.counts(),
        "types": len(model.vocabulary), "discounts": [list(d) for d in model.discounts],
        "discount_fallback_orders": model.fallback_orders, "text": report.to_dict(),
        "dev": dev_perplexity(model, ws, profile, unit),
        "decoding": BeamSettings().to_dict(), "tuned": None,
    }


def _tokens(vocab: dict[str, int]) -> list[str]:
    """The vocabulary in id order: what the LM's labels must match at decoding time."""
    return [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]


def dev_perplexity(model: NgramModel, ws: Workspace, profile: OrthographyProfile,
                   unit: str) -> dict[str, float | int]:
    """Perplexity of the dev transcripts (``</s>`` counted, OOVs scored as ``<unk>``)."""
    known = {g[0] for g in model.log10_probs[0]}
    total, tokens, oov, words = 0.0, 0, 0, 0
    dev = ws.read_split("dev")
    for utterance in dev:
        text = normalize(utterance.text, profile)
        sequence = text.split() if unit == WORD else tokenize(text, profile)
        words += len(text.split())
        oov += sum(1 for w in text.split() if unit == WORD and w not in known)
        history: list[str] = ["<s>"]
        for token in [*sequence, "</s>"]:
            total += model.log10_prob(token if token in known else UNK, history)
            history.append(token)
            tokens += 1
    if not tokens:
        return {"utterances": 0}
    return {"utterances": len(dev), "tokens": tokens,
            "perplexity": round(10 ** (-total / tokens), 3),
            "oov_rate": round(oov / words, 4) if words else 0.0}


# ---------------------------------------------------------------------------------------------
# Loading


def read_info(folder: Path) -> dict[str, Any]:
    path = Path(folder) / INFO
    if not path.is_file():
        raise WorkbenchError(f"{folder} is not a language model folder (no {INFO}); build one "
                             "with `workbench lm build`.")
    return json.loads(path.read_text(encoding="utf-8"))


def find_lm(ws: Workspace | None, name: str | Path) -> Path:
    """The folder of LM ``name`` in ``ws``, or ``name`` itself when it is a folder."""
    if Path(name).is_dir() and (Path(name) / INFO).is_file():
        return Path(name)
    if ws is not None and (lm_dir(ws, str(name)) / INFO).is_file():
        return lm_dir(ws, str(name))
    known = ", ".join(list_lms(ws)) if ws is not None else ""
    raise WorkbenchError(f"No language model {name!r}" + (f" (built: {known})" if known else "")
                         + "; build one with `workbench lm build TEXT -w WS --name NAME`.")


def read_lexicon(path: Path) -> dict[str, list[str]]:
    lexicon = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word, _, labels = line.rstrip("\n").partition("\t")
            lexicon[word] = labels.split(" ") if labels else []
    return lexicon


def load_decoder(folder: Path, tokenizer: Any, settings: BeamSettings | None = None
                 ) -> BeamDecoder:
    """A :class:`BeamDecoder` for the model whose tokenizer is given; the LM's tuned settings
    unless ``settings`` is given. Refuses an LM built against another vocabulary."""
    folder = Path(folder)
    info = read_info(folder)
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    expected = info.get("tokens") or []
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(expected))))
    if not expected or tokens != expected:
        raise WorkbenchError(f"The language model {folder.name} was built against another "
                             "vocabulary than this model's; rebuild it with `workbench lm build` "
                             "after `workbench vocab`.")
    if settings is None:
        settings = BeamSettings(**(info.get("tuned") or {}).get("settings", info["decoding"]))
    lexicon = read_lexicon(folder / LEXICON) if info["unit"] == WORD else None
    return BeamDecoder(tokens, tokenizer.pad_token_id, tokenizer.word_delimiter_token,
                       folder / ARPA, info["unit"], lexicon, settings,
                       skip=tokenizer.all_special_tokens)


def bundle_lm(folder: Path, target: Path) -> Path:
    """Copy an LM's files into ``target`` (inside a folder being built, such as an export)."""
    import shutil

    read_info(folder)  # refuses a folder that is not an LM
    target.mkdir(parents=True, exist_ok=True)
    for name in (INFO, ARPA, LEXICON):
        if (Path(folder) / name).is_file():
            shutil.copy2(Path(folder) / name, target / name)
    return target


def bundled_lm(model_dir: Path) -> Path | None:
    """The LM an exported model folder carries in ``lm/``, if any."""
    folder = Path(model_dir) / "lm"
    return folder if (folder / INFO).is_file() else None


def store_tuned(folder: Path, tuned: dict[str, Any]) -> None:
    info = read_info(folder)
    info["tuned"] = tuned
    write_json_atomic(Path(folder) / INFO, info)



def format_build(info: dict[str, Any], folder: Path) -> str:
    """The build report for the terminal."""
    text, dev = info["text"], info["dev"]
    lines = [f"Language model {info['name']} ({info['unit']} {info['order']}-gram, modified "
             f"Kneser-Ney) in {folder}"]
    for f in text["files"]:
        state = f"ERROR {f['error']}" if f["error"] else (
            f"{f['lines']} lines, {f['sentences']} sentences kept, {f['encoding']}"
            + (f"; {f['note']}" if f["note"] else ""))
        lines.append(f"  {f['path']}: {state}")
    lines.append(f"  {text['sentences']} sentences, {text['tokens']} {info['unit']} tokens, "
                 f"{info['types']} {'word' if info['unit'] == WORD else 'symbol'} types; "
                 f"n-grams per order: {info['ngrams']}")
    if text["words_outside_alphabet"]:
        chars = ", ".join(f"{c!r} x{n}" for c, n in list(text["outside_alphabet"].items())[:10])
        lines.append(f"  {text['words_outside_alphabet']} of {text['words_seen']} words hold "
                     f"characters outside the model's vocabulary and were left out: {chars}")
    leaked = sum(text["leaked_lines"].values())
    if leaked:
        verb = "kept (--allow-leakage): scores will be optimistic" if text["leakage_allowed"] \
            else "left out"
        lines.append(f"  leakage: {text['leaked_lines']['dev']} dev and "
                     f"{text['leaked_lines']['test']} test transcripts found in the text, {verb}")
        lines += [f"    {e}" for e in text["leaked_examples"]]
    if text["truncated_at"]:
        lines.append(f"  stopped after {text['truncated_at']} words (--max-words); the rest of "
                     "the text was not used")
    if info["discount_fallback_orders"]:
        lines.append(f"  orders {info['discount_fallback_orders']}: too little text to estimate "
                     "discounts, fixed ones used (0.5, 1, 1.5)")
    if dev.get("tokens"):
        oov = f", out-of-vocabulary words {100 * dev['oov_rate']:.1f} %" if info["unit"] == WORD \
            else ""
        lines.append(f"  dev transcripts: perplexity {dev['perplexity']}{oov}")
    lines.append(f"Next: `workbench lm tune -w WS --lm {info['name']}` (alpha and beta on dev), "
                 f"then `workbench evaluate -w WS --lm {info['name']}`.")
    return "\n".join(lines)
