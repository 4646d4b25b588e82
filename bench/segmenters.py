"""Where to cut a long recording: the model's own blank frames, an energy detector, Silero VAD.

Builds the long recording of ``bench/long_audio.py`` (the demo run's test clips, trimmed to
their speech, pauses of 0.3-2 s of digital silence between them; truth = where each clip's
speech was put), and the same recording with noise mixed in at a known SNR (the speech's mean
power over its true spans against the noise's): pink and brown noise, babble (six
training-split clips, other voices than the test ones, looped at random offsets and summed),
pink noise that starts halfway through (``pink10h``: a fan or a generator switched on), and
music (plucked notes, no voice: ``music20``, ``music10``).
Then each segmenter cuts each version into utterances by the same grouping rules
(``workbench.segments.segment_words``: pauses of 0.3 s, 1-20 s, 0.1 s margins):

- ``ctc``: the model's blank frames, one recognition pass that also gives the text
  (``workbench.segments.segment_file``, what ``workbench transcribe --output`` runs);
- ``energy``: frame RMS against the recording's floor and peak (``workbench.vad``);
- ``silero``: Silero VAD's speech probability (``workbench.vad``, ONNX model from the wheel).

The detectors give no text, so their segments are then recognised in a second pass over
the speech they kept (``workbench.vad.recognise_segments``, a forward pass per segment); its
cost is counted in their time. Each (recording, segmenter) runs as its own child process,
model loading included, so the figures are whole-process (wall, CPU, peak RSS, from outside)
beside the in-process seconds of cutting and recognising. Scored: start and end errors of
each true utterance against the segment overlapping it most (median, 90th percentile; every
segmenter adds the same 0.1 s margin, so a perfect cut scores 0.100 s), utterances missed or
merged, segments on no speech at all ("spurious"), and CER/WER of all segment texts joined
against all true texts joined (greedy decoding).

    python bench/segmenters.py --model RUN_DIR [--repeat 3] [--seed 0]
        [--conditions clean,pink20,pink10,brown10,babble20,babble10,pink10h,music20,music10]
        [--segmenters ctc,energy,silero] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.long_audio import build_recording, compare  # noqa: E402
from bench.procstats import run_child  # noqa: E402
from workbench.audio import SAMPLE_RATE, load_audio  # noqa: E402

SEGMENTERS = ("ctc", "energy", "silero")
CONDITIONS = ("clean", "pink20", "pink10", "brown10", "babble20", "babble10", "pink10h",
              "music20", "music10")
BABBLE_VOICES = 6


# --------------------------------------------------------------------------------------------
# Noise


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown), zero below 20 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    gain = np.zeros_like(freqs)
    audible = freqs >= 20.0
    gain[audible] = freqs[audible] ** (-exponent / 2)
    noise = np.fft.irfft(spectrum * gain, n)
    return (noise / np.sqrt(np.mean(noise ** 2))).astype(np.float32)


def babble(n: int, clips: list[Path], rng: np.random.Generator) -> np.ndarray:
    """Several voices at once: clips looped end to end from random offsets, each at the same
    RMS, summed."""
    total = np.zeros(n, np.float64)
    for clip in rng.choice(clips, size=min(BABBLE_VOICES, len(clips)), replace=False):
        order = rng.permutation(clips)
        voice = np.concatenate([load_audio(c) for c in [clip, *order]])
        voice = np.tile(voice, n // len(voice) + 2)
        start = int(rng.integers(0, len(voice) - n))
        part = voice[start:start + n].astype(np.float64)
        total += part / np.sqrt(np.mean(part ** 2) + 1e-12)
    return (total / np.sqrt(np.mean(total ** 2))).astype(np.float32)


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Plucked notes, about four a second, from a pentatonic scale over three octaves, each a
    harmonic tone dying away (no voice in it, but as loud and as uneven as one)."""
    out = np.zeros(n + SAMPLE_RATE, np.float64)
    length = SAMPLE_RATE  # one second of each note: it has died away by then
    t = np.arange(length) / SAMPLE_RATE
    scale = [0, 2, 4, 7, 9]
    at = 0
    while at < n:
        midi = 48 + 12 * int(rng.integers(0, 3)) + scale[int(rng.integers(0, 5))]
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        harmonics = [k for k in range(1, 9) if k * f0 < SAMPLE_RATE / 2]
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in harmonics)
        out[at:at + length] += rng.uniform(0.5, 1.0) * tone * np.exp(-t / 0.25)
        at += int(rng.uniform(0.15, 0.35) * SAMPLE_RATE)
    out = out[:n]
    return (out / np.sqrt(np.mean(out ** 2))).astype(np.float32)


