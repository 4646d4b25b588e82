"""Choosing the LM weight (alpha) and word bonus (beta) on the dev split, never on test.

The dev clips go through the acoustic model once; every (alpha, beta) of the grid is then a
beam search over the same log-probabilities. The best setting (lowest dev WER, then CER; for
character LMs of scripts without spaces, CER first) is stored in the LM's ``lm.json``, and
the report sets greedy against LM decoding on dev and on test.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workbench.audio import load_audio
from workbench.decode import greedy_decode, log_softmax
from workbench.evaluate import error_rates, evaluate_run, scoring_set
from workbench.lm.beam import BeamSettings
from workbench.lm.store import find_lm, load_decoder, read_info, store_tuned
from workbench.run import find_run
from workbench.text import load_profile, normalize
from workbench.workspace import Workspace

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
BETAS = (-1.0, 0.0, 1.0, 2.0, 3.0)


def tune_lm(ws: Workspace, lm: str, *, run: str | None = None, beam: int = 50,
            alphas: tuple[float, ...] = ALPHAS, betas: tuple[float, ...] = BETAS,
            progress: bool = True) -> dict[str, Any]:
    """Grid-search alpha and beta on dev; store the best with the LM; score dev and test."""
    from tqdm.auto import tqdm

    from workbench.recognizer import clip_logits, load_recognizer

    folder = find_lm(ws, lm)
    found = find_run(ws, run, with_model=True)
    recognizer = load_recognizer(found.model_dir)
    decoder = load_decoder(folder, recognizer.tokenizer, BeamSettings(beam=beam))
    dev = scoring_set(ws, "dev")
    profile = load_profile(ws.profile_path)
    refs = [normalize(u.text, profile) for u in dev.utterances]
    arrays = [load_audio(ws.audio_path(u)) for u in dev.utterances]
    logits = clip_logits(recognizer, arrays)
    log_probs = [log_softmax(x) for x in logits]
    greedy = error_rates(refs, [greedy_decode(x, recognizer.tokenizer)[0] for x in logits])
    started = time.perf_counter()
    grid = []
    for alpha in tqdm(alphas, desc="Tuning alpha, beta on dev", disable=not progress):
        for beta in betas:
            trial = decoder.with_settings(BeamSettings(alpha=alpha, beta=beta, beam=beam))
            rates = error_rates(refs, [trial.decode(x) for x in log_probs])
            grid.append({"alpha": alpha, "beta": beta, "wer": rates["wer"], "cer": rates["cer"]})
    seconds = time.perf_counter() - started
    best, ties = _best(grid, _objective(greedy))
    settings = BeamSettings(alpha=best["alpha"], beta=best["beta"], beam=beam)
    test_greedy = evaluate_run(ws, found.name, "test", progress=False)
    test_lm = evaluate_run(ws, found.name, "test", progress=False, lm=folder, beam=settings)
    tuned = {
        "settings": settings.to_dict(), "run": found.name, "tuned_on": "dev",
        "dev": {"greedy": _pair(greedy), "lm": {"wer": best["wer"], "cer": best["cer"]},
                "utterances": len(refs)},
        "test": {"greedy": {"wer": test_greedy.wer, "cer": test_greedy.cer},
                 "lm": {"wer": test_lm.wer, "cer": test_lm.cer}},
        "grid": grid, "tied_settings": ties, "search_seconds": round(seconds, 2),
        "decode_seconds_per_dev_pass": round(seconds / len(grid), 3),
    }
    store_tuned(folder, tuned)
    return {"lm": folder.name, "unit": read_info(folder)["unit"], **tuned}


def _best(grid: list[dict[str, float]], key) -> tuple[dict[str, float], int]:
    """The best setting on dev and how many settings share its score.

    A small dev set often scores many settings alike; among those the one nearest the middle
    of the tied region is kept (a setting inside a plateau is safer on new speech than one at
    its edge, where the next step is already worse).
    """
    top = key(min(grid, key=key))
    tied = [g for g in grid if key(g) == top]
    alpha = float(np.median([g["alpha"] for g in tied]))
    beta = float(np.median([g["beta"] for g in tied]))
    return min(tied, key=lambda g: (abs(g["alpha"] - alpha) + abs(g["beta"] - beta))), len(tied)


def _objective(greedy: dict[str, Any]):
    if not greedy.get("wer_meaningful", True):
        return lambda g: (g["cer"], g["wer"])
    return lambda g: (g["wer"], g["cer"])


def _pair(rates: dict[str, Any]) -> dict[str, float]:
    return {"wer": float(rates["wer"]), "cer": float(rates["cer"])}


def _ties_note(result: dict[str, Any]) -> list[str]:
    ties, total = result.get("tied_settings", 1), len(result["grid"])
    if ties <= 1:
        return []
    return [f"  {ties} of {total} settings score the same on dev "
            f"({result['dev']['utterances']} utterances): the middle one is kept; "
            "a larger dev split would choose more surely."]


def format_tuning(result: dict[str, Any]) -> str:
    s, dev, test = result["settings"], result["dev"], result["test"]
    lines = [f"LM {result['lm']} ({result['unit']}) tuned on dev with run {result['run']}: "
             f"alpha {s['alpha']:g}, beta {s['beta']:g}, beam {s['beam']} "
             f"({len(result['grid'])} settings, {result['search_seconds']:.1f} s)",
             *_ties_note(result),
             f"  {'':6s} {'greedy WER':>11s} {'LM WER':>8s} {'greedy CER':>11s} {'LM CER':>8s}"]
    for name, part in (("dev", dev), ("test", test)):
        g, m = part["greedy"], part["lm"]
        lines.append(f"  {name:6s} {100 * g['wer']:10.1f}% {100 * m['wer']:7.1f}% "
                     f"{100 * g['cer']:10.1f}% {100 * m['cer']:7.1f}%")
    g, m = dev["greedy"], dev["lm"]
    if (m["wer"], m["cer"]) >= (g["wer"], g["cer"]):
        advice = "give more text, or --unit char" if result["unit"] == "word" else \
            "give more text"
        lines.append("  On dev no setting beats greedy decoding: keep decoding greedily "
                     f"(evaluate and transcribe without --lm), or {advice}.")
    return "\n".join(lines)
