"""Pseudo-labels: ``workbench pseudolabel -w WS --run RUN [--lm NAME]``.

The run's model transcribes every untranscribed piece (``WS/untranscribed/``, from
``prepare --untranscribed``). Each transcript's confidence is the geometric mean probability
of the greedy path's letters (the frames where it writes one, not blank), from the acoustic
model alone even when an LM writes the text. The threshold is chosen on dev: the dev
utterances at or above it together have at most half the dev set's CER (``DEV_CER_SHARE``),
keeping as many as that allows (where no level does, the one with the lowest CER, said so).
Pieces at or above it are written as a separate, marked
source, ``WS/pseudolabels/NAME/manifest.jsonl`` (atomically, with ``info.json``: run, LM,
threshold, what dev says of it), which ``workbench train data.pseudolabels=NAME`` adds to the
training split with loss weight ``data.pseudo_weight``. Dev and test are only read. Each
round is an explicit run, evaluated on the same dev and test as any other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from workbench.errors import WorkbenchError
from workbench.fsio import staged_dir, write_json_atomic
from workbench.manifest import Utterance, read_manifest, write_manifest
from workbench.workspace import Workspace

DEV_CER_SHARE = 0.5  # kept dev utterances may have at most this share of the dev CER
MIN_DEV_SHARE = 0.1  # the threshold keeps at least this share of dev ...
MIN_DEV_COUNT = 5  # ... and at least this many utterances (a few are noise)
FOLDER = "pseudolabels"
BATCH = 64  # pieces transcribed per progress step


@dataclass(frozen=True)
class Threshold:
    """The confidence threshold and what it does on dev."""

    value: float
    dev_cer: float | None  # every dev utterance (None: the threshold was given)
    dev_cer_kept: float | None  # those at or above the threshold
    dev_kept: int
    dev_total: int
    met: bool = True  # the kept dev utterances reach the CER aimed at


@dataclass
class PseudoLabels:
    """A pseudo-label set: where it is, what it holds, how it was chosen."""

    name: str
    folder: Path
    run: str
    lm: str
    threshold: Threshold
    kept: int
    total: int
    kept_seconds: float
    total_seconds: float

    def summary(self) -> dict:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data


def pseudolabel_dir(ws: Workspace, name: str = "") -> Path:
    return ws.root / FOLDER / name if name else ws.root / FOLDER


def read_pseudolabels(ws: Workspace, name: str) -> list[Utterance]:
    """The utterances of pseudo-label set ``name``.

    Raises:
        WorkbenchError: there is no such set (the sets there are named).
    """
    path = pseudolabel_dir(ws, name) / "manifest.jsonl"
    if not name or not path.is_file():
        there = sorted(p.parent.name for p in pseudolabel_dir(ws).glob("*/manifest.jsonl")) \
            if pseudolabel_dir(ws).is_dir() else []
        raise WorkbenchError(f"No pseudo-label set {name!r} in {ws.root}; "
                             + (f"there are: {', '.join(there)}." if there else
                                "make one with `workbench pseudolabel -w WS --run RUN`."))
    return read_manifest(path)


def path_confidence(logits: np.ndarray, blank: int) -> float:
    """Geometric mean probability of the greedy path's non-blank frames (0 when it writes
    nothing)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.size == 0:
        return 0.0
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    best = log_probs.argmax(axis=-1)
    letters = best != blank
    if not letters.any():
        return 0.0
    return float(np.exp(log_probs[letters, best[letters]].mean()))


def transcribe_with_confidence(recognizer, paths: list[Path], *, progress: bool = False
                               ) -> list[tuple[str, float]]:
    """Text (greedy, or the recognizer's LM) and :func:`path_confidence` of each clip."""
    from workbench.decode import decode_utterance
    from workbench.recognizer import clip_logits

    blank = int(recognizer.config.pad_token_id)
    out: list[tuple[str, float]] = []
    for start in tqdm(range(0, len(paths), BATCH), desc="Pseudo-labelling", unit="batch",
                      disable=not progress):
        arrays = [sf.read(p, dtype="float32")[0] for p in paths[start:start + BATCH]]
        for logits in clip_logits(recognizer, arrays):
            text = decode_utterance(logits, recognizer.tokenizer, recognizer.lm)
            out.append((text, path_confidence(logits, blank)))
    return out


