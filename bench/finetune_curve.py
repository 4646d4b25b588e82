"""CER against training time: fine-tuning the bundled demo-base vs. the same architecture
trained from scratch, on ~10 minutes of a language the base never heard.

Both runs use the same workspace (speaker-disjoint split: dev and test voices are held out of
fine-tuning), the same settings apart from the model, and the same wall-clock budget, one
after the other in this process. Prints the dev-CER curve of both side by side and the final
test CER of each.

What "held out" means here. The voices of the demo corpus (and of a corpus generated with
the default voices) are espeak-ng voice variants from ``data_recipes.synthetic.DEFAULT_VOICES``:
the same 12 variants demo-base was pretrained on (speaking 23 other languages, see
``scripts/build_demo_base.sh``). Its dev and test voices are held out of fine-tuning only, not
of pretraining. So each model is also scored on a second test set, generated here: Quechua
read by espeak-ng voice variants outside ``DEFAULT_VOICES`` (``--new-voices``), which neither
pretraining nor fine-tuning heard, with sentences of their own.

    python bench/finetune_curve.py                      # bundled Quechua demo corpus
    python bench/finetune_curve.py --language mi        # generate Māori with espeak-ng
    python bench/finetune_curve.py --language qu --corpus-voices m6,m8,f5,klatt2,klatt3,Annie \\
        --new-voices benjamin,linda,Andy,klatt5       # train on voices outside pretraining too
    python bench/finetune_curve.py --minutes 0.2 --eval-every 5 --new-voices-minutes 0.3 \\
        --models demo-base                              # smoke test
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_recipes import prepare_sources  # noqa: E402
from data_recipes.synthetic import (  # noqa: E402
    DEFAULT_VOICES,
    DEMO_ARCHIVE,
    LANGUAGES,
    generate_corpus,
    lexicon_sentences,
    unpack_corpus,
)
from workbench.config import build_config  # noqa: E402
from workbench.evaluate import error_rates, evaluate_run  # noqa: E402
from workbench.run import Run  # noqa: E402
from workbench.train import train  # noqa: E402
from workbench.vocab import build_workspace_vocab  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

MODELS = ("demo-base", "small")  # small = demo-base's architecture, random initialisation
# espeak-ng variants outside DEFAULT_VOICES (so outside demo-base's pretraining), chosen to
# sound unlike each other: male, female and Klatt-synthesiser voices.
NEW_VOICES = ("m6", "m8", "f5", "klatt2", "klatt3", "Annie", "benjamin", "linda")
NEW_VOICES_SEED_OFFSET = 1000  # its sentences come from another random stream than the corpus


def build_workspace(root: Path, language: str, corpus_minutes: float, seed: int,
                    voices: tuple[str, ...] | None = None) -> Workspace:
    """Import ~10 minutes of an unseen language into a fresh workspace.

    ``qu-demo`` is the bundled demo corpus; ``LANG-words`` (``mi-words``) says sentences of
    real words from the language's lexicon instead of random words.
    """
    if language == "qu-demo":
        source = unpack_corpus(DEMO_ARCHIVE, root / "source")
    else:
        code, sentences = corpus_sentences(language, f"{seed}:{language}:corpus")
        source = generate_corpus(root / "source", language=code, minutes=corpus_minutes,
                                 voices=voices, seed=seed, progress=False,
                                 sentences=sentences)
    ws = Workspace.at(root / "ws")
    prepare_sources([source], ws, seed=seed, progress=False)
    build_workspace_vocab(ws)
    return ws


def corpus_sentences(language: str, seed: str) -> tuple[str, Iterator[str] | None]:
    """The espeak language code, and lexicon sentences for ``LANG-words`` (else None)."""
    if language.endswith("-words"):
        code = language.removesuffix("-words")
        return code, lexicon_sentences(code, seed)
    return language, None


def voice_report(ws: Workspace) -> dict[str, list[str]]:
    """The voices of each split, and which of them demo-base was pretrained on."""
    report = {}
    for split in ("train", "dev", "test"):
        report[split] = sorted({u.speaker for u in ws.read_split(split)})
    report["pretrained on"] = sorted({v for split in ("dev", "test") for v in report[split]}
                                     & set(DEFAULT_VOICES))
    return report


def new_voice_set(root: Path, language: str, voices: tuple[str, ...], minutes: float,
                  seed: int, ws: Workspace) -> dict:
    """A test set read by ``voices`` (none of them pretrained on): paths, references."""
    import csv

    from workbench.text import load_profile, normalize

    if language == "qu-demo":
        language = "qu-words"  # the demo's sentences are made of real words
    language, sentences = corpus_sentences(language, f"{seed}:{language}:new-voices")
    pretrained = sorted(set(voices) & set(DEFAULT_VOICES))
    if pretrained:
        raise SystemExit(f"--new-voices {pretrained} are in DEFAULT_VOICES (demo-base's "
                         "pretraining voices); choose others (`espeak-ng --voices=variant`).")
    folder = generate_corpus(root / "new-voices", language=language, minutes=minutes,
                             voices=voices, seed=seed + NEW_VOICES_SEED_OFFSET, progress=False,
                             sentences=sentences)
    profile = load_profile(ws.profile_path)
    with open(folder / "metadata.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    train_texts = {normalize(u.text, profile) for u in ws.read_split("train")}
    refs = [normalize(r["transcription"], profile) for r in rows]
    return {"paths": [folder / r["file_name"] for r in rows], "refs": refs,
            "language": LANGUAGES[language].name,
            "voices": sorted({r["speaker"] for r in rows}),
            "seconds": _seconds([folder / r["file_name"] for r in rows]),
            "in_train": sum(ref in train_texts for ref in refs)}


def _seconds(paths: list[Path]) -> float:
    import soundfile as sf

    return sum(sf.info(str(p)).duration for p in paths)


def score_new_voices(run_dir: Path, test: dict) -> dict:
    """Transcribe the new-voice set with the run's best model; score it as evaluate does."""
    from workbench.transcribe import transcribe_files

    results = transcribe_files(test["paths"], run_dir, progress=False)
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{bad[0].path}: {bad[0].error}")
    return error_rates(test["refs"], [r.text for r in results])


