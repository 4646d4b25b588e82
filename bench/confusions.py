"""Where a fine-tuned model's character errors come from, on a generated unseen language.

Builds the same workspace as ``finetune_curve.py`` (espeak-ng corpus, seed 0, speaker-disjoint
split), fine-tunes one base with the 10min preset, scores the test split and counts the
character edits by pair (``'a'->'ā'``, ``' '->'∅'`` for a lost word boundary), so that a CER
can be read as "which distinctions the model misses" rather than a single number.

    python bench/confusions.py --language mi
    python bench/confusions.py --language gn --model /path/to/base \\
        --set data.max_batch_seconds=20 optim.learning_rate=1e-3 optim.epochs=30 \\
        optim.min_steps=200 model.layerdrop=0.0 model.mask_time_prob=0.05
A base given by path gets none of demo-base's own settings (``config.SMALL_PRETRAINED``):
pass them with ``--set`` to compare like with like.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jiwer  # noqa: E402
from finetune_curve import build_workspace  # noqa: E402

from workbench.config import build_config  # noqa: E402
from workbench.evaluate import evaluate_run  # noqa: E402
from workbench.train import train  # noqa: E402

GAP = "∅"


def edit_pairs(reference: str, hypothesis: str) -> collections.Counter:
    """Character edits of one utterance as (reference char, hypothesis char) pairs."""
    pairs: collections.Counter = collections.Counter()
    for chunk in jiwer.process_characters(reference, hypothesis).alignments[0]:
        ref = reference[chunk.ref_start_idx:chunk.ref_end_idx]
        hyp = hypothesis[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type == "substitute":
            pairs.update(zip(ref, hyp, strict=True))
        elif chunk.type == "delete":
            pairs.update((char, GAP) for char in ref)
        elif chunk.type == "insert":
            pairs.update((GAP, char) for char in hyp)
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", default="mi")
    parser.add_argument("--model", default="demo-base")
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value settings")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = build_workspace(Path(tmp), args.language, 10.0, 0)
        config = build_config(preset="10min", overrides=[f"model.name={args.model}",
                                                         "run.eval_every=100", *args.set])
        result = train(ws, config, max_minutes=10, progress=False)
        report = evaluate_run(ws, result.run_dir.name, "test", progress=False)
    pairs: collections.Counter = collections.Counter()
    for utterance in report.utterances:
        pairs += edit_pairs(utterance.reference, utterance.hypothesis)
    chars = sum(len(u.reference) for u in report.utterances)
    print(f"{args.language}, {args.model}: {result.steps} steps in {result.elapsed_s / 60:.1f} "
          f"min, test CER {report.cer:.3f}, WER {report.wer:.3f} ({chars} reference chars)")
    boundary = pairs[(" ", GAP)] + pairs[(GAP, " ")]
    print(f"word boundaries lost or added: {boundary} edits, {boundary / chars:.3f} of CER")
    for (ref, hyp), count in pairs.most_common(args.top):
        print(f"  {ref!r} -> {hyp!r}: {count} ({count / chars:.3f})")


if __name__ == "__main__":
    main()
