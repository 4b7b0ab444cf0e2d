"""Audio in and out: any file or array in, float32 tensors of a known rate and channel count out.

Waveforms are ``torch.float32`` tensors of shape ``(channels, samples)`` with samples in [-1, 1] (full scale).
Every failure is an :class:`~bisep.errors.AudioError` subclass whose message is one line naming the file and
the problem, so the command line can print it as is.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile
import soxr
import torch

from bisep.errors import AudioError
from bisep.files import atomic_path

READABLE_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64")
WRITABLE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
DEFAULT_MAX_SECONDS = 4 * 3600.0
BLOCK_FRAMES = 1 << 16  # frames per streamed block: 1.4 s at 48 kHz
SILENCE_PEAK_DB = -80.0
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000

AudioSource = str | Path | BinaryIO
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


class MissingAudio(AudioError):
    pass


class UnsupportedAudioFormat(AudioError):
    pass


class CorruptAudio(AudioError):
    pass


class EmptyAudio(AudioError):
    pass


class SilentAudio(AudioError):
    pass


class NonFiniteAudio(AudioError):
    pass


class AudioTooLong(AudioError):
    pass


def describe(source: AudioSource | None) -> str:
    """The name an error message uses for a path or a file object."""
    if source is None:
        return "<array>"
    if isinstance(source, (str, Path)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def load_audio(
    source: AudioSource,
    sample_rate: int | None = None,
    channels: int | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    reject_silent: bool = False,
) -> tuple[torch.Tensor, int]:
    """Read wav/flac/ogg/mp3/... from a path or file object.

    Returns ``(waveform, rate)``: waveform ``(channels, samples)`` float32, converted to ``sample_rate`` (soxr,
    very high quality) and ``channels`` when given, else as stored. ``max_seconds`` is checked from the header
    before decoding, so a huge file is refused without reading it.
    """
    name = describe(source)
    probe_audio(source, max_seconds)
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
        raise CorruptAudio(f"{name}: corrupt audio data ({_first_line(error)})") from None
    if data.shape[0] == 0:
        raise EmptyAudio(f"{name}: no audio samples")
    return prepare_waveform(data.T, rate, sample_rate, channels, name=name, reject_silent=reject_silent), (
        sample_rate or rate
    )


def probe_audio(source: AudioSource, max_seconds: float | None = DEFAULT_MAX_SECONDS):
    """Check a file from its header alone (present, readable, plausible rate, not empty, not too long) and
    return its ``soundfile`` info (``samplerate``, ``channels``, ``frames``) without decoding the samples."""
    name = describe(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise MissingAudio(f"{name}: file not found")
        if path.is_dir():
            raise MissingAudio(f"{name}: is a folder, not an audio file")
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
                "a special file"
            raise UnsupportedAudioFormat(f"{name}: is {kind}, not a regular file; bisep reads audio files")
        if path.stat().st_size == 0:
            raise EmptyAudio(f"{name}: file is empty (0 bytes)")
    try:
        with quiet_decoder():
            info = soundfile.info(source)
    except soundfile.LibsndfileError as error:
        suffix = Path(name).suffix.lower()
        if suffix and suffix not in READABLE_SUFFIXES:
            raise UnsupportedAudioFormat(
                f"{name}: unsupported format '{suffix}' (readable: {', '.join(READABLE_SUFFIXES)})"
            ) from None
        raise CorruptAudio(f"{name}: unreadable or corrupt audio ({_decoder_reason(error, suffix)})") from None
    finally:
        _rewind(source)
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        raise CorruptAudio(f"{name}: implausible sample rate {info.samplerate} Hz")
    if info.frames == 0:
        raise EmptyAudio(f"{name}: no audio samples")
    if max_seconds is not None and info.frames / info.samplerate > max_seconds:
        raise AudioTooLong(
            f"{name}: {info.frames / info.samplerate:.1f} s is longer than the limit of {max_seconds:.0f} s"
        )
    return info


def prepare_waveform(
    waveform: np.ndarray | torch.Tensor,
    rate: int,
    sample_rate: int | None = None,
    channels: int | None = None,
    name: str = "<array>",
    reject_silent: bool = False,
) -> torch.Tensor:
    """Validate an in-memory waveform ``(samples,)`` or ``(channels, samples)`` and convert rate and channels."""
    array = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise AudioError(f"{name}: expected (samples,) or (channels, samples), got shape {tuple(array.shape)}")
    if array.shape[1] == 0 or array.shape[0] == 0:
        raise EmptyAudio(f"{name}: no audio samples")
    if not np.issubdtype(array.dtype, np.number):
        raise AudioError(f"{name}: samples must be numbers, got {array.dtype}")
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - finite.sum())
        raise NonFiniteAudio(f"{name}: {bad} NaN or infinite samples")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: unsupported sample rate {rate} Hz")
    if reject_silent and peak_db(array) < SILENCE_PEAK_DB:
        raise SilentAudio(f"{name}: audio is silent (peak below {SILENCE_PEAK_DB:.0f} dBFS)")
    array = convert_channels(array, channels, name) if channels else array
    if sample_rate and sample_rate != rate:
        array = resample_numpy(array, rate, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def convert_channels(array: np.ndarray, channels: int, name: str = "<array>") -> np.ndarray:
    """``(C, T)`` -> ``(channels, T)``: down-mix by averaging to mono, take the first channels, or copy mono."""
    have = array.shape[0]
    if have == channels:
        return array
    if channels == 1:
        return array.mean(axis=0, keepdims=True)
    if have > channels:
        return array[:channels]
    if have == 1:
        return np.repeat(array, channels, axis=0)
    raise AudioError(f"{name}: cannot make {channels} channels from {have}")


def resample_numpy(array: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of ``(C, T)`` float32 with soxr (very high quality), for I/O, not gradients."""
    if rate == new_rate:
        return array
    return soxr.resample(np.ascontiguousarray(array.T), rate, new_rate, quality="VHQ").T


