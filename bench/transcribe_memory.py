"""Peak memory of transcribing a long recording: streamed (workbench) against whole-file.

A recording of ``--hours`` (default 2) is made from the bundled demo corpus clips, repeated,
and written as a 44.1 kHz stereo FLAC (decoded in-process by libsndfile and soxr) and as an
AAC ``.m4a`` with its index at the end, as phones write them (decoded by the ffmpeg command).
The model has demo-base's architecture (6 layers, hidden 192) with the demo workspace's
vocabulary: demo-base fine-tuned for ``--steps`` steps (its pretrained checkpoint has no CTC
head for Quechua; for memory, the architecture is what matters).

Each row runs in a fresh child process, which reports its own whole-process peak RSS
(``VmHWM``: libraries, model, audio and activations together), its wall time and real-time
factor (transcription only; model loading is not timed):

1. model loaded, nothing transcribed: the fixed cost every row includes;
2. workbench ``transcribe_files`` on the FLAC: decoded as a stream of blocks, windows cut as
   they pass, argmax ids kept per window;
3. the same on the m4a: ffmpeg's output read from its pipe a block at a time;
4. the old whole-file path on the FLAC: ``load_audio`` + ``transcribe_long`` (what
   ``transcribe_files`` did before), reproduced here for comparison;
5. the ffmpeg process of row 3 on its own (the workbench's command, output to /dev/null),
   measured by ``/usr/bin/time``: row 3's RSS does not include it. (``RUSAGE_CHILDREN``
   cannot tell it: Linux carries the parent's RSS at fork into the child's ``ru_maxrss``.)

The texts of rows 2 and 4 must be identical (the script fails otherwise).

    python bench/transcribe_memory.py [--hours 2] [--threads 1] [--steps 30] [--skip-whole]

The recording, workspace and model are cached in ``$TMPDIR/workbench-bench`` and reused.
``--threads`` defaults to 1: on a shared 2-core machine two torch threads spin against each
other when the other core is busy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CACHE = Path(tempfile.gettempdir()) / "workbench-bench" / "transcribe-memory"
RATE = 44_100  # the long recording's sample rate (stereo)
TARGET_MIB = 1024  # issue 10: a 2-hour recording under 1 GiB peak RSS


# ---------------------------------------------------------------------------------------------
# Setup (parent)


def cli(*args: str) -> str:
    command = [sys.executable, "-m", "workbench.cli", *args]
    return subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True).stdout


def demo_run(steps: int) -> Path:
    """demo-base fine-tuned ``steps`` steps on the demo corpus (made once)."""
    ws = CACHE / "demo-ws"
    marker = CACHE / f"run-{steps}.txt"
    if marker.is_file() and Path(marker.read_text().strip()).is_dir():
        return Path(marker.read_text().strip())
    tar = ROOT / "data_recipes" / "demo" / "quechua_demo.tar"
    print(f"preparing the demo workspace and fine-tuning demo-base for {steps} steps ...",
          flush=True)
    cli("prepare", str(tar), "-w", str(ws), "-q")
    cli("vocab", "-w", str(ws))
    summary = json.loads(cli("train", "-w", str(ws), "--model", "demo-base", "--max-steps",
                             str(steps), "--json", "-q"))
    run_dir = Path(summary["run_dir"])
    marker.write_text(str(run_dir))
    return run_dir


def base_recording() -> tuple[object, float]:
    """The demo clips joined with 0.4 s pauses, at 16 kHz mono (about 10 minutes)."""
    import numpy as np

    from data_recipes.synthetic import DEMO_ARCHIVE, unpack_corpus
    from workbench.audio import SAMPLE_RATE, load_audio

    corpus = unpack_corpus(DEMO_ARCHIVE, CACHE / "corpus")
    pause = np.zeros(int(0.4 * SAMPLE_RATE), dtype=np.float32)
    parts = []
    for clip in sorted((corpus / "clips").glob("*.ogg")):
        parts += [load_audio(clip), pause]
    samples = np.concatenate(parts)
    return samples, len(samples) / SAMPLE_RATE


def long_recordings(hours: float) -> tuple[Path, Path]:
    """The FLAC and m4a of ``hours`` (made once per length)."""
    import numpy as np
    import soundfile as sf
    import soxr

    flac = CACHE / f"long-{hours:g}h.flac"
    m4a = flac.with_suffix(".m4a")
    if not flac.is_file():
        base, seconds = base_recording()
        stereo = soxr.resample(base, 16_000, RATE, quality="HQ")
        stereo = np.stack([stereo, 0.8 * stereo], axis=1)  # channels at different levels
        repeats = int(np.ceil(hours * 3600 / seconds))
        frames = int(hours * 3600 * RATE)
        print(f"writing {flac.name}: {repeats} x {seconds / 60:.1f} min of demo clips ...",
              flush=True)
        partial = flac.with_suffix(".partial.flac")
        with sf.SoundFile(partial, "w", RATE, 2, "PCM_16") as out:
            written = 0
            while written < frames:
                piece = stereo[: frames - written]
                out.write(piece)
                written += len(piece)
        partial.rename(flac)
    if not m4a.is_file():
        print(f"writing {m4a.name} (AAC, index at the end) ...", flush=True)
        partial = m4a.with_suffix(".partial.m4a")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(flac), "-c:a", "aac",
                        "-b:a", "96k", "-movflags", "-faststart", str(partial)], check=True)
        partial.rename(m4a)
    return flac, m4a


# ---------------------------------------------------------------------------------------------
# Rows (child processes)


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, model: str, audio: str, threads: int) -> None:
    """Run one row and print its figures as JSON on the last line."""
    import torch

    from workbench.audio import SAMPLE_RATE, load_audio
    from workbench.transcribe import load_recognizer, transcribe_files, transcribe_long

    torch.set_num_threads(threads)
    recognizer = load_recognizer(model, device="cpu")
    started = time.perf_counter()
    text, seconds = "", 0.0
    if mode == "streamed":
        [result] = transcribe_files([audio], recognizer, progress=False)
        if not result.ok:
            raise SystemExit(result.error)
        text, seconds = result.text, result.duration
    elif mode == "whole":
        samples = load_audio(audio)
        text, seconds = transcribe_long(recognizer, samples), len(samples) / SAMPLE_RATE
    wall = time.perf_counter() - started
    print(json.dumps({"peak_rss_mib": peak_rss_mib(), "wall_s": wall, "audio_s": seconds,
                      "chars": len(text), "text_sha1": hashlib.sha1(text.encode()).hexdigest()}))


def ffmpeg_alone(audio: Path) -> dict | None:
    """Peak RSS and time of the workbench's ffmpeg command decoding ``audio`` by itself."""
    import shutil

    from workbench.audio import ffmpeg_decode_command

    timer, ffmpeg = Path("/usr/bin/time"), shutil.which("ffmpeg")
    if not timer.is_file() or ffmpeg is None:
        return None
    command = [str(timer), "-f", "%M %e", *ffmpeg_decode_command(ffmpeg, audio)]
    done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    max_kib, wall = done.stderr.strip().splitlines()[-1].split()
    seconds = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(audio)], capture_output=True, text=True, check=True).stdout)
    return {"peak_rss_mib": int(max_kib) / 1024, "wall_s": float(wall), "audio_s": seconds}


