"""CER against training time: fine-tuning the bundled demo-base vs. the same architecture
trained from scratch, on ~10 minutes of a language the base never heard.

Both runs use the same workspace (speaker-disjoint split: test voices are held out), the same
settings apart from the model, and the same wall-clock budget, one after the other in this
process. Prints the dev-CER curve of both side by side and the final test CER of each.

    python bench/finetune_curve.py                      # bundled Quechua demo corpus
    python bench/finetune_curve.py --language mi        # generate Māori with espeak-ng
    python bench/finetune_curve.py --minutes 10 --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_recipes import prepare_sources  # noqa: E402
from data_recipes.synthetic import DEMO_ARCHIVE, generate_corpus, unpack_corpus  # noqa: E402
from workbench.config import build_config  # noqa: E402
from workbench.evaluate import evaluate_run  # noqa: E402
from workbench.train import train  # noqa: E402
from workbench.vocab import build_workspace_vocab  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

MODELS = ("demo-base", "small")  # small = demo-base's architecture, random initialisation


def build_workspace(root: Path, language: str, corpus_minutes: float, seed: int) -> Workspace:
    """Import ~10 minutes of an unseen language into a fresh workspace."""
    if language == "qu-demo":
        source = unpack_corpus(DEMO_ARCHIVE, root / "source")
    else:
        source = generate_corpus(root / "source", language=language, minutes=corpus_minutes,
                                 seed=seed, progress=False)
    ws = Workspace.at(root / "ws")
    prepare_sources([source], ws, seed=seed, progress=False)
    build_workspace_vocab(ws)
    return ws


def run_model(ws: Workspace, model: str, minutes: float, eval_every: int) -> dict:
    """Fine-tune ``model`` with the 10min preset for ``minutes``; evaluate on test."""
    config = build_config(preset="10min", overrides=[f"model.name={model}",
                                                     f"run.eval_every={eval_every}"])
    started = time.monotonic()
    result = train(ws, config, max_minutes=minutes, progress=False)
    report = evaluate_run(ws, result.run_dir.name, "test", progress=False)
    records = [json.loads(line) for line in
               (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["elapsed_s"], r["dev_cer"]) for r in records if r["event"] == "eval"]
    return {"model": model, "steps": result.steps, "train_s": result.elapsed_s,
            "wall_s": round(time.monotonic() - started, 1), "test_cer": report.cer,
            "test_wer": report.wer, "curve": curve, "run_dir": str(result.run_dir)}


def side_by_side(results: list[dict], minutes: float) -> str:
    """A table of dev CER at each minute for every model, then the final test scores."""
    header = "| minute | " + " | ".join(f"dev CER {r['model']}" for r in results) + " |"
    lines = [header, "|" + "---|" * (len(results) + 1)]
    for minute in range(1, int(minutes) + 1):
        cells = [_cer_at(r["curve"], minute * 60) for r in results]
        lines.append(f"| {minute} | " + " | ".join(cells) + " |")
    lines += ["", "| model | steps | training time | test CER | test WER |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['steps']} | {r['train_s'] / 60:.1f} min | "
              f"{r['test_cer']:.3f} | {r['test_wer']:.3f} |" for r in results]
    return "\n".join(lines)


def _cer_at(curve: list[tuple[float, float]], seconds: float) -> str:
    """The last dev CER measured at or before ``seconds``."""
    seen = [cer for elapsed, cer in curve if elapsed <= seconds + 1]
    return f"{seen[-1]:.3f}" if seen else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", default="qu-demo",
                        help="qu-demo (bundled corpus) or an espeak language code, e.g. mi")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    parser.add_argument("--corpus-minutes", type=float, default=10.0)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, help="append the figures to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp), args.language, args.corpus_minutes, args.seed)
        results = [run_model(ws, model, args.minutes, args.eval_every) for model in MODELS]
    table = side_by_side(results, args.minutes)
    print(table)
    if args.results:
        command = " ".join(["python", *sys.argv])
        with open(args.results, "a", encoding="utf-8") as out:
            out.write(f"\n## CER against time, {args.language} ({time.strftime('%Y-%m-%d')}, "
                      f"{platform.machine()}, {os.cpu_count()} cores)\n\n`{command}`\n\n"
                      f"{table}\n")


if __name__ == "__main__":
    main()
