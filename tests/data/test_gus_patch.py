"""Tests of the GUS patch reader on patches built byte by byte here, and on a FreePats file when installed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from bisep.data import gus_patch
from bisep.data.gus_patch import PatchError, parse_patch, play_note, read_patch

RATE = 16000
FREEPATS_PIANO = Path("/usr/share/midi/freepats/Tone_000/000_Acoustic_Grand_Piano.pat")


def _sample_header(data: bytes, modes: int, rate: int, root_mhz: int, low_mhz: int, high_mhz: int,
                   loop_bytes: tuple[int, int] = (0, 0)) -> bytes:
    header = struct.pack("<7sBIIIHIIIhB12s6sBHH", b"wave", 0, len(data), loop_bytes[0], loop_bytes[1], rate,
                         low_mhz, high_mhz, root_mhz, 0, 7, bytes(12), bytes(6), modes, 60, 1024)
    return header + bytes(36)


def _patch(samples: list[tuple[bytes, bytes]], magic: bytes = b"GF1PATCH110\0") -> bytes:
    """A one-instrument, one-layer patch: 129 + 63 + 47 header bytes, then each sample's header and data."""
    file_header = magic + b"ID#000002\0" + bytes(60) + bytes([1, 14, 0]) + struct.pack("<HHI", len(samples), 127, 0)
    file_header += bytes(129 - len(file_header))
    instrument = struct.pack("<H16sIB", 0, b"Test Instrument", 0, 1) + bytes(40)
    layer = struct.pack("<BBIB", 0, 0, 0, len(samples)) + bytes(40)
    body = b"".join(header + data for header, data in samples)
    return file_header + instrument + layer + body


def test_header_sizes_follow_the_format():
    assert gus_patch._SAMPLE_HEADER.size == gus_patch.SAMPLE_HEADER_BYTES == 96
    assert len(_patch([])) == 129 + 63 + 47


def test_reads_16_bit_signed_and_8_bit_unsigned_samples_with_loops_in_samples():
    signed16 = np.array([0, 16384, -16384, 32767, -32768], "<i2").tobytes()
    unsigned8 = bytes([128, 192, 64, 255, 0])
    raw = _patch([
        (_sample_header(signed16, gus_patch.MODE_16_BIT | gus_patch.MODE_LOOPING, 44100, 440000, 400000, 500000,
                        (2, 8)), signed16),
        (_sample_header(unsigned8, gus_patch.MODE_UNSIGNED, 22050, 880000, 500001, 2000000), unsigned8),
    ])
    patch = parse_patch(raw)
    assert patch.name == "Test Instrument"
    low, high = patch.samples
    np.testing.assert_allclose(low.data, [0, 0.5, -0.5, 32767 / 32768, -1.0])
    assert (low.rate, low.root_hz, low.low_hz, low.high_hz, low.loop) == (44100, 440.0, 400.0, 500.0, (1, 4))
    np.testing.assert_allclose(high.data, [0, 0.5, -0.5, 127 / 128, -1.0])
    assert high.loop is None and high.root_hz == 880.0
    assert patch.sample_for(440.0) is low and patch.sample_for(900.0) is high
    assert patch.sample_for(5000.0) is high  # outside every range: the nearest root in pitch


def test_refuses_what_is_not_a_patch():
    with pytest.raises(PatchError, match="not a GUS patch"):
        parse_patch(b"RIFF" + bytes(400))
    with pytest.raises(PatchError, match="too short"):
        parse_patch(b"GF1PATCH110\0")
    data = np.zeros(100, "<i2").tobytes()
    truncated = _patch([(_sample_header(data, gus_patch.MODE_16_BIT, 44100, 440000, 0, 10**7), data)])[:-50]
    with pytest.raises(PatchError, match="past the end"):
        parse_patch(truncated)


def test_a_looped_note_holds_its_pitch_for_its_length():
    """A 440 Hz recording with a one-period loop, played at A5, sounds at 880 Hz for the whole note."""
    rate, period = 44000, 100  # exactly 440 Hz: 100 samples per period
    wave = (0.8 * np.sin(2 * np.pi * np.arange(4 * period) / period) * 32767).astype("<i2").tobytes()
    header = _sample_header(wave, gus_patch.MODE_16_BIT | gus_patch.MODE_LOOPING, rate, 440000, 0, 10**7,
                            (2 * period, 4 * period))
    patch = parse_patch(_patch([(header, wave)], magic=b"GF1PATCH100\0"))
    note = play_note(patch, 81, seconds=1.0, sample_rate=RATE, release=0.1)
    assert note.size == round(1.1 * RATE)
    held = note[RATE // 10:RATE]
    spectrum = np.abs(np.fft.rfft(held * np.hanning(held.size)))
    assert np.fft.rfftfreq(held.size, 1 / RATE)[spectrum.argmax()] == pytest.approx(880.0, abs=3.0)
    assert np.abs(note[-100:]).max() < 0.01  # released to silence


@pytest.mark.skipif(not FREEPATS_PIANO.is_file(), reason="Debian package freepats not installed")
def test_reads_a_freepats_piano():
    patch = read_patch(FREEPATS_PIANO)
    assert len(patch.samples) >= 5
    roots = sorted(sample.root_hz for sample in patch.samples)
    assert roots[0] < 100 < 1000 < roots[-1]
    note = play_note(patch, 60, 0.5, RATE)
    assert 0.01 < np.abs(note).max() <= 1.0
