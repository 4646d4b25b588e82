"""Laptop mode (``model.mode=top``) against the full fine-tune: speed on XLS-R-300M, CER on
demo-base.

Every row is the workbench's own ``train()`` in a fresh process (wall time and peak RSS of
the whole process tree from ``bench/procstats.py``), on the bundled 10-minute demo corpus
(``data_recipes/demo``, prepared once as ``bench/train_memory.py`` does).

Speed (``--speed``): a randomly initialised model of the XLS-R-300M architecture (24 layers,
hidden 1024, pre-LN), ``--epochs`` epochs in top mode with ``--top-layers`` layers training,
one dev evaluation at the end. Reported: the cache time (the bottom run once per clip), the
seconds per epoch on the cache, the whole run, peak RSS; against the full fine-tune's seconds
per step (``--full-steps`` steps, same batches) and what the same epochs would take with it.
Target: caching and training in at most 30 minutes on 2 cores, peak RSS at most 8 GiB.
``--finish-epochs E`` adds laptop mode's finish (``model.finish_epochs``: E epochs of a full
fine-tune after the top stage) to the top row, with its full steps' time.

Quality (``--quality``): demo-base on the demo workspace, the demo-base preset (the same
steps budget for every row: ``optim.max_steps`` when given, else the preset's epochs),
test CER (``workbench evaluate``'s scoring) and wall time for each ``--layers`` value and
the full fine-tune. Target: the default top_layers within 10% relative of the full CER in at
most half its time. The top rows take the model's own laptop-mode defaults (for demo-base 15
epochs, then 6 finishing epochs of a full fine-tune at 1.5 times its learning rate: the epochs
column reads "15.0 + 6.0 full").

    python bench/laptop_mode.py --speed --epochs 20 --top-layers 8 --threads 2
    python bench/laptop_mode.py --quality --layers 1,2,4,6 --threads 2
    python bench/laptop_mode.py --quality --layers 2 --max-steps 20   # quick check
    python bench/laptop_mode.py --quality --corpus mi-words --layers 2 --top-set optim.epochs=60
    python bench/laptop_mode.py --speed --arch tiny --epochs 2        # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procstats import machine_line, run_child  # noqa: E402
from bench.train_memory import ARCHS, demo_workspace, random_model_dir  # noqa: E402

GIB = 2**30


def child(ws: str, model: str, mode: str, top_layers: int, threads: int, score: bool,
          overrides: list[str]) -> None:
    """One training run through ``train()``; print its figures as JSON. The pseudo-setting
    ``bench.frozen_input=1`` freezes the positional convolution and the feature projection
    (what every laptop-mode cut freezes) in a full fine-tune."""
    from workbench.config import build_config
    from workbench.evaluate import evaluate_run
    from workbench.run import Run
    from workbench.train import train
    from workbench.workspace import Workspace

    if FROZEN_INPUT in overrides:
        overrides = [o for o in overrides if o != FROZEN_INPUT]
        freeze_input_after_build()
    config = build_config(preset="10min", overrides=[
        f"model.name={model}", f"model.mode={mode}", f"model.top_layers={top_layers}",
        f"run.threads={threads}", "run.log_every=1", *overrides])
    started = time.monotonic()
    marks: dict = {"steps": [], "epochs": {}}

    def on_event(record: dict) -> None:
        if record.get("event") == "cache":
            marks["cache"] = record
        elif record.get("event") == "train":
            marks["steps"].append(time.monotonic() - started)
            marks["epochs"].setdefault(record["epoch"], time.monotonic() - started)
        elif record.get("event") == "start" and "train_from_s" not in marks:
            marks["train_from_s"] = time.monotonic() - started
            marks["steps_per_epoch"] = record["steps_per_epoch"]
            marks["finish_steps"] = record.get("finish_steps", 0)
        elif record.get("event") == "stage_end":  # laptop mode's finish follows
            marks["top_steps"] = len(marks["steps"])
            marks["finish_from_s"] = time.monotonic() - started

    with tempfile.TemporaryDirectory(prefix="laptop-bench-") as runs:
        copy = Workspace.at(Path(runs) / "ws")
        import shutil

        shutil.copytree(ws, copy.root, ignore=shutil.ignore_patterns("runs"))
        result = train(copy, config, progress=False, on_event=on_event)
        marks["train_s"] = time.monotonic() - started
        marks["result"] = result.to_dict()
        if score:
            marks["test_cer"] = evaluate_run(copy, Run(result.run_dir).name, "test",
                                             progress=False).cer
    print(json.dumps(marks), flush=True)


FROZEN_INPUT = "bench.frozen_input=1"


def freeze_input_after_build() -> None:
    """Make ``train()`` freeze the layers below transformer layer 0 that a full fine-tune
    trains and laptop mode cannot: the positional convolution and the feature projection."""
    import workbench.train as training

    build = training.build_model

    def frozen(*args, **kwargs):
        model = build(*args, **kwargs)
        base = model.base_model
        for module in (base.encoder.pos_conv_embed, base.feature_projection):
            module.requires_grad_(False)
        return model

    training.build_model = frozen


def measure(name: str, ws: Path, model: Path, mode: str, top_layers: int, threads: int,
            score: bool, overrides: list[str]) -> dict:
    command = [sys.executable, __file__, "--child", str(ws), str(model), mode, str(top_layers),
               str(threads), str(int(score)), *overrides]
    run = run_child(name, command, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{name} failed:\n{run.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result.update(process_s=run.seconds, peak_gib=run.peak_rss_mib / 1024)
    steps = result["steps"]
    top = steps[:result.get("top_steps") or len(steps)]  # the finish's full steps apart
    result["step_s"] = (top[-1] - top[0]) / max(1, len(top) - 1)
    result["epoch_s"] = result["step_s"] * result["steps_per_epoch"]
    finish = steps[len(top):]
    result["finish_step_s"] = (finish[-1] - finish[0]) / max(1, len(finish) - 1) \
        if len(finish) > 1 else None
    print(f"  {name}: {json.dumps({k: v for k, v in result.items() if k != 'steps'})}",
          flush=True)
    return result


def speed(args) -> str:
    ws, model = demo_workspace(), random_model_dir(args.arch)
    batch = [f"data.max_batch_seconds={args.batch_seconds}", "model.layerdrop=0.0"]
    epochs_steps = None
    top = measure("top", ws, model, "top", args.top_layers, args.threads, False,
                  [*batch, f"optim.epochs={args.epochs}", "optim.min_steps=1",
                   f"run.eval_every={10**6}", f"model.finish_epochs={args.finish_epochs}"])
    epochs_steps = top["result"]["steps"] - top["finish_steps"]
    full = measure("full", ws, model, "full", 0, args.threads, False,
                   [*batch, f"optim.max_steps={args.full_steps}",
                    f"run.eval_every={args.full_steps}"])
    cache = top["cache"]
    lines = [f"`python bench/laptop_mode.py --speed --arch {args.arch} --epochs {args.epochs} "
             f"--top-layers {args.top_layers} --threads {args.threads} --batch-seconds "
             f"{args.batch_seconds} --full-steps {args.full_steps}"
             f"{f' --finish-epochs {args.finish_epochs}' if args.finish_epochs else ''}` "
             f"({machine_line()})", "",
             "| run | cache s | s / step | s / epoch | steps | whole run s | peak RSS GiB |",
             "|---|---|---|---|---|---|---|",
             f"| top ({top['cache']['top_layers']} layers, {args.epochs} epochs"
             f"{finish_text(top, args.finish_epochs)}) | "
             f"{cache['seconds']:.0f} | {top['step_s']:.2f} | {top['epoch_s']:.0f} | "
             f"{top['result']['steps']} | {top['process_s']:.0f} | {top['peak_gib']:.2f} |",
             f"| full fine-tune ({args.full_steps} steps measured) | - | {full['step_s']:.2f} | "
             f"{full['epoch_s']:.0f} | {epochs_steps} (projected) | "
             f"{full['step_s'] * epochs_steps:.0f} (projected) | {full['peak_gib']:.2f} |", "",
             f"Target: top mode whole run <= 1800 s and peak RSS <= 8 GiB: "
             f"{top['process_s']:.0f} s, {top['peak_gib']:.2f} GiB; step time top / full: "
             f"{top['step_s'] / full['step_s']:.2f}."]
    return "\n".join(lines)


def finish_text(row: dict, epochs: float) -> str:
    """``, then N full epochs (S steps, X s a step)`` for a run with laptop mode's finish."""
    if not row.get("finish_steps"):
        return ""
    step = row.get("finish_step_s")
    return (f", then {epochs:g} full epochs: {row['finish_steps']} steps"
            + (f" at {step:.2f} s" if step else "") + ", from "
            f"{row['finish_from_s']:.0f} s")


