"""Audio in and out: any file or array in, float32 tensors of a known rate and channel count out.

Waveforms are ``torch.float32`` tensors of shape ``(channels, samples)`` with samples in [-1, 1] (full scale).
Every failure is an :class:`~bisep.errors.AudioError` subclass whose message is one line naming the file and
the problem, so the command line can print it as is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import soxr
import torch

from bisep.errors import AudioError
from bisep.files import atomic_path

READABLE_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64")
WRITABLE_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
DEFAULT_MAX_SECONDS = 4 * 3600.0
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
        if path.stat().st_size == 0:
            raise EmptyAudio(f"{name}: file is empty (0 bytes)")
    try:
        info = soundfile.info(source)
    except soundfile.LibsndfileError as error:
        suffix = Path(name).suffix.lower()
        if suffix and suffix not in READABLE_SUFFIXES:
            raise UnsupportedAudioFormat(
                f"{name}: unsupported format '{suffix}' (readable: {', '.join(READABLE_SUFFIXES)})"
            ) from None
        raise CorruptAudio(f"{name}: unreadable or corrupt audio ({_first_line(error)})") from None
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
    path = Path(path)
    file_format = WRITABLE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise UnsupportedAudioFormat(
            f"{path}: cannot write '{path.suffix}' (writable: {', '.join(WRITABLE_FORMATS)})"
        )
    array = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    array = np.atleast_2d(array).astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise NonFiniteAudio(f"{path}: refusing to write NaN or infinite samples")
    if subtype is None and file_format in ("WAV", "FLAC"):
        subtype = "PCM_16"
    if subtype is None or subtype.startswith("PCM") or file_format in ("MP3", "OGG"):
        array = np.clip(array, -1.0, 1.0)
    with atomic_path(path) as temporary:
        with soundfile.SoundFile(temporary, "w", sample_rate, array.shape[0], subtype, format=file_format) as out:
            # libsndfile stamps float files with a PEAK chunk holding the time of writing; without it the same
            # samples always give the same bytes.
            soundfile._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
            out.write(array.T)
    return path


def _rewind(source: AudioSource) -> None:
    if hasattr(source, "seek"):
        source.seek(0)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
