"""The main job, offline: the bundled Quechua demo corpus through the whole flow.

unpack -> prepare -> audit -> vocab -> train (the offline model) -> evaluate -> WER/CER.
"""

from __future__ import annotations

from pathlib import Path

from workbench.workspace import Workspace

# The bundled base trained on synthetic speech in 23 other languages; the 10min preset with
# its settings (config.SMALL_PRETRAINED) fine-tunes it in about 3 minutes on 2 CPU cores.
DEMO_MODEL = "demo-base"
DEMO_OVERRIDES = ["run.eval_every=100"]


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
    summary["text"] = (
        f"Demo workspace: {ws.root}\nRun: {result.run_dir}\n"
        f"Test WER {summary['test_wer']:.3f}  CER {summary['test_cer']:.3f} "
        f"after {result.steps} steps ({result.elapsed_s / 60:.1f} min of training).\n"
        f"Transcribe your own recording: workbench transcribe FILE --model {result.run_dir}"
    )
    return summary