def corpus_workspace(corpus: str) -> Path:
    """``demo``: the bundled corpus; ``LANG-words`` (``mi-words``): about 10 minutes of
    sentences of real words in another language, built once (``bench/finetune_curve.py``)."""
    if corpus == "demo":
        return demo_workspace()
    from bench.finetune_curve import build_workspace
    from bench.train_memory import CACHE

    root = CACHE / f"laptop-{corpus}"
    if not (root / "ws" / "vocab.json").is_file():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        build_workspace(root, corpus, 10.0, seed=0)
    return root / "ws"


def quality(args) -> str:
    ws = corpus_workspace(args.corpus)
    steps = [f"optim.max_steps={args.max_steps}"] if args.max_steps else []
    rows = {"full": measure("full", ws, Path("demo-base"), "full", 0, args.threads, True,
                            [*steps, *args.full_set])}
    if args.frozen_input:
        rows["full, input frozen"] = measure("full, input frozen", ws, Path("demo-base"),
                                             "full", 0, args.threads, True,
                                             [*steps, *args.full_set, FROZEN_INPUT])
    for layers in args.layers:
        rows[f"top {layers}"] = measure(f"top {layers}", ws, Path("demo-base"), "top",
                                        layers, args.threads, True, [*steps, *args.top_set])
    full = rows["full"]
    budget = f"--max-steps {args.max_steps}" if args.max_steps else "the preset's steps"
    sets = "".join(f" --top-set {x}" for x in args.top_set)
    sets += "".join(f" --full-set {x}" for x in args.full_set)
    lines = [f"`python bench/laptop_mode.py --quality --corpus {args.corpus} --layers "
             f"{','.join(map(str, args.layers))} --threads {args.threads}"
             f"{f' --max-steps {args.max_steps}' if args.max_steps else ''}{sets}"
             f"{' --frozen-input' if args.frozen_input else ''}` "
             f"({budget}; {machine_line()})", "",
             "| run | steps | epochs | cache s | test CER | CER / full | wall s | time / full |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        finish = r.get("finish_steps", 0)
        epochs = f"{(r['result']['steps'] - finish) / r['steps_per_epoch']:.1f}" + (
            f" + {finish / r['steps_per_epoch']:.1f} full" if finish else "")
        cache = r.get("cache", {}).get("seconds")
        lines.append(f"| {name} | {r['result']['steps']} | {epochs} | "
                     f"{'-' if cache is None else f'{cache:.0f}'} | {r['test_cer']:.4f} | "
                     f"{r['test_cer'] / full['test_cer']:.2f} | {r['process_s']:.0f} | "
                     f"{r['process_s'] / full['process_s']:.2f} |")
    lines += ["", "Where this favours laptop mode: the full row trains the whole preset (30 epochs "
              "for demo-base), longer than demo-base needs (at 10 epochs its test CER was as "
              "good, bench/RESULTS.md issue 15, session 8); time is the whole process, model "
              "loading included on both sides."]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        ws, model, mode, top_layers, threads, score, *overrides = sys.argv[2:]
        child(ws, model, mode, int(top_layers), int(threads), score == "1", overrides)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--arch", choices=tuple(ARCHS), default="xls-r-300m")
    parser.add_argument("--epochs", type=float, default=20.0)
    parser.add_argument("--top-layers", type=int, default=0, help="0: the default")
    parser.add_argument("--batch-seconds", type=float, default=80.0)
    parser.add_argument("--full-steps", type=int, default=2)
    parser.add_argument("--finish-epochs", type=float, default=0.0,
                        help="--speed: laptop mode's finish (model.finish_epochs) after the top")
    parser.add_argument("--layers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2, 4, 6])
    parser.add_argument("--max-steps", type=int, default=0)
    parser.add_argument("--corpus", default="demo",
                        help="demo (the bundled corpus) or LANG-words (mi-words: real words)")
    parser.add_argument("--top-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting for the top-mode rows (repeatable)")
    parser.add_argument("--full-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training setting for the full fine-tune row (repeatable)")
    parser.add_argument("--frozen-input", action="store_true",
                        help="also a full fine-tune with the positional convolution and the "
                             "feature projection frozen (what every laptop-mode cut freezes)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--results", type=Path, help="append the tables to this markdown file")
    args = parser.parse_args()
    parts = []
    if args.speed:
        parts.append("### Speed, XLS-R-300M architecture (random weights)\n\n" + speed(args))
    if args.quality:
        parts.append("### Quality, demo-base\n\n" + quality(args))
    if not parts:
        parser.error("give --speed, --quality or both")
    text = "\n\n".join(parts)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as out:
            out.write("\n## Laptop mode (model.mode=top)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
