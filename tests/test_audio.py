import io

import numpy as np
import pytest
import soundfile
import torch

from bisep import audio
from conftest import tone


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_formats_round_trip(tmp_path, suffix):
    path = audio.save_audio(tmp_path / f"x{suffix}", tone(seconds=0.5), 16000)
    waveform, rate = audio.load_audio(path)
    assert rate == 16000 and waveform.dtype == torch.float32 and waveform.shape[0] == 1
    assert abs(waveform.shape[1] - 8000) <= 1200  # mp3 pads its frames
    if suffix in (".wav", ".flac"):
        assert np.allclose(waveform[0].numpy(), tone(seconds=0.5), atol=1e-4)


def test_file_object_and_conversion(wav_file):
    with open(wav_file, "rb") as handle:
        waveform, rate = audio.load_audio(handle, sample_rate=48000, channels=2)
    assert rate == 48000 and waveform.shape == (2, 48000)
    assert torch.equal(waveform[0], waveform[1])


def test_stereo_downmix_and_odd_rate(tmp_path):
    left, right = tone(300, sample_rate=11025), tone(500, sample_rate=11025)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], 1), 11025)
    waveform, rate = audio.load_audio(tmp_path / "s.wav", sample_rate=16000, channels=1)
    assert waveform.shape == (1, 16000) and rate == 16000
    native, _ = audio.load_audio(tmp_path / "s.wav")
    assert native.shape == (2, 11025)


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = audio.save_audio(tmp_path / "out.wav", tone(), 16000)
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile.SoundFile, "write", broken_write)
    with pytest.raises(OSError):
        audio.save_audio(path, tone(880), 16000)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_save_clips_instead_of_wrapping(tmp_path):
    path = audio.save_audio(tmp_path / "loud.wav", np.full(100, 1.7, np.float32), 16000)
    waveform, _ = audio.load_audio(path)
    assert waveform.min() > 0.99


def test_save_refuses_nan_and_unknown_suffix(tmp_path):
    with pytest.raises(audio.NonFiniteAudio):
        audio.save_audio(tmp_path / "nan.wav", np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(audio.UnsupportedAudioFormat):
        audio.save_audio(tmp_path / "x.xyz", tone(), 16000)


def test_prepare_waveform_checks_shape_and_values():
    with pytest.raises(audio.AudioError, match="shape"):
        audio.prepare_waveform(np.zeros((1, 2, 3)), 16000)
    with pytest.raises(audio.NonFiniteAudio):
        audio.prepare_waveform(np.array([0.0, np.inf]), 16000)
    with pytest.raises(audio.SilentAudio):
        audio.prepare_waveform(np.zeros(100), 16000, reject_silent=True)
    assert audio.prepare_waveform(np.zeros(100), 16000).shape == (1, 100)


def test_in_memory_file_without_name():
    buffer = io.BytesIO(b"not audio at all" * 10)
    with pytest.raises(audio.CorruptAudio, match="<stream>"):
        audio.load_audio(buffer)


def test_float_files_are_byte_identical_for_identical_samples(tmp_path):
    import time

    first = audio.save_audio(tmp_path / "a.wav", tone(), 16000, subtype="FLOAT").read_bytes()
    time.sleep(1.1)
    assert audio.save_audio(tmp_path / "b.wav", tone(), 16000, subtype="FLOAT").read_bytes() == first
