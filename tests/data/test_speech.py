import ctypes
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import espeakng_loader
import numpy as np
import pytest

from bisep.data.sources import RenderResources, speech
from bisep.errors import SourceUnavailable

RESOURCES = RenderResources()
CAPTION_CONNECTIVES = {"and", "while", "with", "then", "as", "before", "after", "followed"}


def median_f0(audio: np.ndarray, sample_rate: int, lowest: float = 60.0, highest: float = 400.0) -> float:
    """Median fundamental frequency (Hz) of the voiced 40 ms frames of ``audio`` (samples,), by autocorrelation."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    starts = np.arange(0, len(audio) - frame, hop)
    frames = audio[starts[:, None] + np.arange(frame)] * np.hanning(frame)
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * frame)) ** 2)[:, :frame]
    shortest, longest = int(sample_rate / highest), int(sample_rate / lowest)
    lag = shortest + np.argmax(autocorrelation[:, shortest:longest], axis=1)
    energy = autocorrelation[:, 0]
    periodicity = autocorrelation[np.arange(len(lag)), lag] / np.maximum(energy, 1e-12)
    voiced = (periodicity > 0.5) & (energy > 0.01 * energy.max())
    return float(np.median(sample_rate / lag[voiced]))


def recipe(text="Good morning, Anna.", voice="en-US+m3", duration=2.0, **overrides):
    return {
        "family": "speech", "class": "male speech", "duration": duration, "text": text, "voice": voice,
        "pitch": 50, "pitch_range": 50, "rate_wpm": 175, "noise_seed": 7, **overrides,
    }


def test_phrasings_compose_into_captions():
    assert [c.name for c in speech.CLASSES] == ["male speech", "female speech"] == list(speech.VOICE_RANGES)
    for sound_class in speech.CLASSES:
        assert sound_class.family == "speech"
        assert len(sound_class.phrasings) >= 5 and len(sound_class.held_out_phrasings) >= 3
        every = sound_class.phrasings + sound_class.held_out_phrasings
        assert len(set(every)) == len(every)
        for phrasing in every:
            assert phrasing == phrasing.lower().strip() and phrasing[-1].isalpha()
            assert not CAPTION_CONNECTIVES & set(phrasing.split()), phrasing


def test_accents_and_variants_are_shipped():
    # eSpeak ignores an unknown "+variant" silently, so their files must be checked.
    data = Path(espeakng_loader.get_data_path())
    accent_files = {path.name.lower() for path in (data / "lang" / "gmw").iterdir()}
    assert {accent.lower() for accent in speech.ACCENTS} <= accent_files
    for voice in speech.VOICE_RANGES.values():
        assert all((data / "voices" / "!v" / variant).is_file() for variant in voice.variants)


def test_every_accent_and_variant_speaks():
    variants = [variant for voice in speech.VOICE_RANGES.values() for variant in voice.variants]
    voices = [f"{accent}+m1" for accent in speech.ACCENTS] + [f"en-US+{variant}" for variant in variants]
    for voice in voices:
        samples = speech.synthesize(recipe("Hello.", voice))
        assert samples.dtype == np.int16 and np.abs(samples).max() > 1000, voice


def test_unknown_accent_is_refused():
    with pytest.raises(SourceUnavailable, match="no voice"):
        speech.synthesize(recipe(voice="xx-nowhere+m1"))


@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100])
@pytest.mark.parametrize("duration", [0.5, 3.0, 7.3])
def test_render_shape_level_and_onset(sample_rate, duration):
    rng = np.random.default_rng(int(duration * 10))
    audio = speech.render(speech.plan("female speech", rng, duration), sample_rate, RESOURCES)
    assert audio.dtype == np.float32 and audio.shape == (round(duration * sample_rate),)
    assert np.all(np.isfinite(audio)) and np.isclose(np.abs(audio).max(), 0.9, atol=1e-6)
    first_audible = np.flatnonzero(np.abs(audio) > 0.01)[0]
    assert first_audible < 0.02 * sample_rate


def test_short_speech_is_padded_long_speech_faded():
    short = speech.render(recipe("Hi.", duration=3.0), 16000, RESOURCES)
    assert np.all(short[-16000:] == 0)
    long = speech.render(recipe("The engineer will pack our carpet at the museum on Sunday.", duration=1.0),
                         16000, RESOURCES)
    fade = np.abs(long[-800:])
    assert fade[-1] < 1e-3 and fade[-80:].max() < 0.1 * fade.max()


def test_render_is_deterministic_in_any_order_and_thread():
    first, second = recipe(), recipe("Did my sister sell the old boat?", "en+f2", **{"class": "female speech"})
    expected = speech.render(first, 16000, RESOURCES).tobytes()
    speech.render(second, 16000, RESOURCES)
    assert speech.render(first, 16000, RESOURCES).tobytes() == expected
    with ThreadPoolExecutor(4) as pool:
        renders = list(pool.map(lambda r: speech.render(r, 16000, RESOURCES).tobytes(), [first, second] * 4))
    assert renders[::2] == [expected] * 4 and len(set(renders[1::2])) == 1


def test_render_is_identical_in_a_fresh_process():
    code = (
        "import hashlib, json, sys; from bisep.data.sources import RenderResources, speech; "
        "print(hashlib.sha256(speech.render(json.loads(sys.argv[1]), 16000, RenderResources())).hexdigest())"
    )
    speech.render(recipe("Good evening.", "en+f5"), 16000, RESOURCES)  # leaves a different state behind
    here = hashlib.sha256(speech.render(recipe(), 16000, RESOURCES)).hexdigest()
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    there = subprocess.run(
        [sys.executable, "-c", code, json.dumps(recipe())], capture_output=True, text=True, check=True,
        env=environment,
    ).stdout.strip()
    assert there == here


def test_library_loaded_elsewhere_is_refused():
    # Someone else's handle would keep eSpeak's C state alive between renders and break reproducibility.
    other = ctypes.CDLL(espeakng_loader.get_library_path())
    try:
        with pytest.raises(SourceUnavailable, match="already loaded"):
            speech.synthesize(recipe())
    finally:
        speech._close_library(other._handle)
    assert speech.synthesize(recipe()).size > 0


def test_male_voices_are_lower_than_female():
    medians = {}
    for sound_class in speech.CLASSES:
        rng = np.random.default_rng(3)
        renders = [speech.render(speech.plan(sound_class.name, rng, 3.0), 16000, RESOURCES) for _ in range(8)]
        medians[sound_class.name] = [median_f0(audio, 16000) for audio in renders]
    assert all(70 < f0 < 150 for f0 in medians["male speech"]), medians
    assert all(150 < f0 < 320 for f0 in medians["female speech"]), medians
    assert max(medians["male speech"]) < min(medians["female speech"])


def test_plan_is_seeded_and_json():
    first = speech.plan("male speech", np.random.default_rng(11), 4.0)
    assert first == speech.plan("male speech", np.random.default_rng(11), 4.0)
    assert first != speech.plan("male speech", np.random.default_rng(12), 4.0)
    assert json.loads(json.dumps(first)) == first
    assert first["family"] == "speech" and first["class"] == "male speech" and first["duration"] == 4.0
    accent, variant = first["voice"].split("+")
    assert accent in speech.ACCENTS and variant in speech.VOICE_RANGES["male speech"].variants


def test_plan_fills_long_clips_with_several_sentences():
    rng = np.random.default_rng(5)
    plans = [speech.plan("female speech", rng, 10.0) for _ in range(20)]
    assert np.mean([speech.estimated_seconds(p["text"], p["rate_wpm"]) for p in plans]) > 5
    assert all(speech.estimated_seconds(p["text"], p["rate_wpm"]) <= 12 for p in plans)


def test_plan_refuses_bad_arguments():
    with pytest.raises(ValueError, match="unknown speech class"):
        speech.plan("child speech", np.random.default_rng(0), 2.0)
    with pytest.raises(ValueError, match="positive"):
        speech.plan("male speech", np.random.default_rng(0), 0.0)


def test_sentences_are_varied():
    rng = np.random.default_rng(0)
    assert len({speech.random_sentence(rng) for _ in range(500)}) >= 490
    # k draws with c repeats suggest k^2 / 2c sentences, fewer than a non-uniform generator really has.
    draws = 20000
    repeats = draws - len({speech.random_sentence(rng) for _ in range(draws)})
    assert draws**2 / (2 * max(repeats, 1)) > 1e6


def test_fingerprint_ignores_case_and_punctuation():
    assert speech.recipe_fingerprint(recipe("Hello,  Anna! It's 7:30?")) == "hello anna it's 7 30"
    assert speech.recipe_fingerprint(recipe("hello anna. It's 7 30")) == "hello anna it's 7 30"


def test_available_here():
    assert speech.unavailable_reason(RESOURCES) is None


def test_missing_library_or_package_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: str(tmp_path / "libespeak-ng.so"))
    reason = speech.unavailable_reason(RESOURCES)
    assert "no eSpeak NG library" in reason and "\n" not in reason
    with pytest.raises(SourceUnavailable):
        speech.render(recipe(), 16000, RESOURCES)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    assert "espeakng-loader" in speech.unavailable_reason(RESOURCES)
