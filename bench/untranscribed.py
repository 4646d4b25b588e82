"""Does untranscribed audio help? The demo language's 10-minute fine-tune without help, after
continued pretraining, after one round of pseudo-labels, and after both.

Data. Transcribed: the bundled Quechua demo corpus (10 min; its voices are espeak-ng variants
demo-base was pretrained on). Untranscribed: ``--untranscribed-minutes`` of Quechua sentences
of real words (another random stream than the corpus) read by espeak-ng voices outside the
demo and outside demo-base's pretraining (``UNTRANSCRIBED_VOICES``), joined into recordings
of about 5 minutes with pauses and imported as any user's would be (``prepare
--untranscribed``: cut at pauses, audited). Test: the demo's own test split, and a held-out
set read by voices in no training set at all (``HELD_OUT_VOICES``), with sentences of their
own (``bench/finetune_curve.py``'s ``new_voice_set``).

Rows, each a fresh ``train()`` of demo-base with the demo-base preset unless said:
- baseline: the 10-minute fine-tune.
- pseudo-labels: ``pseudolabel`` with the baseline run (threshold chosen on dev), then the
  fine-tune with the set at ``--pseudo-weight``, for ``--pseudo-steps`` steps (the preset's
  epochs over 7x the data would be 7x the steps; the step budget is stated in the table).
- pretrain: ``--pretrain-steps`` of continued pretraining of demo-base on the untranscribed
  pieces (demo-base has no pretraining heads: its quantizer and projections start fresh),
  then the 10-minute fine-tune from that base.
- both: the pretrained base fine-tuned with the baseline's pseudo-labels.

Compute is each stage's wall time on this machine, in this process (threads as given).

    python bench/untranscribed.py                         # the full comparison, ~35 min
    python bench/untranscribed.py --untranscribed-minutes 3 --pretrain-steps 5 \\
        --finetune-steps 30 --pseudo-steps 30 --held-out-minutes 0.5       # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bench.finetune_curve import build_workspace, new_voice_set, score_new_voices  # noqa: E402
from bench.procstats import machine_line  # noqa: E402
from data_recipes.synthetic import generate_corpus, lexicon_sentences  # noqa: E402
from data_recipes.untranscribed import import_untranscribed  # noqa: E402
from workbench.config import build_config  # noqa: E402
from workbench.evaluate import evaluate_run  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

UNTRANSCRIBED_VOICES = ("m6", "m8", "f5", "klatt2", "klatt3", "Annie")
HELD_OUT_VOICES = ("benjamin", "linda", "Andy", "klatt5")
RECORDING_S = 300.0  # untranscribed clips are joined into recordings this long
PAUSE_S = 0.7


def untranscribed_recordings(root: Path, minutes: float, seed: int) -> list[Path]:
    """Synthesised Quechua, joined into long recordings with pauses of faint noise."""
    corpus = generate_corpus(root / "untranscribed-clips", language="qu", minutes=minutes,
                             voices=UNTRANSCRIBED_VOICES, seed=seed + 2000, progress=False,
                             sentences=lexicon_sentences("qu", f"{seed}:qu:untranscribed"))
    rng = np.random.default_rng(seed)
    out, parts, length = [], [], 0.0
    clips = sorted((corpus / "clips").glob("*.wav"))
    for i, clip in enumerate(clips):
        samples, rate = sf.read(clip, dtype="float32")
        parts += [samples, (rng.standard_normal(int(PAUSE_S * rate)) * 1e-3).astype("float32")]
        length += len(samples) / rate + PAUSE_S
        if length >= RECORDING_S or i == len(clips) - 1:
            path = root / f"recording-{len(out):02d}.wav"
            sf.write(path, np.concatenate(parts), rate)
            out.append(path)
            parts, length = [], 0.0
    return out


def finetune(ws: Workspace, model: str, steps: int, threads: int, extra: list[str] = ()) -> dict:
    from workbench.train import train

    overrides = [f"model.name={model}", f"run.threads={threads}", *extra]
    if steps:
        overrides.append(f"optim.max_steps={steps}")
    started = time.monotonic()
    result = train(ws, build_config(preset="10min", overrides=overrides), progress=False)
    return {"run": result.run_dir, "seconds": time.monotonic() - started,
            "steps": result.steps}


def scored(ws: Workspace, row: dict, held_out: dict) -> dict:
    test = evaluate_run(ws, row["run"].name, "test", progress=False)
    row["test_cer"] = test.cer
    row["held_out_cer"] = score_new_voices(row["run"], held_out)["cer"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--untranscribed-minutes", type=float, default=60.0)
    parser.add_argument("--held-out-minutes", type=float, default=3.0)
    parser.add_argument("--pretrain-steps", type=int, default=150,
                        help="about 3 epochs of 60 minutes in 80 s batches (5-9 s a step)")
    parser.add_argument("--pretrain-negatives", type=int, default=30,
                        help="distractors per masked frame (the paper: 100; 30 halves the "
                        "step on a CPU)")
    parser.add_argument("--pretrain-lr", type=float, default=1e-4)
    parser.add_argument("--finetune-steps", type=int, default=0, help="0: the preset's")
    parser.add_argument("--pseudo-steps", type=int, default=1380)
    parser.add_argument("--pseudo-weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    args = parser.parse_args()
    from workbench.pretrain import PretrainSettings, pretrain
    from workbench.pseudolabel import pseudolabel

    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="untranscribed-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        stages: dict[str, float] = {}
        t = time.monotonic()
        ws = build_workspace(root / "demo", "qu-demo", 10.0, args.seed)
        held_out = new_voice_set(root, "qu-demo", HELD_OUT_VOICES, args.held_out_minutes,
                                 args.seed, ws)
        recordings = untranscribed_recordings(root, args.untranscribed_minutes, args.seed)
        stages["generate"] = time.monotonic() - t
        t = time.monotonic()
        imported = import_untranscribed(recordings, ws)
        stages["import"] = time.monotonic() - t
        print(f"untranscribed: {len(imported.kept)} pieces, "
              f"{imported.total_seconds / 60:.1f} min; set aside "
              f"{imported.summary()['set_aside_by_check']}", flush=True)
        rows = {"baseline": scored(ws, finetune(ws, "demo-base", args.finetune_steps,
                                                args.threads), held_out)}
        print("baseline", rows["baseline"], flush=True)
        t = time.monotonic()
        labels = pseudolabel(ws, rows["baseline"]["run"].name)
        stages["pseudolabel"] = time.monotonic() - t
        print("pseudo-labels", json.dumps(labels.summary(), default=str), flush=True)
        pseudo = [f"data.pseudolabels={labels.name}", f"data.pseudo_weight={args.pseudo_weight}"]
        rows["pseudo-labels"] = scored(ws, finetune(ws, "demo-base", args.pseudo_steps,
                                                    args.threads, pseudo), held_out)
        print("pseudo-labels", rows["pseudo-labels"], flush=True)
        t = time.monotonic()
        base = pretrain(ws, PretrainSettings(model="demo-base", steps=args.pretrain_steps,
                                             learning_rate=args.pretrain_lr,
                                             num_negatives=args.pretrain_negatives,
                                             threads=args.threads, checkpoint_every=100,
                                             seed=args.seed))
        stages["pretrain"] = time.monotonic() - t
        last = base.last
        print("pretrain", base.to_dict(), flush=True)
        rows["pretrain"] = scored(ws, finetune(ws, str(base.base_dir), args.finetune_steps,
                                               args.threads), held_out)
        print("pretrain", rows["pretrain"], flush=True)
        rows["both"] = scored(ws, finetune(ws, str(base.base_dir), args.pseudo_steps,
                                           args.threads, pseudo), held_out)
        print("both", rows["both"], flush=True)
    print(report(args, rows, stages, labels, imported, last))


def report(args, rows: dict, stages: dict, labels, imported, last: dict) -> str:
    base = rows["baseline"]
    t = labels.threshold
    lines = [f"`python bench/untranscribed.py --untranscribed-minutes "
             f"{args.untranscribed_minutes:g} --pretrain-steps {args.pretrain_steps} "
             f"--pretrain-negatives {args.pretrain_negatives} --pretrain-lr {args.pretrain_lr:g} "
             f"--pseudo-steps {args.pseudo_steps} --pseudo-weight {args.pseudo_weight:g} "
             f"--threads {args.threads}` ({machine_line()})", "",
             f"Untranscribed: {len(imported.kept)} pieces, {imported.total_seconds / 60:.1f} "
             f"min (set aside: {imported.summary()['set_aside_by_check'] or 'none'}). "
             f"Pseudo-labels: {labels.kept} of {labels.total} pieces "
             f"({labels.kept_seconds / 60:.1f} min) at confidence >= {t.value:.3f} (dev: "
             f"{t.dev_kept} of {t.dev_total} kept, CER {t.dev_cer_kept:.3f} vs "
             f"{t.dev_cer:.3f}). Pretraining ended at perplexity {last.get('perplexity')} "
             f"of 640, {last.get('codebook_used', 0):.0%} of code vectors used, contrastive "
             f"loss {last.get('contrastive')}.", "",
             "| run | fine-tune steps | demo test CER | held-out voices CER | vs baseline | "
             "fine-tune s |", "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        change = row["held_out_cer"] / base["held_out_cer"] - 1
        lines.append(f"| {name} | {row['steps']} | {row['test_cer']:.4f} | "
                     f"{row['held_out_cer']:.4f} | {change:+.0%} | {row['seconds']:.0f} |")
    lines += ["", "Compute of the other stages: " + ", ".join(
        f"{k} {v:.0f} s" for k, v in stages.items()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