def fade_edges(audio: np.ndarray, samples: int) -> np.ndarray:
    """A copy of 1-D ``audio`` with raised-cosine fades of ``samples`` at both ends (at most half its length each),
    so a piece cut from a longer recording starts and ends without a click."""
    samples = min(samples, audio.size // 2)
    if samples < 1:
        return audio.copy()
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, samples))
    audio = audio.copy()
    audio[:samples] *= ramp
    audio[-samples:] *= ramp[::-1]
    return audio


def peak_db(array: np.ndarray | torch.Tensor) -> float:
    peak = float(np.abs(np.asarray(array)).max()) if np.asarray(array).size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def save_audio(
    path: str | Path,
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write ``(samples,)`` or ``(channels, samples)`` atomically; format from the suffix (wav, flac, ogg, mp3).

    Integer formats (16-bit PCM by default for wav and flac) clip at full scale rather than wrap around.
    """
    array = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    array = np.atleast_2d(array).astype(np.float32, copy=False)
    with AudioWriter(path, sample_rate, array.shape[0], subtype) as writer:
        writer.write(array)
    return Path(path)


class AudioReader:
    """A file read block by block: ``rate``, ``channels`` and ``frames`` (as the header declares) known up front,
    then :meth:`blocks` yields ``(channels, n)`` float32 arrays. Decoded frames are counted as they arrive, so a
    header that understates the length cannot get past ``max_seconds`` or ``max_samples`` (frames x channels).
    """

    def __init__(self, source: AudioSource, max_seconds: float | None = DEFAULT_MAX_SECONDS,
                 max_samples: int | None = None, block_frames: int | None = None):
        self.name = describe(source)
        info = probe_audio(source, max_seconds)
        self.rate, self.channels, self.frames = info.samplerate, info.channels, info.frames
        self.max_seconds, self.max_samples = max_seconds, max_samples
        self.block_frames = block_frames or BLOCK_FRAMES
        self.peak = 0.0
        self.frames_read = 0
        if max_samples is not None and self.frames * self.channels > max_samples:
            raise AudioTooLong(self._budget_message(self.frames))
        try:
            with quiet_decoder():
                self._file = soundfile.SoundFile(source)
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise CorruptAudio(f"{self.name}: unreadable or corrupt audio ({_first_line(error)})") from None

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()

    def blocks(self) -> Iterator[np.ndarray]:
        """``(channels, n)`` float32 blocks in order; raises on corrupt data, NaN, or a length over the limits."""
        while True:
            try:
                data = self._file.read(self.block_frames, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError, ValueError) as error:
                raise CorruptAudio(f"{self.name}: corrupt audio data ({_first_line(error)})") from None
            if data.shape[0] == 0:
                break
            self.frames_read += data.shape[0]
            if self.max_seconds is not None and self.frames_read > self.max_seconds * self.rate:
                raise AudioTooLong(f"{self.name}: longer than the limit of {self.max_seconds:.0f} s")
            if self.max_samples is not None and self.frames_read * self.channels > self.max_samples:
                raise AudioTooLong(self._budget_message(self.frames_read, "or more"))
            if not np.isfinite(data).all():
                raise NonFiniteAudio(f"{self.name}: NaN or infinite samples")
            self.peak = max(self.peak, float(np.abs(data).max()))
            yield data.T
        if self.frames_read == 0:
            raise EmptyAudio(f"{self.name}: no audio samples")

    def _budget_message(self, frames: int, more: str = "") -> str:
        samples = f"{frames * self.channels / 1e6:.1f} million samples {more}".strip()
        return (f"{self.name}: {samples} ({self.channels} channels x {frames / self.rate:.1f} s) is more than the "
                f"limit of {self.max_samples / 1e6:.1f} million")


class AudioWriter:
    """Writes ``(channels, n)`` blocks to ``path`` (format from the suffix) under a temporary name, renamed on a
    clean :meth:`close` and removed on failure, so a reader never sees half a file. Integer formats clip."""

    def __init__(self, path: str | Path, sample_rate: int, channels: int, subtype: str | None = None):
        self.path = Path(path)
        file_format = WRITABLE_FORMATS.get(self.path.suffix.lower())
        if file_format is None:
            raise UnsupportedAudioFormat(
                f"{self.path}: cannot write '{self.path.suffix}' (writable: {', '.join(WRITABLE_FORMATS)})")
        if subtype is None and file_format in ("WAV", "FLAC"):
            subtype = "PCM_16"
        self._clip = subtype is None or subtype.startswith("PCM") or file_format in ("MP3", "OGG")
        self._atomic = atomic_path(self.path)
        temporary = self._atomic.__enter__()
        try:
            self._file = soundfile.SoundFile(temporary, "w", sample_rate, channels, subtype, format=file_format)
        except BaseException:
            self._atomic.__exit__(*sys.exc_info())
            raise
        # libsndfile stamps float files with a PEAK chunk holding the time of writing; without it the same
        # samples always give the same bytes.
        soundfile._snd.sf_command(self._file._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)

    def write(self, block: np.ndarray | torch.Tensor) -> None:
        """Append ``(channels, n)`` samples."""
        array = block.detach().cpu().numpy() if isinstance(block, torch.Tensor) else np.asarray(block)
        array = np.atleast_2d(array).astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise NonFiniteAudio(f"{self.path}: refusing to write NaN or infinite samples")
        self._file.write(np.clip(array, -1.0, 1.0).T if self._clip else array.T)

    def close(self) -> Path:
        self._file.close()
        self._atomic.__exit__(None, None, None)
        return self.path

    def discard(self) -> None:
        """Close and remove the partial file (after an error)."""
        self._file.close()
        with contextlib.suppress(RuntimeError):
            self._atomic.__exit__(RuntimeError, RuntimeError("discarded"), None)

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close() if kind is None else self.discard()


class BlockResampler:
    """Streaming band-limited resampling (soxr, very high quality) of ``(channels, n)`` blocks: the blocks out,
    concatenated, equal :func:`resample_numpy` of the blocks in, concatenated. Passes blocks through when the
    rates agree."""

    def __init__(self, rate: int, new_rate: int, channels: int):
        self.rate, self.new_rate, self.channels = rate, new_rate, channels
        self._stream = None if rate == new_rate else soxr.ResampleStream(rate, new_rate, channels, dtype="float32",
                                                                         quality="VHQ")

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """``(channels, n)`` -> ``(channels, m)``; ``last=True`` flushes what soxr still holds."""
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=last)
        return out.T


@contextlib.contextmanager
def quiet_decoder() -> Iterator[None]:
    """Hold back what C decoders print on the process's stderr (mpg123's "Note: Illegal Audio-MPEG-Header"
    lines) while a file is opened, so bisep's own one-line error is all a user sees."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)



def _rewind(source: AudioSource) -> None:
    if hasattr(source, "seek"):
        source.seek(0)


def _decoder_reason(error: BaseException, suffix: str) -> str:
    """libsndfile's reason, unless it is its guess for any file no decoder recognised (it calls a garbage MP3
    "not a regular file (possibly a pipe?)"); a regular file that reaches here is simply not recognised."""
    reason = _first_line(error)
    if "not a regular file" in reason or "does not exist" in reason:
        kind = suffix.lstrip(".").upper() or "audio"
        return f"not a recognisable {kind} file"
    return reason


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
