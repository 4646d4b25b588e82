"""Decode any audio file to 16 kHz mono float32, once.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, ogg/opus and mp3 in-process; anything it
cannot read (m4a/AAC, video containers, ...) is decoded by the ffmpeg command when installed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from workbench.errors import WorkbenchError

SAMPLE_RATE = 16_000  # Hz: what wav2vec 2.0 / XLS-R / MMS were pretrained on
FRAME_RATE = 50  # CTC output frames per second (conv feature encoder stride 320 = 20 ms)
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE  # 320
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
FFMPEG_TIMEOUT_S = 600  # one file; long field recordings take a while

CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)  # wav2vec2 feature encoder
CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)


@dataclass(frozen=True)
class DecodedAudio:
    """Samples at SAMPLE_RATE, mono, float32, plus what the source file was like."""

    samples: np.ndarray
    orig_sample_rate: int
    orig_channels: int
    nan_count: int = 0
    truncated: bool = False

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class AudioDecodeError(WorkbenchError):
    """The file could not be decoded as audio."""


def ctc_output_frames(num_samples: int, kernels: tuple[int, ...] = CONV_KERNELS,
                      strides: tuple[int, ...] = CONV_STRIDES) -> int:
    """Number of CTC output frames the wav2vec2 feature encoder makes from ``num_samples``."""
    length = int(num_samples)
    for kernel, stride in zip(kernels, strides, strict=True):
        if length < kernel:
            return 0
        length = (length - kernel) // stride + 1
    return length


def decode_audio(path: str | Path) -> DecodedAudio:
    """Decode ``path`` to 16 kHz mono float32.

    Non-finite samples are counted and replaced by zero; a file shorter than its header
    promised is flagged as truncated.

    Raises:
        AudioDecodeError: the file is not audio any decoder here can read.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: file not found.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: the file is empty (0 bytes).")
    try:
        samples, rate, channels, truncated = _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_error:
        samples, orig_rate, channels = _read_ffmpeg(path, sf_error)
        decoded = _to_model_rate(samples, SAMPLE_RATE, 1, False)
        return DecodedAudio(decoded.samples, orig_rate, channels, decoded.nan_count, False)
    return _to_model_rate(samples, rate, channels, truncated)


def load_audio(path: str | Path) -> np.ndarray:
    """Samples of ``path`` at 16 kHz mono float32 (the cache and new recordings alike)."""
    return decode_audio(path).samples


def _read_soundfile(path: Path) -> tuple[np.ndarray, int, int, bool]:
    with sf.SoundFile(path) as handle:
        data = handle.read(dtype="float32", always_2d=True)
        rate, channels = handle.samplerate, handle.channels
    return data, rate, channels, wav_is_truncated(path)


def wav_is_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE file holds fewer data bytes than its header declares.

    libsndfile quietly reads what is there, so a cut-off upload would otherwise pass as a
    shorter clip whose transcript no longer matches.
    """
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return False
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return False
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                available = path.stat().st_size - handle.tell()
                return size != 0xFFFFFFFF and available < size
            handle.seek(size + (size & 1), 1)


def _read_ffmpeg(path: Path, cause: Exception) -> tuple[np.ndarray, int, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError(
            f"{path}: cannot be read as audio ({cause}). If it is a format such as m4a, "
            "install ffmpeg (e.g. `apt-get install ffmpeg`) and run the import again."
        ) from cause
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn",
               "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise AudioDecodeError(f"{path}: ffmpeg took over {FFMPEG_TIMEOUT_S} s.") from err
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else "no audio stream"
        raise AudioDecodeError(f"{path}: not readable as audio ({reason}).") from cause
    samples = np.frombuffer(result.stdout, dtype="<f4").reshape(-1, 1)
    rate, channels = _ffprobe_format(path)
    # ffmpeg already resampled to SAMPLE_RATE and downmixed; report what the source was.
    return samples, rate, channels


def _ffprobe_format(path: Path) -> tuple[int, int]:
    """Original sample rate and channel count of the first audio stream (0 if unknown)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return 0, 0
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels", "-of", "csv=p=0", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    try:
        rate, channels = result.stdout.strip().splitlines()[0].split(",")[:2]
        return int(rate), int(channels)
    except (ValueError, IndexError):
        return 0, 0


def _to_model_rate(data: np.ndarray, rate: int, channels: int, truncated: bool) -> DecodedAudio:
    finite = np.isfinite(data)
    nan_count = int(data.size - np.count_nonzero(finite))
    if nan_count:
        data = np.where(finite, data, 0.0).astype(np.float32)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE and len(mono):
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return DecodedAudio(np.ascontiguousarray(mono, dtype=np.float32), rate, channels,
                        nan_count, truncated)


def signal_stats(samples: np.ndarray) -> dict[str, float]:
    """Peak, RMS level in dBFS and share of clipped samples (for the audit)."""
    if len(samples) == 0:
        return {"peak": 0.0, "rms_db": -120.0, "clipped_fraction": 0.0}
    magnitude = np.abs(samples)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return {
        "peak": float(magnitude.max()),
        "rms_db": float(20 * np.log10(max(rms, 1e-6))),
        "clipped_fraction": float(np.mean(magnitude >= CLIP_LEVEL)),
    }


def content_hash(samples: np.ndarray) -> str:
    """SHA-1 of the 16-bit samples, so identical audio in two files is found."""
    pcm = np.clip(samples, -1.0, 1.0)
    return hashlib.sha1((pcm * 32767).astype("<i2").tobytes()).hexdigest()


def write_clip(path: Path, samples: np.ndarray) -> None:
    """Write a cached clip as 16-bit PCM WAV at SAMPLE_RATE (fast to read back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(samples, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