def run_model(ws: Workspace, model: str, minutes: float, eval_every: int,
              new_voices: dict | None) -> dict:
    """Fine-tune ``model`` with the 10min preset for ``minutes``; evaluate on test."""
    config = build_config(preset="10min", overrides=[f"model.name={model}",
                                                     f"run.eval_every={eval_every}"])
    started = time.monotonic()
    result = train(ws, config, max_minutes=minutes, progress=False)
    report = evaluate_run(ws, result.run_dir.name, "test", progress=False)
    records = Run(result.run_dir).read_metrics()
    curve = [(r["elapsed_s"], r["dev_cer"]) for r in records if r["event"] == "eval"]
    out = {"model": model, "steps": result.steps, "train_s": result.elapsed_s,
           "wall_s": round(time.monotonic() - started, 1), "test_cer": report.cer,
           "test_wer": report.wer, "curve": curve, "run_dir": str(result.run_dir)}
    if new_voices:
        rates = score_new_voices(result.run_dir, new_voices)
        out["new_cer"], out["new_wer"] = rates["cer"], rates["wer"]
    return out


def side_by_side(results: list[dict], minutes: float) -> str:
    """A table of dev CER at each minute for every model, then the final test scores."""
    header = "| minute | " + " | ".join(f"dev CER {r['model']}" for r in results) + " |"
    lines = [header, "|" + "---|" * (len(results) + 1)]
    for minute in range(1, max(1, int(minutes)) + 1):
        cells = [_cer_at(r["curve"], minute * 60) for r in results]
        lines.append(f"| {minute} | " + " | ".join(cells) + " |")
    new = "new_cer" in results[0]
    lines += ["", "| model | steps | training time | test CER | test WER |"
              + (" test CER, new voices | test WER, new voices |" if new else ""),
              "|---|---|---|---|---|" + ("---|---|" if new else "")]
    for r in results:
        line = (f"| {r['model']} | {r['steps']} | {r['train_s'] / 60:.1f} min | "
                f"{r['test_cer']:.3f} | {r['test_wer']:.3f} |")
        if new:
            line += f" {r['new_cer']:.3f} | {r['new_wer']:.3f} |"
        lines.append(line)
    return "\n".join(lines)


