"""Decode any audio file to 16 kHz mono float32, once, in blocks of bounded size.

soundfile (libsndfile) reads wav, flac, ogg/vorbis, ogg/opus and mp3 in-process; anything it
cannot read (m4a/AAC, video containers, ...) is decoded by the ffmpeg command when installed.

Memory does not grow with the length of a recording for callers that read it as a stream:
:func:`open_audio` yields 16 kHz mono blocks (a long file is read, downmixed and resampled a
block at a time; ffmpeg's output is read from its pipe a block at a time), and
:class:`ClipWriter` writes, hashes and measures a cached clip as its blocks arrive.
:func:`decode_audio` joins the blocks for callers that want the whole array.

ffmpeg and ffprobe may open only the file they are given, with a demuxer of a single-file
audio or video format (``FFMPEG_DEMUXERS``): a playlist (HLS ``#EXTM3U``) or file list
(ffconcat) renamed ``.m4a`` would otherwise make them read other files on the server.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
# ffmpeg's f32le output is read FFMPEG_BLOCK_BYTES at a time: 262,144 samples, 16 s at 16 kHz.
FFMPEG_BLOCK_BYTES = 1 << 20
# The only demuxers ffmpeg/ffprobe may use (names from `ffmpeg -demuxers`): formats whose
# audio is stored in the file itself. Playlists (hls, dash), file lists (concat), image
# sequences (image2) and the like open other files and are refused; so are all protocols
# but "file" (no http, concat:, subfile: ...). mov does not follow external data references
# (its enable_drefs option is off by default).
FFMPEG_DEMUXERS = ("mov", "matroska", "ogg", "wav", "w64", "flac", "mp3", "aac", "ac3", "eac3",
                   "asf", "aiff", "amr", "amrnb", "amrwb", "caf", "au", "wv", "ape", "avi",
                   "mpegts")
FFMPEG_INPUT_OPTIONS = ("-protocol_whitelist", "file", "-format_whitelist",
                        ",".join(FFMPEG_DEMUXERS))

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


class AudioStream:
    """An audio file being decoded to 16 kHz mono float32, one block at a time.

    Iterate over it for the blocks (1-D float32 arrays; joined, they are what
    :func:`decode_audio` returns). Use it as a context manager, so that the file or the ffmpeg
    process is released when a caller stops early. Made by :func:`open_audio`.

    Attributes:
        path: The audio file.
        orig_sample_rate: Sample rate of the source (0 when ffprobe cannot tell).
        orig_channels: Channel count of the source (0 when ffprobe cannot tell).
        truncated: The file holds fewer samples than its header declares.
        nan_count: Non-finite source samples replaced by zero so far (final once the stream
            is exhausted).
        samples_read: 16 kHz samples yielded so far.
    """

    def __init__(self, path: Path, orig_sample_rate: int, orig_channels: int, truncated: bool,
                 blocks: Generator[tuple[np.ndarray, int], None, None]) -> None:
        self.path = path
        self.orig_sample_rate = orig_sample_rate
        self.orig_channels = orig_channels
        self.truncated = truncated
        self.nan_count = 0
        self.samples_read = 0
        self._blocks = blocks

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        while True:
            block, non_finite = next(self._blocks)  # StopIteration ends the stream
            self.nan_count += non_finite
            self.samples_read += len(block)
            if len(block):
                return block

    def close(self) -> None:
        """Release the file (or stop the ffmpeg process); the stream ends here."""
        self._blocks.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_audio(path: str | Path) -> AudioStream:
    """Open ``path`` for decoding to 16 kHz mono float32 blocks (see :class:`AudioStream`).

    The first block is decoded here, so a file that cannot be read at all fails now rather
    than while its blocks are read.

    Raises:
        AudioDecodeError: the file is missing, empty or not audio any decoder here can read;
            or ffmpeg refused it (a playlist or file list that points at other files).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: file not found.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: the file is empty (0 bytes).")
    try:
        return _open_soundfile(path)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_error:
        return _open_ffmpeg(path, sf_error)


