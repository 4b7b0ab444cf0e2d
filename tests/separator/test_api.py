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


def one_shot(separator, array, rate, prompts, segment_seconds, overlap=0.25):
    """The computation on the whole waveform at once: resample, cross-faded segments, resample back."""
    import torch

    from bisep.audio import resample_numpy
    from bisep.separator.apply import apply_segmented

    text = separator.grounding.encode_text(prompts)
    with torch.inference_mode():
        model_input = torch.from_numpy(resample_numpy(array, rate, separator.sample_rate))
        outputs = apply_segmented(lambda pieces: separator._run(pieces, text), model_input,
                                  separator.segmentation(segment_seconds, overlap))
    estimates = np.stack([resample_numpy(e, separator.sample_rate, rate) for e in outputs.transpose(0, 1).numpy()])
    estimates = estimates[..., :array.shape[-1]]
    return np.pad(estimates, [(0, 0), (0, 0), (0, array.shape[-1] - estimates.shape[-1])])


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
@pytest.mark.parametrize("block", [97, 4000, 100_000])
def test_streamed_outputs_equal_the_one_shot_outputs(separator, rate, block):
    stereo = np.stack([tone(300, 3.3, rate) + tone(1200, 3.3, rate) * 0.3, tone(700, 3.3, rate)])
    prompts = ["a flute", "rain"]
    expected = one_shot(separator, stereo, rate, prompts, segment_seconds=0.7)
    stream = separator.stream(rate, 2, prompts, residual=True, segment_seconds=0.7)
    pieces = [piece for start in range(0, stereo.shape[-1], block)
              for piece in stream.push(stereo[:, start:start + block])] + list(stream.finish())
    streamed = np.concatenate(pieces, axis=-1)
    assert streamed.shape == (3, 2, stereo.shape[-1])
    np.testing.assert_allclose(streamed[:2], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(streamed[2], stereo - expected.sum(0), atol=1e-5, rtol=0)


def test_streamed_output_comes_in_short_pieces(separator, monkeypatch):
    import bisep.separator.api as api

    monkeypatch.setattr(api, "OUTPUT_PIECE_SECONDS", 0.2)  # a hop of 0.5 s: each hop leaves in 3 pieces
    rate = 48000
    stereo = np.stack([tone(300, 3.3, rate), tone(700, 3.3, rate)])
    stream = separator.stream(rate, 2, ["a flute"], residual=True, segment_seconds=0.7)
    pieces = list(stream.push(stereo)) + list(stream.finish())
    assert sum(piece.shape[-1] for piece in pieces) == stereo.shape[-1]
    assert max(piece.shape[-1] for piece in pieces) <= 0.2 * rate * 1.05


def test_separate_file_streams_into_its_targets(separator, tmp_path, monkeypatch):
    import bisep.audio

    monkeypatch.setattr(bisep.audio, "BLOCK_FRAMES", 1000)  # many blocks per segment
    stereo = np.stack([tone(300, 2.5, 44100), tone(900, 2.5, 44100)])
    soundfile.write(tmp_path / "in.wav", stereo.T, 44100, subtype="FLOAT")
    targets = [tmp_path / "a.wav", tmp_path / "residual.wav"]
    summary = separator.separate_file(tmp_path / "in.wav", ["a flute"], targets, residual=True, subtype="FLOAT",
                                      segment_seconds=0.8, copy_input=tmp_path / "copy.wav", max_rate=22050)
    assert (summary.sample_rate, summary.channels) == (22050, 2)
    from bisep.audio import resample_numpy

    resampled = resample_numpy(stereo, 44100, 22050)
    expected = one_shot(separator, resampled, 22050, ["a flute"], segment_seconds=0.8)[0]
    written = soundfile.read(tmp_path / "a.wav", dtype="float32")[0].T
    assert written.shape == resampled.shape == (2, summary.samples)
    np.testing.assert_allclose(written, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(soundfile.read(tmp_path / "copy.wav", dtype="float32")[0].T, resampled, atol=1e-6)
    residual = soundfile.read(tmp_path / "residual.wav", dtype="float32")[0].T
    np.testing.assert_allclose(residual + written, resampled, atol=1e-5)


def test_a_failed_file_leaves_no_target(separator, tmp_path):
    soundfile.write(tmp_path / "nan.wav", np.array([0.1, np.nan] * 8000, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(BisepError, match="NaN"):
        separator.separate_file(tmp_path / "nan.wav", ["x"], [tmp_path / "x.wav"])
    assert list(tmp_path.iterdir()) == [tmp_path / "nan.wav"]


def test_decoded_samples_count_against_the_budget(separator, tmp_path):
    soundfile.write(tmp_path / "in.wav", np.zeros((16000, 4), np.float32), 16000)
    with pytest.raises(BisepError, match="limit of 0.1 million"):
        separator.separate_file(tmp_path / "in.wav", ["x"], [tmp_path / "x.wav"], max_samples=60_000)


def test_many_channels_and_prompts_run_in_bounded_batches_with_the_same_outputs(separator, monkeypatch):
    import bisep.separator.api as api

    calls = []
    original = Separator._run_batch

    def counted(self, pieces, text):
        calls.append(pieces.shape[0] * text.embedding.shape[0])
        return original(self, pieces, text)

    audio = np.stack([tone(200 + 100 * channel, 1.0) for channel in range(5)])
    prompts = ["a", "b", "c"]
    whole = separator.separate(audio, prompts, sample_rate=16000, segment_seconds=2.0)
    monkeypatch.setattr(api, "MAX_BATCH", 2)
    monkeypatch.setattr(Separator, "_run_batch", counted)
    batched = separator.separate(audio, prompts, sample_rate=16000, segment_seconds=2.0)
    assert max(calls) <= 2 and len(calls) == 5 * 2  # each channel alone, the prompts as 2 + 1
    for prompt in prompts:
        np.testing.assert_allclose(batched.sources[prompt], whole.sources[prompt], atol=1e-5, rtol=0)