def noisy(clean: np.ndarray, truth: list[tuple], condition: str, others: list[Path],
          seed: int) -> np.ndarray:
    """``clean`` with the condition's noise at its SNR (speech power over the true spans);
    a name ending in ``h`` ("pink10h") has the noise in the second half only."""
    if condition == "clean":
        return clean
    match = re.fullmatch(r"([a-z]+)(\d+)(h?)", condition)
    if not match or match[1] not in ("pink", "brown", "babble", "music"):
        raise SystemExit(f"unknown condition {condition!r}: one of {', '.join(CONDITIONS)}")
    kind, snr_db, half = match[1], float(match[2]), bool(match[3])
    rng = np.random.default_rng(seed + 1000)
    n = len(clean)
    if kind == "babble":
        noise = babble(n, others, rng)
    elif kind == "music":
        noise = music(n, rng)
    else:
        noise = coloured_noise(n, 1.0 if kind == "pink" else 2.0, rng)
    speech = np.concatenate([clean[int(s * SAMPLE_RATE):int(e * SAMPLE_RATE)]
                             for s, e, _ in truth])
    speech_power = float(np.mean(speech.astype(np.float64) ** 2))
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10))
    if half:
        noise[:n // 2] = 0
    mixed = clean + noise
    peak = float(np.abs(mixed).max())
    return (mixed * (0.95 / peak) if peak > 0.95 else mixed).astype(np.float32)


# --------------------------------------------------------------------------------------------
# One segmenter on one recording (a child process)


def child(args: argparse.Namespace) -> None:
    """Segment ``args.audio`` with ``args.child`` and write segments and timings as JSON."""
    import torch

    from workbench.audio import open_audio
    from workbench.recognizer import load_recognizer

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    recognizer = load_recognizer(args.model, device="cpu")
    loaded = time.perf_counter()
    if args.child == "ctc":
        from workbench.segments import segment_file

        timed = segment_file(recognizer, Path(args.audio))
        segments = [{"start": s.start, "end": s.end, "text": s.text} for s in timed.segments]
        detect, recognise = time.perf_counter() - loaded, 0.0
    else:  # what segment_file(..., segmenter=...) runs, timed step by step
        from workbench.vad import detect_segments, recognise_segments

        with open_audio(args.audio) as stream:
            cut, _ = detect_segments(stream, args.child)
        detected = time.perf_counter()
        with open_audio(args.audio) as stream:
            cut = recognise_segments(recognizer, stream, cut)
        segments = [{"start": s.start, "end": s.end, "text": s.text} for s in cut]
        detect, recognise = detected - loaded, time.perf_counter() - detected
    Path(args.out).write_text(json.dumps({
        "segments": segments, "load_s": loaded - started, "detect_s": detect,
        "recognise_s": recognise}), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The comparison


def score(truth: list[tuple], texts: dict[str, str], data: dict) -> dict:
    """Boundary errors, missed/merged/spurious, and CER/WER of the joined texts."""
    from workbench.evaluate import error_rates

    segments = [SimpleNamespace(**s) for s in data["segments"]]
    scores = compare(truth, segments) if segments else {
        "utterances": len(truth), "segments": 0, "missed": len(truth), "merged": 0,
        "median_error_s": float("nan"), "p90_error_s": float("nan")}
    scores["spurious"] = sum(
        1 for s in segments if not any(min(e, s.end) > max(b, s.start) for b, e, _ in truth))
    reference = " ".join(texts[name] for _, _, name in truth)
    hypothesis = " ".join(s.text for s in segments if s.text.strip())
    rates = error_rates([reference], [hypothesis])
    scores["cer"], scores["wer"] = rates["cer"], rates["wer"]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run folder (its test voices are used)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--segmenters", default=",".join(SEGMENTERS))
    parser.add_argument("--child", choices=SEGMENTERS, help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from workbench.run import Run
    from workbench.workspace import Workspace

    run = Run(Path(args.model))
    ws = Workspace.at(run.root.parent.parent)
    test = ws.read_split("test")
    clips = [ws.audio_path(u) for u in test]
    texts = {ws.audio_path(u).name: u.text for u in test}
    others = [ws.audio_path(u) for u in ws.read_split("train")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        truth = build_recording(clips, args.repeat, args.seed, Path(tmp) / "clean.wav")
        clean = load_audio(Path(tmp) / "clean.wav")
        seconds = len(clean) / SAMPLE_RATE
        print(f"recording: {seconds / 60:.1f} min, {len(truth)} utterances ({len(clips)} test "
              f"clips x {args.repeat}, pauses 0.3-2 s, seed {args.seed}); run "
              f"{run.root.name}; {args.threads} threads", flush=True)
        for condition in args.conditions.split(","):
            audio = Path(tmp) / f"{condition}.wav"
            sf.write(audio, noisy(clean, truth, condition, others, args.seed), SAMPLE_RATE,
                     subtype="PCM_16")
            for segmenter in args.segmenters.split(","):
                out = Path(tmp) / f"{condition}-{segmenter}.json"
                proc = run_child(f"{segmenter} on {condition}", [
                    sys.executable, __file__, "--child", segmenter, "--audio", str(audio),
                    "--model", str(run.model_dir), "--out", str(out), "--threads",
                    str(args.threads)], env={"HF_HUB_OFFLINE": "1"})
                data = json.loads(out.read_text(encoding="utf-8"))
                row = {"condition": condition, "segmenter": segmenter,
                       **score(truth, texts, data), "detect_s": data["detect_s"],
                       "recognise_s": data["recognise_s"], "load_s": data["load_s"],
                       "wall_s": proc.seconds, "cpu_s": proc.cpu_seconds,
                       "peak_rss_mib": proc.peak_rss_mib, "seconds": seconds}
                rows.append(row)
                print(format_row(row), flush=True)
    print()
    print(table(rows))
    print(NOTES)


NOTES = """
ctc: one pass gives the cuts and the text (its time is all under "cut"); energy and silero
recognise each utterance in a second pass, over the speech they kept only.
What favours whom: the clean recording's pauses are digital silence (energy's best case); the
voices and the noises are synthetic; the second pass skips the silence (a third of this
recording), which favours the detectors' time; the model was fine-tuned on clean speech only,
which is what makes it write letters in noise (a model trained on noisy speech may not)."""


HEADER = ("| recording | segmenter | segments | missed | merged | spurious | boundary error "
          "median / p90 | CER | WER | in-process s: cut + 2nd pass | in-process RTF | "
          "whole process wall / CPU | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|---|"
          "---|---|")


def format_row(r: dict) -> str:
    work = r["detect_s"] + r["recognise_s"]
    return (f"| {r['condition']} | {r['segmenter']} | {r['segments']} | {r['missed']} | "
            f"{r['merged']} | {r['spurious']} | {r['median_error_s']:.3f} / "
            f"{r['p90_error_s']:.3f} s | {r['cer']:.3f} | {r['wer']:.3f} | "
            f"{r['detect_s']:.1f} + {r['recognise_s']:.1f} | {work / r['seconds']:.4f} | "
            f"{r['wall_s']:.1f} / {r['cpu_s']:.1f} s | {r['peak_rss_mib']:.0f} MiB |")


def table(rows: list[dict]) -> str:
    return "\n".join([HEADER, *(format_row(r) for r in rows)])


if __name__ == "__main__":
    main()
