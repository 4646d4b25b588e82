"""Labels per code point against labels per grapheme, in scripts of their own.

For each language (default: Hindi and Malayalam, abugidas, and Amharic, a syllabary whose
syllables are single code points), espeak-ng reads about ten minutes of random sentences
(``data_recipes.synthetic.SCRIPT_LANGUAGES``); the corpus is imported once with a
speaker-disjoint split (dev and test voices held out of fine-tuning), then for each label
unit the vocabulary is built and demo-base is fine-tuned with the 10min preset, in this
process, one run after the other, each for the same number of steps (a step budget, not a
time budget, so that a busy machine cannot favour one unit). Prints a table of
vocabulary size, labels seen once, steps, training time and test CER/WER per language and
unit.

    python bench/scripts.py                                   # hi, ml, am; 400 steps each
    python bench/scripts.py --languages hi --minutes 3 --max-steps 100   # quick look

What it favours: demo-base was pretrained on Latin-script languages only, so neither unit
starts from phonetic knowledge of these scripts' letters; the comparison is between the two
units on the same data, settings and budget.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_recipes import prepare_sources  # noqa: E402
from data_recipes.synthetic import SCRIPT_LANGUAGES, generate_corpus  # noqa: E402
from workbench.config import build_config  # noqa: E402
from workbench.evaluate import evaluate_run  # noqa: E402
from workbench.text import LABEL_UNITS, OrthographyProfile, save_profile  # noqa: E402
from workbench.train import train  # noqa: E402
from workbench.vocab import build_workspace_vocab  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402


def imported(root: Path, language: str, minutes: float, seed: int) -> Workspace:
    """A workspace with the language's synthetic corpus imported (no vocabulary yet)."""
    source = generate_corpus(root / f"{language}-source", language=language, minutes=minutes,
                             seed=seed, progress=False)
    ws = Workspace.at(root / f"{language}-imported")
    prepare_sources([source], ws, seed=seed, progress=False)
    return ws


def run_unit(base: Workspace, unit: str, max_minutes: float, max_steps: int) -> dict:
    """Copy the workspace, build its vocabulary with ``unit``, fine-tune and score demo-base."""
    ws_root = base.root.with_name(f"{base.root.name.split('-')[0]}-{unit}")
    shutil.copytree(base.root, ws_root)
    ws = Workspace.at(ws_root)
    save_profile(OrthographyProfile(label_unit=unit), ws.profile_path)
    report = build_workspace_vocab(ws)
    overrides = ["model.name=demo-base"] + ([f"optim.max_steps={max_steps}"] if max_steps else [])
    config = build_config(preset="10min", overrides=overrides)
    result = train(ws, config, max_minutes=max_minutes, progress=False)
    test = evaluate_run(ws, result.run_dir.name, "test", progress=False)
    return {"unit": unit, "labels": report.vocab_size, "seen_once": report.seen_once,
            "steps": result.steps, "train_min": result.elapsed_s / 60, "best_step":
            result.best_step, "test_cer": test.cer, "test_wer": test.wer,
            "train_utts": len(ws.read_split("train")), "test_voices":
            sorted({u.speaker for u in ws.read_split("test")})}


def table(rows: list[dict]) -> str:
    lines = ["| language | unit | labels | seen once | steps | training | test CER | "
             "test WER |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['language']} | {r['unit']} | {r['labels']} | {r['seen_once']} | "
                     f"{r['steps']} | {r['train_min']:.1f} min | {r['test_cer']:.3f} | "
                     f"{r['test_wer']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default="hi,ml,am",
                        help=f"comma-separated, of {', '.join(SCRIPT_LANGUAGES)}")
    parser.add_argument("--minutes", type=float, default=10.0, help="corpus minutes each")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="training time budget per run (0: none)")
    parser.add_argument("--max-steps", type=int, default=400, help="0: the preset's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"corpus {args.minutes} min per language; budget {args.max_minutes} min and "
          f"{args.max_steps or 'the preset'} steps per run", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="scripts-bench-") as tmp:
        root = args.keep or Path(tmp)
        for language in args.languages.split(","):
            started = time.monotonic()
            base = imported(root, language, args.minutes, args.seed)
            print(f"{language}: corpus imported in {time.monotonic() - started:.0f} s",
                  flush=True)
            for unit in LABEL_UNITS:
                row = {"language": SCRIPT_LANGUAGES[language].name,
                       **run_unit(base, unit, args.max_minutes, args.max_steps)}
                print(row, flush=True)
                rows.append(row)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