def decode_audio(path: str | Path) -> DecodedAudio:
    """Decode ``path`` to 16 kHz mono float32, whole.

    Non-finite samples are counted and replaced by zero; a file shorter than its header
    promised is flagged as truncated. Read long recordings with :func:`open_audio` instead
    where the whole array is not needed.

    Raises:
        AudioDecodeError: the file is not audio any decoder here can read.
    """
    with open_audio(path) as stream:
        parts = list(stream)
    samples = parts[0] if len(parts) == 1 else (
        np.concatenate(parts) if parts else np.empty(0, dtype=np.float32))
    return DecodedAudio(np.ascontiguousarray(samples, dtype=np.float32), stream.orig_sample_rate,
                        stream.orig_channels, stream.nan_count, stream.truncated)


def load_audio(path: str | Path) -> np.ndarray:
    """Samples of ``path`` at 16 kHz mono float32 (the cache and new recordings alike)."""
    return decode_audio(path).samples


def _open_soundfile(path: Path) -> AudioStream:
    handle = sf.SoundFile(path)
    try:
        # Only RIFF/WAVE files can be checked (reopening FLAC/MP3 files cost time for nothing).
        truncated = handle.format in ("WAV", "WAVEX") and wav_is_truncated(path)
        blocks = _soundfile_blocks(handle, path)
        first = next(blocks)  # errors of a file libsndfile cannot decode surface here
    except BaseException:
        handle.close()
        raise
    return AudioStream(path, handle.samplerate, handle.channels, truncated,
                       _prepend(first, blocks))


def _soundfile_blocks(handle: sf.SoundFile,
                      path: Path) -> Generator[tuple[np.ndarray, int], None, None]:
    """(16 kHz mono block, non-finite count) pairs of a file libsndfile reads.

    A file of up to WHOLE_FILE_FRAMES frames is one block (read and resampled at once); a
    longer one is read BLOCK_FRAMES at a time and resampled as a stream, which gives the
    samples of one resampling of the whole file.
    """
    with handle:
        rate = handle.samplerate
        if handle.frames <= WHOLE_FILE_FRAMES:
            data, non_finite = _zero_non_finite(handle.read(dtype="float32", always_2d=True))
            mono = downmix(data)
            if rate != SAMPLE_RATE and len(mono):
                mono = soxr.resample(mono, rate, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
            yield np.ascontiguousarray(mono, dtype=np.float32), non_finite
            return
        stream = (soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32",
                                      quality=RESAMPLE_QUALITY)
                  if rate != SAMPLE_RATE else None)
        while len(block := _read_frames(handle, path)):
            block, non_finite = _zero_non_finite(block)
            mono = downmix(block)
            mono = stream.resample_chunk(mono) if stream else mono
            yield np.ascontiguousarray(mono, dtype=np.float32), non_finite
        if stream:
            yield stream.resample_chunk(np.empty(0, dtype=np.float32), last=True), 0


def _read_frames(handle: sf.SoundFile, path: Path) -> np.ndarray:
    """The next BLOCK_FRAMES frames; a read error past the start names the file and where."""
    position = handle.tell()
    try:
        return handle.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        if position == 0:
            raise  # nothing decoded yet: open_audio tries ffmpeg instead
        raise AudioDecodeError(
            f"{path}: decoding stopped at {position / handle.samplerate:.1f} s ({err}); the "
            "file may be damaged. Convert it again from the original recording.") from err


def _prepend(first: tuple[np.ndarray, int], rest: Generator[tuple[np.ndarray, int], None, None]
             ) -> Generator[tuple[np.ndarray, int], None, None]:
    """``first``, then the items of ``rest``; closing this closes ``rest``."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()


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


def _open_ffmpeg(path: Path, cause: Exception) -> AudioStream:
    """Decode ``path`` with the ffmpeg command, reading its 16 kHz mono output from a pipe."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError(
            f"{path}: cannot be read as audio ({cause}). If it is a format such as m4a, "
            "install ffmpeg (e.g. `apt-get install ffmpeg`) and run the import again."
        ) from cause
    command = ffmpeg_decode_command(ffmpeg, path)
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty ffmpeg cannot block
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=errors, bufsize=0)
    except OSError as err:
        errors.close()
        raise AudioDecodeError(f"{path}: ffmpeg could not be started ({err}).") from err
    blocks = _ffmpeg_blocks(path, process, errors, cause)
    first = next(blocks, None)  # a file ffmpeg cannot read (or refuses) fails here
    rate, channels = _ffprobe_format(path)  # what the source was like
    return AudioStream(path, rate, channels, False,
                       blocks if first is None else _prepend(first, blocks))


