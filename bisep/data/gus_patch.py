"""Gravis UltraSound patches (``.pat``): read the samples of a GUS instrument and play notes with them.

FreePats and TiMidity++ use this format for sampled instruments. A file holds one instrument made of layers of
samples; each sample covers a key range, is recorded at a root frequency and may loop between two points so a
note can be held. Layout (little-endian): a 129-byte file header (``GF1PATCH110`` or ``GF1PATCH100``), a 63-byte
instrument header, a 47-byte layer header, then per sample a 96-byte header followed by its data.

Playing a note resamples the sample whose key range holds the note (soxr), repeating the loop while the key is
held; the patch's envelope and tremolo settings are ignored, so only the recording shapes the sound.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from bisep.errors import BisepError

FILE_HEADER_BYTES = 129
INSTRUMENT_HEADER_BYTES = 63
LAYER_HEADER_BYTES = 47
SAMPLE_HEADER_BYTES = 96
MAGICS = (b"GF1PATCH110\0", b"GF1PATCH100\0")

MODE_16_BIT = 0x01
MODE_UNSIGNED = 0x02
MODE_LOOPING = 0x04
MODE_PING_PONG = 0x08
MODE_REVERSE = 0x10

# name(7s) fractions(B) length loop_start loop_end(3I) rate(H) low high root frequencies(3I, mHz) tune(h)
# balance(B) envelope rates and offsets(12s) tremolo and vibrato(6s) modes(B) scale frequency and factor(2H)
_SAMPLE_HEADER = struct.Struct("<7sBIIIHIIIhB12s6sBHH36x")


class PatchError(BisepError):
    """A file that is not a readable GUS patch."""


@dataclass(frozen=True)
class PatchSample:
    """One sample of a patch: ``data`` float32 mono in [-1, 1] at ``rate`` Hz, recorded at ``root_hz``, used
    for notes from ``low_hz`` to ``high_hz``; ``loop`` is (start, end) in samples, or None."""

    data: np.ndarray
    rate: int
    root_hz: float
    low_hz: float
    high_hz: float
    loop: tuple[int, int] | None
    ping_pong: bool


@dataclass(frozen=True)
class Patch:
    name: str
    samples: tuple[PatchSample, ...]

    def sample_for(self, frequency: float) -> PatchSample:
        """The sample whose range holds ``frequency`` (Hz), else the one whose root is nearest in pitch."""
        inside = [s for s in self.samples if s.low_hz <= frequency <= s.high_hz]
        candidates = inside or self.samples
        return min(candidates, key=lambda s: abs(np.log2(frequency / s.root_hz)))


def read_patch(path: str | Path) -> Patch:
    """Parse a GUS patch file; raise :class:`PatchError` naming the file and what is wrong."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PatchError(f"{path}: cannot read ({error.strerror or error})") from None
    return parse_patch(raw, str(path))


def parse_patch(raw: bytes, name: str = "patch") -> Patch:
    if len(raw) < FILE_HEADER_BYTES + INSTRUMENT_HEADER_BYTES + LAYER_HEADER_BYTES:
        raise PatchError(f"{name}: too short for a GUS patch ({len(raw)} bytes)")
    if raw[:12] not in MAGICS:
        raise PatchError(f"{name}: not a GUS patch (no GF1PATCH110/100 signature)")
    instruments = raw[82]
    if instruments > 1:
        raise PatchError(f"{name}: holds {instruments} instruments; only single-instrument patches are read")
    instrument_name = raw[FILE_HEADER_BYTES + 2:FILE_HEADER_BYTES + 18].split(b"\0")[0].decode("latin-1").strip()
    layer = FILE_HEADER_BYTES + INSTRUMENT_HEADER_BYTES
    count = raw[layer + 6]
    position = layer + LAYER_HEADER_BYTES
    samples = []
    for index in range(count):
        if position + SAMPLE_HEADER_BYTES > len(raw):
            raise PatchError(f"{name}: sample {index} header runs past the end of the file")
        (_, _, length, loop_start, loop_end, rate, low, high, root, _, _, _, _, modes, _,
         _) = _SAMPLE_HEADER.unpack_from(raw, position)
        position += SAMPLE_HEADER_BYTES
        if position + length > len(raw):
            raise PatchError(f"{name}: sample {index} data runs past the end of the file")
        if rate == 0 or root == 0:
            raise PatchError(f"{name}: sample {index} has a zero sample rate or root frequency")
        data = _decode(raw[position:position + length], modes)
        position += length
        width = 2 if modes & MODE_16_BIT else 1
        if modes & MODE_REVERSE:
            data = data[::-1].copy()
        loop = None
        start, end = loop_start // width, loop_end // width
        if modes & MODE_LOOPING and 0 <= start < end <= data.size:
            loop = (start, end)
        samples.append(PatchSample(data, rate, root / 1000.0, low / 1000.0, high / 1000.0, loop,
                                   bool(modes & MODE_PING_PONG)))
    if not samples:
        raise PatchError(f"{name}: no samples")
    return Patch(instrument_name, tuple(samples))


def _decode(data: bytes, modes: int) -> np.ndarray:
    """Sample bytes -> float32 in [-1, 1]: 8 or 16 bit, signed or unsigned (offset binary)."""
    if modes & MODE_16_BIT:
        values = np.frombuffer(data[:len(data) // 2 * 2], "<u2" if modes & MODE_UNSIGNED else "<i2")
        offset, scale = (32768.0 if modes & MODE_UNSIGNED else 0.0), 32768.0
    else:
        values = np.frombuffer(data, np.uint8 if modes & MODE_UNSIGNED else np.int8)
        offset, scale = (128.0 if modes & MODE_UNSIGNED else 0.0), 128.0
    return ((values.astype(np.float32) - offset) / scale).astype(np.float32)


def key_frequency(key: int) -> float:
    """Equal-tempered frequency (Hz) of a MIDI key, A4 = key 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((key - 69) / 12.0)


def play_note(patch: Patch, key: int, seconds: float, sample_rate: int, release: float = 0.1) -> np.ndarray:
    """One note held ``seconds`` then released over ``release`` s: float32 ``(samples,)`` at ``sample_rate``.

    A looping sample repeats its loop for as long as the note is held; a sample without a loop plays out and
    stops early if it is shorter than the note.
    """
    frequency = key_frequency(key)
    sample = patch.sample_for(frequency)
    speed = frequency / sample.root_hz  # source samples consumed per recorded sample
    needed = int(np.ceil((seconds + release) * sample.rate * speed)) + 16
    source = _held(sample, needed)
    audio = soxr.resample(source, sample.rate * speed, sample_rate)
    length = min(audio.size, round((seconds + release) * sample_rate))
    audio = audio[:length].astype(np.float32)
    held = round(seconds * sample_rate)
    if length > held:
        audio[held:] *= np.linspace(1.0, 0.0, length - held, dtype=np.float32) ** 2
    return audio


def _held(sample: PatchSample, needed: int) -> np.ndarray:
    """The sample data with its loop repeated until it is at least ``needed`` samples long (if it loops)."""
    if sample.loop is None or sample.data.size >= needed:
        return sample.data
    start, end = sample.loop
    loop = sample.data[start:end]
    if sample.ping_pong:
        loop = np.concatenate([loop, loop[::-1]])
    repeats = int(np.ceil((needed - start) / loop.size))
    return np.concatenate([sample.data[:start], np.tile(loop, repeats)])
