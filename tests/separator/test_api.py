import numpy as np
import pytest
import soundfile

from bisep.errors import BisepError
from bisep.separator.api import Separator
from conftest import tone


@pytest.fixture(scope="module")
def separator():
    return Separator.from_pretrained("unittest", device="cpu")


def test_outputs_match_the_input_rate_channels_and_length(separator, tmp_path):
    stereo = np.stack([tone(300, 1.3, 44100), tone(500, 1.3, 44100)])
    soundfile.write(tmp_path / "in.flac", stereo.T, 44100)
    result = separator.separate(tmp_path / "in.flac", ["a violin", "rain falling"], residual=True)
    assert result.sample_rate == 44100
    for waveform in result.sources.values():
        assert waveform.shape == stereo.shape and waveform.dtype == np.float32
    assert np.allclose(result.residual + sum(result.sources.values()), stereo, atol=1e-4)


def test_segments_cross_fade_without_clicks_on_a_pure_tone(separator):
    signal = tone(440, 3.0, 16000)
    whole = separator.separate(signal, ["a flute"], sample_rate=16000, segment_seconds=4.0).sources["a flute"][0]
    chunked = separator.separate(signal, ["a flute"], sample_rate=16000, segment_seconds=0.7,
                                 overlap=0.25).sources["a flute"][0]
    error_db = 10 * np.log10(np.sum((whole - chunked) ** 2) / np.sum(whole**2))
    assert error_db < -20
    steps = np.abs(np.diff(chunked[200:-200]))
    assert steps.max() < 4 * np.percentile(steps, 99.9)


def test_a_clip_that_fits_one_segment_is_unchanged_by_chunking_settings(separator):
    signal = tone(440, 1.0, 16000)
    a = separator.separate(signal, ["x"], sample_rate=16000, segment_seconds=2.0).sources["x"]
    b = separator.separate(signal, ["x"], sample_rate=16000, segment_seconds=5.0, overlap=0.5).sources["x"]
    assert np.array_equal(a, b)


def test_silent_input_warns_and_returns_silence(separator):
    with pytest.warns(UserWarning, match="silent"):
        result = separator.separate(np.zeros(16000, np.float32), ["a dog"], sample_rate=16000)
    assert result.silent_input and np.abs(result.sources["a dog"]).max() == 0


@pytest.mark.parametrize("prompts", [[""], ["  "], []])
def test_empty_prompts_are_refused(separator, prompts):
    with pytest.raises(BisepError):
        separator.separate(tone(), prompts, sample_rate=16000)


def test_short_input_and_bad_arguments(separator):
    out = separator.separate(tone(440, 0.01, 16000), ["x"], sample_rate=16000)
    assert out.sources["x"].shape == (1, 160)
    with pytest.raises(BisepError, match="sample_rate"):
        separator.separate(tone(), ["x"])
    with pytest.raises(BisepError, match="overlap"):
        separator.separate(tone(), ["x"], sample_rate=16000, overlap=1.0)


def test_unknown_model_and_corrupt_folder(tmp_path):
    with pytest.raises(BisepError, match="unknown separator model"):
        Separator.from_pretrained("no-such-model")
    (tmp_path / "config.json").write_text("{")
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(BisepError, match="not valid JSON"):
        Separator.from_pretrained(tmp_path)


def test_progress_counts_every_segment_with_all_channels_at_once(separator):
    stereo = np.stack([tone(300, 3.0, 16000), tone(500, 3.0, 16000)])
    calls = []
    separator.separate(stereo, ["x"], sample_rate=16000, segment_seconds=1.0, overlap=0.25,
                       progress=lambda done, total: calls.append((done, total)))
    segments = len(separator.segmentation(1.0, 0.25).starts(48000))
    assert segments > 1
    assert calls == [(done, segments) for done in range(1, segments + 1)]