def ffmpeg_decode_command(ffmpeg: str, path: Path) -> list[str]:
    """The ffmpeg command that writes ``path`` to stdout as 16 kHz mono float32 (f32le)."""
    # ffmpeg resamples to SAMPLE_RATE and downmixes itself. Its stereo-to-mono matrix is
    # 0.707 (L + R): 3 dB above the channel mean libsndfile files get, and past full scale
    # for loud stereo. rematrix_maxval 1 scales the matrix to sum to 1, the mean for stereo.
    return [ffmpeg, "-nostdin", "-v", "error", *_ffmpeg_input(path), "-vn", "-ac", "1",
            "-rematrix_maxval", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"]


def _ffmpeg_input(path: Path) -> list[str]:
    """The input options and ``-i``: this one file, through single-file demuxers only.

    The ``file:`` prefix keeps a name such as ``concat:a|b`` from being read as a protocol.
    """
    return [*FFMPEG_INPUT_OPTIONS, "-i", f"file:{path}"]


def _ffmpeg_blocks(path: Path, process: subprocess.Popen, errors: IO[bytes], cause: Exception
                   ) -> Generator[tuple[np.ndarray, int], None, None]:
    """(block, non-finite count) pairs of ffmpeg's f32le output, FFMPEG_BLOCK_BYTES at a time.

    Raises:
        AudioDecodeError: ffmpeg failed, gave no samples, or gave nothing for
            FFMPEG_TIMEOUT_S seconds.
    """
    produced, block_bytes = 0, max(4, FFMPEG_BLOCK_BYTES - FFMPEG_BLOCK_BYTES % 4)
    try:
        while size := _fill(process.stdout, buffer := bytearray(block_bytes), path):
            samples = np.frombuffer(buffer, dtype="<f4", count=size // 4)
            if size < len(buffer):  # the last block: do not keep the whole buffer alive
                samples = samples.copy()
            produced += len(samples)
            yield _zero_non_finite(samples)
        if process.wait(timeout=FFMPEG_TIMEOUT_S) != 0 or not produced:
            raise AudioDecodeError(_ffmpeg_failure(path, errors)) from cause
    except subprocess.TimeoutExpired as err:
        raise AudioDecodeError(f"{path}: ffmpeg did not finish within {FFMPEG_TIMEOUT_S} s "
                               "of its last output.") from err
    finally:
        if process.poll() is None:  # the reader stopped early, or ffmpeg hangs
            process.kill()
            process.wait()
        process.stdout.close()
        errors.close()


def _fill(pipe: IO[bytes], buffer: bytearray, path: Path) -> int:
    """Read ``pipe`` into ``buffer`` until it is full or the pipe ends; the bytes read.

    Raises:
        AudioDecodeError: nothing came for FFMPEG_TIMEOUT_S seconds (ffmpeg hangs).
    """
    view, filled = memoryview(buffer), 0
    while filled < len(buffer):
        if os.name == "posix":  # select() takes pipes only there
            ready, _, _ = select.select([pipe], [], [], FFMPEG_TIMEOUT_S)
            if not ready:
                raise AudioDecodeError(f"{path}: ffmpeg gave no audio for {FFMPEG_TIMEOUT_S} s.")
        count = pipe.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


def _ffmpeg_failure(path: Path, errors: IO[bytes]) -> str:
    """The message for a file ffmpeg could not decode (or was not allowed to open)."""
    errors.seek(0)
    text = errors.read()[-65536:].decode("utf-8", "replace")
    if "not on whitelist" in text:
        found = re.search(r"\[(\w+) @ [^\]]*\] Format not on whitelist", text)
        kind = f"a {found.group(1)!r} file" if found else "a file that points elsewhere"
        return (f"{path}: refused: ffmpeg recognises it as {kind}, not as a recording stored "
                "in the file itself. Playlists and file lists (hls, concat) would make it read "
                "other files on this computer, so the workbench does not open them. Use the "
                "original recording, or convert it to WAV or FLAC.")
    lines = text.strip().splitlines()
    reason = lines[-1] if lines else "no audio stream"
    return f"{path}: not readable as audio ({reason})."


def _ffprobe_format(path: Path) -> tuple[int, int]:
    """Original sample rate and channel count of the first audio stream (0 if unknown)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return 0, 0
    command = [ffprobe, "-v", "error", *_ffmpeg_input(path), "-select_streams", "a:0",
               "-show_entries", "stream=sample_rate,channels", "-of", "csv=p=0"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return 0, 0
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
    meter = SignalMeter()
    meter.add(samples)
    return meter.stats()


class SignalMeter:
    """:func:`signal_stats` of samples that arrive block by block.

    For one block the figures are exactly those of numpy's reductions over it; over several
    the RMS differs from one pass over the whole only by float64 rounding.
    """

    def __init__(self) -> None:
        self.count = 0
        self.peak = 0.0
        self.sum_squares = 0.0
        self.clipped = 0

    def add(self, samples: np.ndarray) -> None:
        """Take the next samples into account."""
        if len(samples) == 0:
            return
        magnitude = np.abs(samples)
        self.peak = max(self.peak, float(magnitude.max()))
        self.sum_squares += float(np.sum(np.square(samples, dtype=np.float64)))
        self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
        self.count += len(samples)

    def stats(self) -> dict[str, float]:
        """Peak, RMS level in dBFS and share of clipped samples so far."""
        if self.count == 0:
            return {"peak": 0.0, "rms_db": -120.0, "clipped_fraction": 0.0}
        rms = float(np.sqrt(self.sum_squares / self.count))
        return {
            "peak": self.peak,
            "rms_db": float(20 * np.log10(max(rms, 1e-6))),
            "clipped_fraction": self.clipped / self.count,
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


class ClipWriter:
    """A cached clip written as its samples arrive, hashed and measured on the way.

    The file has the bytes :func:`write_clip` gives for all the samples together, ``sha1`` is
    their :func:`content_hash` and ``stats()`` their :func:`signal_stats`. The first block is
    held back: a clip that comes in one block is written in one call; a longer one gets a
    placeholder header, patched with the sizes when it is finished.

    Args:
        path: The clip to write (its folder is created).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.num_samples = 0
        self.meter = SignalMeter()
        self._sha1 = hashlib.sha1()
        self._held: np.ndarray | None = None
        self._handle: IO[bytes] | None = None

    def add(self, samples: np.ndarray) -> None:
        """Append 16 kHz float samples to the clip.

        Raises:
            AudioDecodeError: the clip grows too long for a WAV file.
        """
        pcm = pcm16(samples)
        wav_header(self.num_samples + len(pcm))  # refuses a clip too long, before writing it
        self._sha1.update(memoryview(pcm).cast("B"))
        self.meter.add(samples)
        self.num_samples += len(pcm)
        if self._handle is None and self._held is None:
            self._held = pcm
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "wb")  # closed by finish() or discard()
            self._handle.write(wav_header(0))
            self._handle.write(memoryview(self._held).cast("B"))
            self._held = None
        self._handle.write(memoryview(pcm).cast("B"))

    def finish(self) -> str:
        """Write what is held, patch the header and close; the clip's SHA-1."""
        if self._handle is None:
            write_pcm16(self.path, self._held if self._held is not None
                        else np.empty(0, dtype="<i2"))
            self._held = None
        else:
            self._handle.seek(0)
            self._handle.write(wav_header(self.num_samples))
            self._handle.close()
            self._handle = None
        return self.sha1

    def discard(self) -> None:
        """Close and remove whatever was written."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._held = None
        self.path.unlink(missing_ok=True)

    @property
    def sha1(self) -> str:
        """SHA-1 of the 16-bit samples added so far (:func:`pcm16_hash`)."""
        return self._sha1.hexdigest()

    @property
    def duration(self) -> float:
        return self.num_samples / SAMPLE_RATE

    def stats(self) -> dict[str, float]:
        """:func:`signal_stats` of the samples added so far."""
        return self.meter.stats()
