"""An hour (or ten) of mixed-source transcribed audio in the audiofolder layout, for benchmarks.

Every clip is one clip of the bundled 10-minute Quechua demo corpus, changed by sox (tempo,
pitch, gain, and for stereo a different level per channel) so no two clips hold the same
audio, then written at one of 8, 22.05, 44.1 and 48 kHz, mono or stereo, as WAV (16-bit),
FLAC or MP3; the 24 combinations are spread evenly. 1,440 clips make about 57 minutes per
"hour" (the figure the issue quotes for the reference).

Output layout::

    <out>/
      metadata.csv          file_name,transcription,speaker
      clips/c000000.flac    ...
      corpus.json           the parameters (a rerun with others refuses to mix them)

Clip ``i`` depends only on ``(seed, i)``, so generation is resumable (finished clips are kept,
each clip is written under a temporary name and renamed), idempotent, and the 1-hour corpus
is the first 1,440 clips of the 10-hour one. sox runs in a pool of ``os.cpu_count()`` threads.

    python bench/mixed_corpus.py --hours 1 --out /tmp/workbench-bench/mixed_1h
    python bench/mixed_corpus.py --hours 10 --out /tmp/workbench-bench/mixed_10h
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_recipes.synthetic import DEMO_ARCHIVE, unpack_corpus  # noqa: E402

CLIPS_PER_HOUR = 1440
SECONDS_PER_HOUR = 57 * 60  # audio per 1,440 clips: the tempo range below is tuned for it
RATES = (8000, 22050, 44100, 48000)
CHANNELS = (1, 2)
FORMATS = ("wav", "flac", "mp3")
COMBOS = tuple(product(FORMATS, RATES, CHANNELS))  # 24, spread evenly over the clips
TEMPO_RANGE = (1.25, 1.55)  # demo clips average 3.33 s; 2.38 s wanted: E[1/tempo] ~ 0.717
PITCH_CENTS = (-300, 300)
GAIN_DB = (-9.0, 1.0)
SOX_TIMEOUT_S = 60
# Rough bytes per audio-second of a clip, averaged over the combinations (WAV dominates).
BYTES_PER_SECOND = 60_000


@dataclass(frozen=True)
class ClipPlan:
    """How clip ``index`` is made."""

    index: int
    source: str  # file_name in the demo metadata
    transcription: str
    speaker: str
    fmt: str
    rate: int
    channels: int
    tempo: float
    pitch: int
    gain: float
    right_gain: float  # level of the second channel relative to the first (stereo only)

    @property
    def file_name(self) -> str:
        return f"clips/c{self.index:06d}.{self.fmt}"


def plan_clips(rows: list[dict], count: int, seed: int) -> list[ClipPlan]:
    """Deterministic plan: clip ``i`` only depends on ``seed`` and ``i``."""
    plans = []
    for index in range(count):
        rng = random.Random(f"{seed}-{index}")
        row = rows[index % len(rows)]
        cycle = index // len(rows)
        fmt, rate, channels = COMBOS[(index + cycle) % len(COMBOS)]
        plans.append(ClipPlan(
            index=index, source=row["file_name"], transcription=row["transcription"],
            speaker=row.get("speaker", ""), fmt=fmt, rate=rate, channels=channels,
            tempo=round(rng.uniform(*TEMPO_RANGE), 3), pitch=rng.randint(*PITCH_CENTS),
            gain=round(rng.uniform(*GAIN_DB), 2), right_gain=round(rng.uniform(0.6, 0.95), 3),
        ))
    return plans


def sox_command(plan: ClipPlan, source: Path) -> list[str]:
    """sox reading the demo clip and writing raw float32 at the target rate and channels."""
    remix = ["remix", "1v1", f"1v{plan.right_gain}"] if plan.channels == 2 else []
    return ["sox", "-R", "-V1", str(source), "-t", "f32", "-c", str(plan.channels),
            "-r", str(plan.rate), "-",
            "tempo", "-s", str(plan.tempo), "pitch", str(plan.pitch),
            "gain", str(plan.gain), *remix, "rate", "-h", str(plan.rate)]


def make_clip(plan: ClipPlan, demo: Path, out: Path) -> float:
    """Write one clip (atomically) unless it exists; return its duration in seconds."""
    target = out / plan.file_name
    if target.is_file():
        return sf.info(target).duration
    result = subprocess.run(sox_command(plan, demo / plan.source), capture_output=True,
                            timeout=SOX_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"sox failed on {plan.source}: {result.stderr.decode()[-500:]}")
    samples = np.frombuffer(result.stdout, dtype="<f4").reshape(-1, plan.channels)
    samples = np.clip(samples, -1.0, 1.0)
    partial = target.with_name(f".{target.name}.partial")
    subtype = {"wav": "PCM_16", "flac": "PCM_16", "mp3": "MPEG_LAYER_III"}[plan.fmt]
    sf.write(partial, samples, plan.rate, format=plan.fmt.upper(), subtype=subtype)
    os.replace(partial, target)
    return len(samples) / plan.rate


def demo_rows(demo: Path) -> list[dict]:
    with open(demo / "metadata.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check_disk(out: Path, seconds: float) -> None:
    """Refuse to start when the clips would not fit (with a 2 GB margin)."""
    out.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out).free
    needed = seconds * BYTES_PER_SECOND + 2e9
    if free < needed:
        raise SystemExit(f"{out}: {free / 1e9:.1f} GB free, about {needed / 1e9:.1f} GB needed.")


def _check_parameters(out: Path, params: dict) -> None:
    stamp = out / "corpus.json"
    if stamp.is_file():
        old = json.loads(stamp.read_text())
        if {k: old.get(k) for k in ("seed", "clips_per_hour")} != {
                k: params[k] for k in ("seed", "clips_per_hour")}:
            raise SystemExit(f"{out} holds a corpus made with other parameters ({old}); "
                             "choose another --out or delete it.")


def build_corpus(out: Path, hours: float = 1.0, *, seed: int = 0,
                 workers: int | None = None, progress: bool = True) -> Path:
    """Generate (or complete) the mixed corpus in ``out``; return ``out``.

    Args:
        out: Output folder (audiofolder layout).
        hours: Number of "hours": 1,440 clips (about 57 minutes) each.
        seed: Seed of the per-clip variations.
        workers: sox processes in flight (default: the number of CPUs).
        progress: Print progress to stderr.
    """
    out = Path(out)
    count = round(CLIPS_PER_HOUR * hours)
    params = {"seed": seed, "clips_per_hour": CLIPS_PER_HOUR, "clips": count}
    _check_parameters(out, params)
    check_disk(out, hours * SECONDS_PER_HOUR)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for partial in (out / "clips").glob(".*.partial"):  # left by an interrupted run
        partial.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        demo = unpack_corpus(DEMO_ARCHIVE, Path(tmp))
        plans = plan_clips(demo_rows(demo), count, seed)
        durations = _make_all(plans, demo, out, workers or os.cpu_count() or 1, progress)
    _write_metadata(out, plans)
    summary = {**params, "hours_of_audio": round(sum(durations) / 3600, 4),
               "combos": _combo_counts(plans)}
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out


def _make_all(plans: list[ClipPlan], demo: Path, out: Path, workers: int,
              progress: bool) -> list[float]:
    started = time.monotonic()
    durations = []
    with ThreadPoolExecutor(workers) as pool:
        for done, duration in enumerate(pool.map(lambda p: make_clip(p, demo, out), plans), 1):
            durations.append(duration)
            if progress and (done % 500 == 0 or done == len(plans)):
                print(f"  {done}/{len(plans)} clips, {sum(durations) / 60:.1f} min, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return durations


def _write_metadata(out: Path, plans: list[ClipPlan]) -> None:
    partial = out / ".metadata.csv.partial"
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "transcription", "speaker"])
        for plan in plans:
            writer.writerow([plan.file_name, plan.transcription, plan.speaker])
    os.replace(partial, out / "metadata.csv")


def _combo_counts(plans: list[ClipPlan]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for plan in plans:
        key = f"{plan.fmt}-{plan.rate}-{'stereo' if plan.channels == 2 else 'mono'}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0,
                        help="1,440 clips (about 57 min of audio) per hour (default 1)")
    parser.add_argument("--out", type=Path, help="output folder "
                        "(default: /tmp/workbench-bench/mixed_<hours>h)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="sox processes (default: CPUs)")
    args = parser.parse_args(argv)
    out = args.out or default_corpus_dir(args.hours)
    started = time.monotonic()
    build_corpus(out, args.hours, seed=args.seed, workers=args.workers or None)
    summary = json.loads((out / "corpus.json").read_text())
    print(json.dumps({**summary, "out": str(out),
                      "seconds": round(time.monotonic() - started, 1)}, indent=2))


def default_corpus_dir(hours: float) -> Path:
    return Path(tempfile.gettempdir()) / "workbench-bench" / f"mixed_{hours:g}h"


if __name__ == "__main__":
    main()

