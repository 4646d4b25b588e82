"""Decode any audio file to 16 kHz mono float32, once.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, ogg/opus and mp3 in-process; anything it
cannot read (m4a/AAC, video containers, ...) is decoded by the ffmpeg command when installed.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
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
RESAMPLE_QUALITY = "HQ"  # soxr's high quality: 20-bit precision, far below audible
# Files of up to WHOLE_FILE_FRAMES frames (44 s at 48 kHz, 16 MB as stereo float32) are read
# at once; a longer recording is read BLOCK_FRAMES at a time (5.5 s at 48 kHz) and resampled
# as a stream, so its source-rate samples are never held whole.
WHOLE_FILE_FRAMES = 1 << 21
BLOCK_FRAMES = 1 << 18
MAX_WAV_DATA_BYTES = 0xFFFFFFFF - 36  # RIFF sizes are 32-bit

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
        return _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_error:
        samples, orig_rate, channels = _read_ffmpeg(path, sf_error)
        decoded = _to_model_rate(samples, SAMPLE_RATE, 1, False)
        return DecodedAudio(decoded.samples, orig_rate, channels, decoded.nan_count, False)


def load_audio(path: str | Path) -> np.ndarray:
    """Samples of ``path`` at 16 kHz mono float32 (the cache and new recordings alike)."""
    return decode_audio(path).samples


def _read_soundfile(path: Path) -> DecodedAudio:
    with sf.SoundFile(path) as handle:
        rate, channels, container = handle.samplerate, handle.channels, handle.format
        # Only RIFF/WAVE files can be checked (reopening FLAC/MP3 files cost time for nothing).
        truncated = container in ("WAV", "WAVEX") and wav_is_truncated(path)
        if handle.frames <= WHOLE_FILE_FRAMES:
            data = handle.read(dtype="float32", always_2d=True)
            return _to_model_rate(data, rate, channels, truncated)
        return _stream_to_model_rate(handle, truncated)


def _stream_to_model_rate(handle: sf.SoundFile, truncated: bool) -> DecodedAudio:
    """Decode a long file BLOCK_FRAMES at a time: only its 16 kHz mono form is held whole.

    soxr's streaming resampler gives the same samples as resampling the whole file at once.
    """
    rate = handle.samplerate
    stream = (soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY)
              if rate != SAMPLE_RATE else None)
    parts, nan_count = [], 0
    while len(block := handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
        block, bad = _zero_non_finite(block)
        nan_count += bad
        mono = downmix(block)
        parts.append(stream.resample_chunk(mono) if stream else mono)
    if stream:
        parts.append(stream.resample_chunk(np.empty(0, dtype=np.float32), last=True))
    samples = np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), rate, handle.channels,
                        nan_count, truncated)


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


def _zero_non_finite(data: np.ndarray) -> tuple[np.ndarray, int]:
    """``data`` with NaN/inf replaced by zero, and how many there were."""
    finite = np.isfinite(data)
    count = int(data.size - np.count_nonzero(finite))
    if count:
        data = np.where(finite, data, 0.0).astype(np.float32)
    return data, count


def _to_model_rate(data: np.ndarray, rate: int, channels: int, truncated: bool) -> DecodedAudio:
    data, nan_count = _zero_non_finite(data)
    mono = downmix(data)
    if rate != SAMPLE_RATE and len(mono):
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    return DecodedAudio(np.ascontiguousarray(mono, dtype=np.float32), rate, channels,
                        nan_count, truncated)


def downmix(data: np.ndarray) -> np.ndarray:
    """Mean of the channels of a (frames, channels) array, as ``data.mean(axis=1)`` gives it.

    Adding the channel columns is about 20 times faster than numpy's reduction over a
    short axis, which dominated decoding stereo files.
    """
    channels = data.shape[1]
    if channels == 1:
        return data[:, 0]
    mono = data[:, 0] + data[:, 1]
    for channel in range(2, channels):
        mono += data[:, channel]
    mono /= np.asarray(channels, dtype=mono.dtype)
    return mono


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
    """SHA-1 of the 16-bit samples (as the cache stores them), so identical audio is found."""
    return pcm16_hash(pcm16(samples))


def pcm16_hash(pcm: np.ndarray) -> str:
    """SHA-1 of samples already converted by :func:`pcm16`."""
    return hashlib.sha1(pcm.tobytes()).hexdigest()


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Samples as little-endian 16-bit integers, converted as libsndfile converts them.

    floor(x * 32768) held to [-32768, 32767]: libsndfile goes through 32-bit integers and
    shifts, so soundfile.write and this give the same bytes.
    """
    scaled = np.floor(np.asarray(samples, dtype=np.float32) * np.float32(32768))
    return np.clip(scaled, -32768, 32767).astype("<i2")


def wav_header(num_samples: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """The 44-byte header of a mono 16-bit PCM RIFF/WAVE file.

    Raises:
        AudioDecodeError: the clip is too long for a WAV file (4 GiB of samples, 37 hours).
    """
    data_bytes = 2 * num_samples
    if data_bytes > MAX_WAV_DATA_BYTES:
        raise AudioDecodeError(
            f"A clip of {num_samples / sample_rate / 3600:.0f} hours is too long for a WAV "
            "file; cut the recording into utterances (segments) first.")
    # RIFF size, "fmt " chunk (16 bytes: PCM, 1 channel, rate, byte rate, block align, bits).
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       1, 1, sample_rate, 2 * sample_rate, 2, 16, b"data", data_bytes)


def write_clip(path: Path, samples: np.ndarray) -> None:
    """Write a cached clip as 16-bit PCM WAV at SAMPLE_RATE (fast to read back).

    The bytes soundfile.write gives, without libsndfile: it fsyncs every file it closes,
    which made writing the cache cost more than decoding the sources.
    """
    write_pcm16(path, pcm16(samples))


def write_pcm16(path: Path, pcm: np.ndarray) -> None:
    """Write samples already converted by :func:`pcm16` as a cached clip (see write_clip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(wav_header(len(pcm)))
        handle.write(memoryview(np.ascontiguousarray(pcm, dtype="<i2")).cast("B"))
