"""The main job, offline: the bundled Quechua demo corpus through the whole flow.

unpack -> prepare -> audit -> vocab -> train (the offline model) -> evaluate -> WER/CER,
then a word language model from the bundled community text, tuned on dev, and the test
scores of greedy and LM decoding side by side.
"""

from __future__ import annotations

from pathlib import Path

from workbench.workspace import Workspace

# The bundled base trained on synthetic speech in 23 other languages; the 10min preset with
# its settings (config.SMALL_PRETRAINED) fine-tunes it in about 3 minutes on 2 CPU cores.
DEMO_MODEL = "demo-base"
DEMO_OVERRIDES = ["run.eval_every=100"]
DEMO_LM = "community"


def run_demo(workspace: Path, *, max_steps: int = 0, max_minutes: float = 0.0,
             progress: bool = True) -> dict:
    """Build the demo workspace from the bundled corpus, train briefly, evaluate.

    Returns:
        A summary with the scores, the run directory and a readable ``text``.
    """
    from data_recipes.synthetic import DEMO_ARCHIVE, DEMO_NAME, unpack_corpus
    from data_recipes.table import prepare_audiofolder
    from workbench.audit import run_audit
    from workbench.config import build_config
    from workbench.evaluate import evaluate_run
    from workbench.train import train
    from workbench.vocab import build_workspace_vocab

    ws = Workspace.at(workspace)
    source = ws.root / "source" / DEMO_NAME
    if not (source / "metadata.csv").is_file():
        unpack_corpus(DEMO_ARCHIVE, ws.root / "source")
    imported = prepare_audiofolder(source, ws, progress=progress)
    audit = run_audit(ws)
    build_workspace_vocab(ws)
    overrides = [f"model.name={DEMO_MODEL}", *DEMO_OVERRIDES]
    if max_steps:
        overrides.append(f"optim.max_steps={max_steps}")
    config = build_config(preset="10min", overrides=overrides)
    result = train(ws, config, max_minutes=max_minutes, progress=progress)
    report = evaluate_run(ws, result.run_dir.name, "test", progress=progress)
    scores = report.to_dict()
    summary = {
        "workspace": str(ws.root), "run_dir": str(result.run_dir),
        "imported": imported.summary()["utterances"],
        "excluded_by_audit": len(audit.excluded_ids()),
        "train": result.to_dict(), "test_wer": scores.get("wer"), "test_cer": scores.get("cer"),
    }
    summary["lm"] = _demo_lm(ws, result.run_dir.name, progress)
    summary["text"] = _summary_text(summary, result)
    return summary


def _demo_lm(ws: Workspace, run: str, progress: bool) -> dict:
    """Build a word 3-gram from the community text, tune it on dev, score test both ways.

    Without the LM decoder (flashlight-text has no wheel for this Python) the demo still
    ends with its greedy scores and says why the LM step was left out.
    """
    from data_recipes.synthetic import DEMO_TEXT
    from workbench.errors import WorkbenchError
    from workbench.lm.beam import require_decoder
    from workbench.lm.store import build_lm
    from workbench.lm.tune import format_tuning, tune_lm

    try:
        require_decoder()
    except WorkbenchError as err:
        return {"skipped": str(err)}
    built = build_lm(ws, [DEMO_TEXT], name=DEMO_LM)
    tuned = tune_lm(ws, DEMO_LM, run=run, progress=progress)
    return {"folder": str(built.folder), "oov_rate_dev": built.info["dev"].get("oov_rate"),
            "settings": tuned["settings"], "dev": tuned["dev"], "test": tuned["test"],
            "text": format_tuning(tuned)}


def _summary_text(summary: dict, result) -> str:
    lm = summary["lm"]
    lines = [f"Demo workspace: {summary['workspace']}", f"Run: {result.run_dir}",
             f"Test WER {summary['test_wer']:.3f}  CER {summary['test_cer']:.3f} "
             f"after {result.steps} steps ({result.elapsed_s / 60:.1f} min of training)."]
    if "skipped" in lm:
        lines.append(f"Language model left out: {lm['skipped']}")
    else:
        greedy, with_lm = lm["test"]["greedy"], lm["test"]["lm"]
        lines += [
            f"Word LM from the community text ({DEMO_LM}), tuned on dev:",
            f"  test, greedy:  WER {greedy['wer']:.3f}  CER {greedy['cer']:.3f}",
            f"  test, with LM: WER {with_lm['wer']:.3f}  CER {with_lm['cer']:.3f}",
            lm["text"],
        ]
    lm_option = "" if "skipped" in lm else f" --lm {DEMO_LM}"
    lines.append("Transcribe your own recording: workbench transcribe FILE --model "
                 f"{result.run_dir}{lm_option} -w {summary['workspace']}")
    return "\n".join(lines)