def run_row(mode: str, model: Path, audio: Path | None, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--model", str(model),
               "--audio", str(audio or ""), "--threads", str(threads)]
    done = subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Report


def table(rows: list[tuple[str, dict]]) -> str:
    lines = [f"| {'row':58s} | peak RSS MiB | wall s | audio h | RTF    |",
             f"|{'-' * 60}|--------------|--------|---------|--------|"]
    for name, row in rows:
        audio_h = row["audio_s"] / 3600
        rtf = f"{row['wall_s'] / row['audio_s']:.4f}" if row["audio_s"] else "-"
        audio_text = f"{audio_h:.2f}" if row["audio_s"] else "-"
        wall = f"{row['wall_s']:.0f}" if row["audio_s"] else "-"
        lines.append(f"| {name:58s} | {row['peak_rss_mib']:12.0f} | {wall:>6s} | "
                     f"{audio_text:>7s} | {rtf:>6s} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip-whole", action="store_true",
                        help="leave out the old whole-file row (the slowest and largest)")
    parser.add_argument("--child", choices=("loaded", "streamed", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.audio, args.threads)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    model = demo_run(args.steps)
    flac, m4a = long_recordings(args.hours)
    plan = [("model loaded, nothing transcribed", "loaded", None),
            ("workbench transcribe_files, FLAC 44.1 kHz stereo (stream)", "streamed", flac),
            ("workbench transcribe_files, m4a AAC via ffmpeg (stream)", "streamed", m4a)]
    if not args.skip_whole:
        plan.append(("old path: load_audio + transcribe_long, FLAC (whole)", "whole", flac))
    rows = []
    for name, mode, audio in plan:
        print(f"running: {name} ...", flush=True)
        rows.append((name, run_row(mode, model, audio, args.threads)))
    alone = ffmpeg_alone(m4a)
    if alone:
        rows.append(("ffmpeg decoding the m4a alone (row 3's separate process)", alone))
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}, "
          f"model {model} (demo-base architecture, {args.steps} fine-tuning steps)\n")
    print(table(rows))
    streamed = rows[1][1]
    verdict = "under" if streamed["peak_rss_mib"] < TARGET_MIB else "OVER"
    print(f"\nstreamed FLAC peak {streamed['peak_rss_mib']:.0f} MiB: {verdict} the "
          f"{TARGET_MIB} MiB target for {args.hours:g} h")
    if not args.skip_whole:
        same = rows[1][1]["text_sha1"] == rows[3][1]["text_sha1"]
        print(f"streamed and whole-file texts identical: {'yes' if same else 'NO'} "
              f"({streamed['chars']} characters)")
        if not same:
            raise SystemExit("the streamed text differs from transcribe_long's")


if __name__ == "__main__":
    main()
