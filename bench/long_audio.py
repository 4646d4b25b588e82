"""Long recordings with known times: how well `transcribe --output` finds the utterances.

Builds a long recording from the bundled demo corpus's clips (the voices a run's test split
holds, so the model never trained on them), in a known order with pauses of 0.3-2 s between
them, and with each clip's speech trimmed to where its energy is within 40 dB of its peak, so
that the truth is the speech and not espeak-ng's own silence. Then segments it with a trained
run, through ``workbench transcribe --output eaf`` in a child process (cut by ``--segmenter``,
energy by default; ``ctc``: the model's own blank
frames; wall, CPU and peak RSS of that whole process, model loading included), and compares
each true utterance with the segment that overlaps it most: start and end errors (median,
90th percentile), utterances missed or merged, and the real-time factor.

    python bench/long_audio.py --model RUN_DIR [--repeat 3] [--seed 0]

``--repeat`` strings the test clips together that many times (different pauses each time) for
a longer recording.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.procstats import run_child  # noqa: E402
from workbench.audio import SAMPLE_RATE, load_audio  # noqa: E402
from workbench.run import Run  # noqa: E402

NEVER_SAID = "wasiqa hatunmi kunan paqarin"  # in the demo's alphabet, in no test clip


def speech_span(samples: np.ndarray, floor_db: float = -40.0) -> tuple[int, int]:
    """First and last sample of 10 ms frames within ``floor_db`` of the loudest frame."""
    frame = SAMPLE_RATE // 100
    frames = len(samples) // frame
    energy = np.array([np.sqrt(np.mean(samples[i * frame:(i + 1) * frame] ** 2) + 1e-12)
                       for i in range(frames)])
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > floor_db)
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def build_recording(clips: list[Path], repeat: int, seed: int, out: Path) -> list[tuple]:
    """Write the long recording block by block; return the truth: (start s, end s, clip)."""
    rng = np.random.default_rng(seed)
    truth, at = [], SAMPLE_RATE // 2
    spans = {}
    with sf.SoundFile(out, "w", SAMPLE_RATE, 1, subtype="PCM_16") as sink:
        sink.write(np.zeros(at, np.float32))
        for _ in range(repeat):
            for clip in clips:
                samples = load_audio(clip)
                first, last = spans.setdefault(clip, speech_span(samples))
                speech = samples[first:last]
                truth.append((at / SAMPLE_RATE, (at + len(speech)) / SAMPLE_RATE, clip.name))
                pause = np.zeros(int(rng.uniform(0.3, 2.0) * SAMPLE_RATE), np.float32)
                sink.write(speech)
                sink.write(pause)
                at += len(speech) + len(pause)
    return truth


def compare(truth: list[tuple], segments: list) -> dict:
    """Boundary errors of each true utterance against the segment overlapping it most."""
    starts, ends, owners = [], [], []
    for start, end, _ in truth:
        overlaps = [max(0.0, min(end, s.end) - max(start, s.start)) for s in segments]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best < 0 or overlaps[best] == 0:
            owners.append(None)
            continue
        owners.append(best)
        starts.append(abs(segments[best].start - start))
        ends.append(abs(segments[best].end - end))
    merged = len(owners) - len(set(o for o in owners if o is not None)) - owners.count(None)
    errors = np.array(starts + ends)
    return {"utterances": len(truth), "segments": len(segments), "missed": owners.count(None),
            "merged": merged, "median_error_s": float(np.median(errors)),
            "p90_error_s": float(np.percentile(errors, 90)),
            "median_start_error_s": float(np.median(starts)),
            "median_end_error_s": float(np.median(ends))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run folder (its test voices are used)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--segmenter", default="energy",
                        help="where `transcribe` cuts: energy (its default), silero or ctc")
    parser.add_argument("--lm", help="also segment with this language model of the run's "
                        "workspace, and compare the text (WER, CER) with the greedy output's")
    parser.add_argument("--align", action="store_true",
                        help="also time the true transcript (one line dropped, one added) "
                        "with `workbench align`")
    args = parser.parse_args()
    run = Run(Path(args.model))
    ws_root = run.root.parent.parent
    from workbench.workspace import Workspace

    ws = Workspace.at(ws_root)
    clips = [ws.audio_path(u) for u in ws.read_split("test")]
    texts = {ws.audio_path(u).name: u.text for u in ws.read_split("test")}
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "long.wav"
        truth = build_recording(clips, args.repeat, args.seed, audio)
        seconds = sf.info(audio).duration
        child, data = timed_run(Path(tmp), audio, run, args, ["--greedy"])
        with_lm = (timed_run(Path(tmp) / "lm", audio, run, args,
                             ["--lm", args.lm, "-w", str(ws_root)]) if args.lm else None)
        aligned = align_run(Path(tmp), audio, truth, texts, run, args) if args.align else None
    segments = [SimpleNamespace(**s) for s in data["segments"]]
    scores = compare(truth, segments)
    print(f"recording: {seconds / 60:.1f} min from {len(clips)} test clips x {args.repeat}, "
          f"pauses 0.3-2 s; run {run.root.name}; {args.threads} threads")
    print(f"utterances {scores['utterances']}, segments {scores['segments']}, missed "
          f"{scores['missed']}, merged into a neighbour {scores['merged']}")
    print(f"boundary error: median {scores['median_error_s']:.3f} s (start "
          f"{scores['median_start_error_s']:.3f}, end {scores['median_end_error_s']:.3f}), "
          f"90th percentile {scores['p90_error_s']:.3f} s")
    print(f"whole process `workbench transcribe --output eaf --segmenter {args.segmenter}` "
          "(model loading included): "
          f"{child.seconds:.1f} s wall, {child.cpu_seconds:.1f} s CPU, real-time factor "
          f"{child.seconds / seconds:.4f}, peak RSS {child.peak_rss_mib:.0f} MiB")
    if with_lm:
        print(decoding_comparison(truth, texts, data, with_lm, seconds, args.lm))
    if aligned:
        print(aligned)


def timed_run(out: Path, audio: Path, run: Run, args, extra: list[str]) -> tuple[Any, dict]:
    """``workbench transcribe --output eaf`` in a child process; its figures, and the
    utterance tier read back from the ELAN file (by the project's ELAN importer)."""
    child = run_child("transcribe --output eaf", [
        sys.executable, "-m", "workbench.cli", "transcribe", str(audio), "--model",
        str(run.model_dir), "--output", "eaf", "-o", str(out), "--threads",
        str(args.threads), "--segmenter", args.segmenter, "--quiet", "--json", *extra],
        env={"HF_HUB_OFFLINE": "1"})
    return child, {"segments": eaf_segments(out / f"{audio.stem}.eaf", run.root.name)}


def eaf_segments(path: Path, tier: str) -> list[dict]:
    """The utterances of ``tier`` of an ELAN file: start, end (s) and text."""
    from data_recipes.elan import read_elan

    rows = read_elan(path, tier=tier).rows
    return [{"start": r.start, "end": r.end, "text": r.text}
            for r in sorted(rows, key=lambda r: r.start)]


def decoding_comparison(truth: list[tuple], texts: dict, greedy: dict, with_lm: tuple,
                        seconds: float, lm: str) -> str:
    """Greedy and LM timed outputs side by side: the whole recording's WER and CER, the
    boundary errors, and the LM run's whole-process figures."""
    import jiwer

    reference = " ".join(texts[name] for _, _, name in truth)
    child, data = with_lm
    rows = []
    for name, output in (("greedy", greedy), (f"lm:{lm}", data)):
        hypothesis = " ".join(s["text"] for s in output["segments"])
        scores = compare(truth, [SimpleNamespace(**s) for s in output["segments"]])
        rows.append(f"  {name:16s} WER {jiwer.wer(reference, hypothesis):.3f}  CER "
                    f"{jiwer.cer(reference, hypothesis):.3f}  segments {scores['segments']}  "
                    f"median boundary error {scores['median_error_s']:.3f} s")
    return ("timed output, whole recording's text against the truth:\n" + "\n".join(rows)
            + f"\n  whole process with the LM: {child.seconds:.1f} s wall, "
            f"{child.cpu_seconds:.1f} s CPU, real-time factor {child.seconds / seconds:.4f}, "
            f"peak RSS {child.peak_rss_mib:.0f} MiB")


def align_run(tmp: Path, audio: Path, truth: list[tuple], texts: dict, run: Run, args) -> str:
    """`workbench align` with the true transcript, less one line that was said (at 1/3) and
    plus one that never was (at 2/3): boundary errors of the lines it aligned, what it
    flagged, and the whole process's figures."""
    lines = [texts[name] for _, _, name in truth]
    dropped = len(lines) // 3
    said = [(start, end, text) for (start, end, _), text in zip(truth, lines, strict=True)]
    del lines[dropped]
    never = 2 * len(lines) // 3
    lines.insert(never, NEVER_SAID)
    transcript = tmp / "long.txt"
    transcript.write_text("\n".join(lines) + "\n", encoding="utf-8")
    child = run_child("align", [
        sys.executable, "-m", "workbench.cli", "align", str(audio), str(transcript), "--model",
        str(run.model_dir), "-w", str(run.root.parent.parent), "--output", "json", "-o",
        str(tmp / "aligned"), "--json", "-q"], env={"HF_HUB_OFFLINE": "1"})
    out = json.loads(child.stdout)
    data = json.loads(Path(out["output"]).read_text(encoding="utf-8"))
    remaining = said[:dropped] + said[dropped + 1:]
    truth_by_text: dict[str, list[tuple[float, float]]] = {}
    for start, end, text in remaining:
        truth_by_text.setdefault(text, []).append((start, end))
    errors = []
    for seg in data["segments"]:
        candidates = truth_by_text.get(seg["text"], [])
        if candidates:
            start, end = min(candidates, key=lambda c: abs(c[0] - seg["start"]))
            errors += [abs(seg["start"] - start), abs(seg["end"] - end)]
    flagged = [f["line"] for f in out["flagged"]]
    return (f"align: {out['aligned']} of {out['lines']} lines aligned; flagged lines {flagged} "
            f"(the line never said is line {never + 1}); speech without a line: "
            f"{[n for n in out['notes'] if 'no line' in n][:3]} (the dropped line was said at "
            f"{said[dropped][0]:.2f}-{said[dropped][1]:.2f} s)\n"
            f"align boundary error: median {np.median(errors):.3f} s, 90th percentile "
            f"{np.percentile(errors, 90):.3f} s\n"
            f"whole process `workbench align --output json`: {child.seconds:.1f} s wall, "
            f"{child.cpu_seconds:.1f} s CPU, real-time factor "
            f"{child.seconds / truth[-1][1]:.4f}, peak RSS {child.peak_rss_mib:.0f} MiB")

if __name__ == "__main__":
    main()