def choose_threshold(confidences: list[float], errors: list[int], lengths: list[int],
                     share: float = DEV_CER_SHARE) -> Threshold:
    """The lowest confidence whose dev utterances at or above it have a CER of at most
    ``share`` times the whole dev set's (most confident first). Where no such level keeps at
    least a tenth of dev, the level with the lowest CER among those that do (``met`` False)."""
    if not confidences:
        raise WorkbenchError("The dev split is empty: a threshold is chosen on dev. Prepare "
                             "data with a dev split, or give --threshold.")
    overall = sum(errors) / max(1, sum(lengths))
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    least = min(len(order), max(MIN_DEV_COUNT, math.ceil(len(order) * MIN_DEV_SHARE)))
    rates, running_e, running_n = [], 0, 0
    for i in order:
        running_e, running_n = running_e + errors[i], running_n + lengths[i]
        rates.append(running_e / max(1, running_n))
    meeting = [k for k in range(least, len(order) + 1) if rates[k - 1] <= share * overall]
    best = meeting[-1] if meeting else min(range(least, len(order) + 1),
                                           key=lambda k: (rates[k - 1], -k))
    return Threshold(value=confidences[order[best - 1]], dev_cer=overall,
                     dev_cer_kept=rates[best - 1], dev_kept=best, dev_total=len(order),
                     met=bool(meeting))


def dev_threshold(recognizer, ws: Workspace, share: float = DEV_CER_SHARE) -> Threshold:
    """:func:`choose_threshold` from the run's transcripts of the audited dev split."""
    from workbench.evaluate import per_utterance, scoring_set
    from workbench.text import load_profile, normalize

    dev = scoring_set(ws, "dev", required=True)
    profile = load_profile(ws.profile_path)
    found = transcribe_with_confidence(recognizer, [ws.audio_path(u) for u in dev.utterances])
    scores = per_utterance([normalize(u.text, profile) for u in dev.utterances],
                           [t for t, _ in found],
                           [u.id for u in dev.utterances], [u.audio for u in dev.utterances])
    scores = sorted(scores, key=lambda score: score.index)  # per_utterance sorts worst first
    return choose_threshold([c for _, c in found], [s.chars.errors for s in scores],
                            [s.chars.reference for s in scores], share)


def pseudolabel(ws: Workspace, run: str | None = None, *, lm: str | None = None,
                threshold: float | None = None, name: str | None = None,
                progress: bool = False) -> PseudoLabels:
    """Transcribe the untranscribed pieces with ``run`` and keep the confident ones.

    Raises:
        WorkbenchError: no untranscribed audio, no such run or LM, or no dev split to choose
            the threshold on (give ``threshold``).
    """
    from data_recipes.untranscribed import read_untranscribed
    from workbench.evaluate import attach_lm, resolve_run
    from workbench.run import Run
    from workbench.transcribe import load_recognizer

    pieces = read_untranscribed(ws)
    if not pieces:
        raise WorkbenchError(f"No untranscribed audio in {ws.root}; add recordings with "
                             "`workbench prepare --untranscribed AUDIO... -w WS`.")
    run_dir = resolve_run(ws, run)
    recognizer = load_recognizer(Run(run_dir).model_dir)
    lm_name = ""
    if lm:
        recognizer, _ = attach_lm(recognizer, ws, lm)
        lm_name = str(lm)
    chosen = dev_threshold(recognizer, ws) if threshold is None else Threshold(
        threshold, None, None, 0, 0)
    found = transcribe_with_confidence(recognizer, [ws.root / p.audio for p in pieces],
                                       progress=progress)
    kept = [_labelled(piece, text, confidence, run_dir.name)
            for piece, (text, confidence) in zip(pieces, found, strict=True)
            if confidence >= chosen.value and text.strip()]
    name = name or f"{run_dir.name}{'-' + Path(lm_name).name if lm_name else ''}"
    result = PseudoLabels(name=name, folder=pseudolabel_dir(ws, name), run=run_dir.name,
                          lm=lm_name, threshold=chosen, kept=len(kept), total=len(pieces),
                          kept_seconds=round(sum(u.duration for u in kept), 2),
                          total_seconds=round(sum(u.duration for u in pieces), 2))
    with staged_dir(result.folder, what="writing pseudo-labels",
                    fault="pseudolabels") as staging:
        write_manifest(staging / "manifest.jsonl", kept)
        write_json_atomic(staging / "info.json", result.summary())
    return result


def _labelled(piece: Utterance, text: str, confidence: float, run: str) -> Utterance:
    from dataclasses import replace

    return replace(piece, text=text,
                   source=f"pseudo-label by {run} (confidence {confidence:.3f}) of "
                          f"{piece.source}")