def _cer_at(curve: list[tuple[float, float]], seconds: float) -> str:
    """The last dev CER measured at or before ``seconds``."""
    seen = [cer for elapsed, cer in curve if elapsed <= seconds + 1]
    return f"{seen[-1]:.3f}" if seen else "-"


def voices_text(voices: dict, new_voices: dict | None) -> str:
    lines = [f"Voices: train {', '.join(voices['train'])}; dev {', '.join(voices['dev'])}; "
             f"test {', '.join(voices['test'])}."]
    if voices["pretrained on"]:
        lines.append(f"The dev and test voices {', '.join(voices['pretrained on'])} are "
                     "espeak-ng variants demo-base was pretrained on (DEFAULT_VOICES, in 23 "
                     "other languages): held out of fine-tuning, not of pretraining.")
    else:
        lines.append("None of the dev and test voices is in demo-base's pretraining voices "
                     "(DEFAULT_VOICES).")
    if new_voices:
        lines.append(f"New voices: {len(new_voices['refs'])} clips, "
                     f"{new_voices['seconds'] / 60:.1f} min of {new_voices['language']} read by "
                     f"{', '.join(new_voices['voices'])}: none in DEFAULT_VOICES, so heard "
                     "neither in pretraining nor in fine-tuning; "
                     f"{new_voices['in_train']} of its sentences also occur in the training "
                     "split.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", default="qu-demo",
                        help="qu-demo (bundled corpus), an espeak language code (mi: random "
                        "words) or LANG-words (mi-words, qu-words: sentences of real words)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    parser.add_argument("--corpus-minutes", type=float, default=10.0)
    parser.add_argument("--corpus-voices", default="",
                        help="with a generated corpus: its espeak-ng voice variants "
                        "(comma-separated; default DEFAULT_VOICES)")
    parser.add_argument("--new-voices", default=",".join(NEW_VOICES),
                        help="voice variants of the second test set, none in DEFAULT_VOICES "
                        "('' to skip it)")
    parser.add_argument("--new-voices-minutes", type=float, default=3.0)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, help="append the figures to this Markdown file")
    args = parser.parse_args()
    corpus_voices = tuple(v for v in args.corpus_voices.split(",") if v) or None
    new_voice_names = tuple(v for v in args.new_voices.split(",") if v)
    if corpus_voices and set(corpus_voices) & set(new_voice_names):
        parser.error("--corpus-voices and --new-voices share voices")
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp), args.language, args.corpus_minutes, args.seed,
                             corpus_voices)
        voices = voice_report(ws)
        new_voices = (new_voice_set(Path(tmp), args.language, new_voice_names,
                                    args.new_voices_minutes, args.seed, ws)
                      if new_voice_names else None)
        results = [run_model(ws, model, args.minutes, args.eval_every, new_voices)
                   for model in args.models.split(",")]
    table = side_by_side(results, args.minutes)
    notes = voices_text(voices, new_voices)
    print(f"{table}\n\n{notes}")
    if args.results:
        command = " ".join(["python", *sys.argv])
        with open(args.results, "a", encoding="utf-8") as out:
            out.write(f"\n## CER against time, {args.language} ({time.strftime('%Y-%m-%d')}, "
                      f"{platform.machine()}, {os.cpu_count()} cores)\n\n`{command}`\n\n"
                      f"{table}\n\n{notes}\n")


if __name__ == "__main__":
    main()
