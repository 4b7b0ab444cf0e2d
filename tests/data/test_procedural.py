"""Tests of the procedural sound family: the source contract, determinism, each class's character, how distinct the
classes are from each other, and the caption rules their phrasings obey."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from scipy import signal

from bisep.data.sources import RenderResources, procedural

SAMPLE_RATE = 16000
NAMES = [sound_class.name for sound_class in procedural.CLASSES]
RESOURCES = RenderResources()
CAPTION_SPLIT_WORDS = {"and", "while", "with", "then", "as", "before", "after", "followed"}
# Captions add where a source sits ("... in the background"); the caption parser strips these words again.
PLACE_WORDS = re.compile(r"\b(?:background|foreground|distance|distant|nearby|far|faint|faintly)\b")


def _plan(name: str, seed: int, duration: float = 4.0) -> dict:
    return procedural.plan(name, np.random.default_rng(seed), duration)


def _render(name: str, seed: int, duration: float = 4.0) -> np.ndarray:
    return procedural.render(_plan(name, seed, duration), SAMPLE_RATE, RESOURCES).astype(np.float64)


def _onsets(audio: np.ndarray, min_gap_s: float = 0.08, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Times (s) of envelope peaks within 12 dB of the loudest, at least ``min_gap_s`` apart."""
    hop = int(0.002 * sample_rate)
    envelope = np.abs(audio[: len(audio) // hop * hop]).reshape(-1, hop).max(axis=1)
    peaks, _ = signal.find_peaks(envelope, height=0.25 * envelope.max(), distance=int(min_gap_s / 0.002))
    return peaks * 0.002


def _tonal_peak_ratio(audio: np.ndarray) -> float:
    """Strongest bin of the long-term spectrum over the median bin within half an octave of it.

    About 1-30 for noise of any colour, thousands for a steady tone.
    """
    _, power = signal.welch(audio, SAMPLE_RATE, nperseg=1024)
    peak = int(np.argmax(power))
    neighbourhood = power[max(1, int(peak / 2**0.5)) : int(peak * 2**0.5) + 2]
    return float(power[peak] / np.median(neighbourhood))


def _features(audio: np.ndarray) -> np.ndarray:
    """Simple clip descriptors: spectral shape in 10 log bands, loudness spread, activity, flatness, tonality,
    pitch movement, envelope periodicity and impulsiveness."""
    frequencies, _, stft = signal.stft(audio, SAMPLE_RATE, nperseg=512, noverlap=256, boundary=None, padded=False)
    power = np.abs(stft) ** 2 + 1e-12
    mean_spectrum = power.mean(axis=1)
    edges = np.geomspace(60, 7200, 11)
    bands = np.array([mean_spectrum[(frequencies >= low) & (frequencies < high)].sum()
                      for low, high in zip(edges, edges[1:])])
    frame_energy = power.sum(axis=0)
    level_db = 10 * np.log10(frame_energy)
    active = level_db > level_db.max() - 30
    flatness = np.exp(np.log(power[:, active]).mean(axis=0)) / power[:, active].mean(axis=0)
    dominant = frequencies[np.argmax(power[:, active], axis=0)]
    centred = frame_energy - frame_energy.mean()
    autocorrelation = np.correlate(centred, centred, "full")[len(centred) - 1 :]
    lags_s = np.arange(len(autocorrelation)) * 256 / SAMPLE_RATE
    periodicity = autocorrelation[(lags_s > 0.15) & (lags_s < 1.5)].max() / autocorrelation[0]
    kurtosis = np.mean((audio - audio.mean()) ** 4) / np.var(audio) ** 2
    return np.concatenate([
        np.log(bands / bands.sum() + 1e-9),
        [
            level_db.std() / 10,
            active.mean(),
            np.log(flatness.mean()),
            np.log(np.sort(mean_spectrum)[-3:].sum() / mean_spectrum.sum()),
            np.std(np.log(dominant + 50)),
            periodicity,
            np.log(kurtosis),
        ],
    ])


# Contract -------------------------------------------------------------------------------------------------------


def test_family_has_at_least_eight_named_classes():
    assert len(NAMES) >= 8 and len(set(NAMES)) == len(NAMES)
    assert all(sound_class.family == "procedural" for sound_class in procedural.CLASSES)


def test_family_is_always_available():
    assert procedural.unavailable_reason(RESOURCES) is None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_render_is_float32_mono_of_exact_length_normalised_and_faded(name, sample_rate):
    duration = 2.37
    audio = procedural.render(_plan(name, 3, duration), sample_rate, RESOURCES)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(duration * sample_rate)
    assert np.all(np.isfinite(audio))
    assert np.max(np.abs(audio)) == pytest.approx(0.9, abs=1e-6)
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.005
    assert abs(float(np.mean(audio, dtype=np.float64))) < 1e-4
    millisecond = sample_rate // 1000
    assert np.max(np.abs(audio[:millisecond])) < 0.01 and np.max(np.abs(audio[-millisecond:])) < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_render_is_a_pure_function_of_the_recipe(name):
    recipe = _plan(name, 7)
    first = procedural.render(recipe, SAMPLE_RATE, RESOURCES)
    again = procedural.render(recipe, SAMPLE_RATE, RESOURCES)
    round_tripped = procedural.render(json.loads(json.dumps(recipe)), SAMPLE_RATE, RESOURCES)
    assert first.tobytes() == again.tobytes() == round_tripped.tobytes()
    other_rate = procedural.render(recipe, 22050, RESOURCES)
    assert other_rate.tobytes() == procedural.render(recipe, 22050, RESOURCES).tobytes()


@pytest.mark.parametrize("name", ["clock ticking", "door knocking", "typing on a keyboard"])
def test_event_times_do_not_depend_on_the_sample_rate(name):
    recipe = _plan(name, 4)
    low, high = (_onsets(procedural.render(recipe, rate, RESOURCES), sample_rate=rate) for rate in (16000, 48000))
    assert len(low) == len(high) and np.max(np.abs(low - high)) < 0.01


@pytest.mark.parametrize("name", NAMES)
def test_plans_are_json_ready_and_differ_between_seeds(name):
    recipe, other = _plan(name, 1), _plan(name, 2)
    assert {"family": "procedural", "class": name, "duration": 4.0}.items() <= recipe.items()
    assert json.loads(json.dumps(recipe, allow_nan=False)) == recipe
    assert recipe != other
    assert procedural.recipe_fingerprint(recipe) != procedural.recipe_fingerprint(other)
    assert not np.array_equal(_render(name, 1), _render(name, 2))


@pytest.mark.parametrize("name", NAMES)
def test_short_clip_still_sounds(name):
    audio = _render(name, 11, duration=0.5)
    assert len(audio) == SAMPLE_RATE // 2 and np.max(np.abs(audio)) == pytest.approx(0.9, abs=1e-6)


def test_fingerprint_is_stable_across_key_order_and_json():
    recipe = {"family": "procedural", "class": "rain", "duration": 4.0, "droplets_per_s": 812.5, "seed": 42}
    reordered = dict(reversed(list(recipe.items())))
    fingerprint = procedural.recipe_fingerprint(recipe)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    assert fingerprint == procedural.recipe_fingerprint(reordered)
    assert fingerprint == procedural.recipe_fingerprint(json.loads(json.dumps(recipe)))
    # Stored value: fingerprints name renders in existing corpora, so the hash must never drift.
    assert fingerprint == "94431d21bfa9a54e"


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown procedural class"):
        procedural.plan("banjo", np.random.default_rng(0), 4.0)
    with pytest.raises(ValueError, match="duration"):
        procedural.plan("rain", np.random.default_rng(0), 0.0)
    with pytest.raises(ValueError, match="not a procedural recipe"):
        procedural.render({**_plan("rain", 0), "family": "gm"}, SAMPLE_RATE, RESOURCES)
    with pytest.raises(ValueError, match="sample rate"):
        procedural.render(_plan("rain", 0), 4000, RESOURCES)


def test_a_four_second_render_takes_milliseconds():
    recipes = [_plan(name, seed) for name in NAMES for seed in range(3)]
    procedural.render(recipes[0], SAMPLE_RATE, RESOURCES)
    start = time.process_time()  # CPU time, so other processes sharing the machine do not count
    for recipe in recipes:
        procedural.render(recipe, SAMPLE_RATE, RESOURCES)
    # The target is < 20 ms; the bound is looser so a slower machine does not fail the suite.
    assert (time.process_time() - start) / len(recipes) < 0.05


# Character of each class ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_siren_pitch_moves(seed):
    frequencies, _, stft = signal.stft(_render("siren", seed), SAMPLE_RATE, nperseg=1024)
    band = (frequencies > 200) & (frequencies < 5000)
    dominant = frequencies[band][np.argmax(np.abs(stft[band]), axis=0)]
    assert (np.percentile(dominant, 90) - np.percentile(dominant, 10)) / np.median(dominant) > 0.15


@pytest.mark.parametrize("seed", range(4))
def test_engine_energy_is_mostly_below_500_hz(seed):
    frequencies, power = signal.welch(_render("engine hum", seed), SAMPLE_RATE, nperseg=2048)
    assert power[frequencies < 500].sum() / power.sum() > 0.9


@pytest.mark.parametrize("seed", range(4))
def test_rain_wind_and_fire_are_broadband_beeps_are_tonal(seed):
    for name in ("rain", "wind", "crackling fire"):
        assert _tonal_peak_ratio(_render(name, seed)) < 100, name
    assert _tonal_peak_ratio(_render("alarm beeps", seed)) > 1000


@pytest.mark.parametrize("seed", range(4))
def test_beeps_switch_on_and_off(seed):
    audio = _render("alarm beeps", seed)
    window = SAMPLE_RATE // 100
    energy = np.mean(audio[: len(audio) // window * window].reshape(-1, window) ** 2, axis=1)
    assert 0.1 < np.mean(energy < energy.max() * 1e-3) < 0.95


@pytest.mark.parametrize("name", ["siren", "engine hum", "rain", "wind", "crackling fire"])
def test_continuous_sounds_never_drop_out(name):
    audio = _render(name, 5)
    window = SAMPLE_RATE // 4
    energy = np.mean(audio[: len(audio) // window * window].reshape(-1, window) ** 2, axis=1)
    assert energy.min() > energy.max() * 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_clock_ticks_are_periodic_drips_are_not(seed):
    def interval_spread(name):
        intervals = np.diff(_onsets(_render(name, seed, duration=10.0)))
        return intervals.std() / intervals.mean()

    assert interval_spread("clock ticking") < 0.1
    assert interval_spread("water dripping") > 0.2


@pytest.mark.parametrize("seed", range(3))
def test_drip_pitch_rises_within_each_drop(seed):
    recipe = _plan("water dripping", seed, 6.0)
    audio = procedural.render(recipe, SAMPLE_RATE, RESOURCES).astype(np.float64)
    decay = recipe["decay_s"]

    def frequency(start_s, stop_s):
        segment = audio[int(start_s * SAMPLE_RATE) : int(stop_s * SAMPLE_RATE)]
        return np.count_nonzero(np.diff(np.signbit(segment))) / 2 / (stop_s - start_s)

    ratios = [frequency(t + 1.5 * decay, t + 2.5 * decay) / frequency(t + 0.001, t + 0.001 + 0.5 * decay)
              for t in _onsets(audio)]
    assert np.median(ratios) > 1.05


@pytest.mark.parametrize("seed", range(3))
def test_knocks_come_in_groups(seed):
    intervals = np.diff(_onsets(_render("door knocking", seed, duration=8.0)))
    assert intervals.min() < 0.3 and intervals.max() > 0.5


@pytest.mark.parametrize("seed", range(3))
def test_typing_is_a_fast_irregular_stream_of_keystrokes(seed):
    intervals = np.diff(_onsets(_render("typing on a keyboard", seed, duration=8.0)))
    assert len(intervals) / 8.0 > 1.5
    assert intervals.std() / intervals.mean() > 0.25


@pytest.mark.parametrize("seed", range(3))
def test_fire_crackles_are_impulsive(seed):
    highpass = signal.butter(2, 1000, "highpass", fs=SAMPLE_RATE, output="sos")
    crackles = signal.sosfilt(highpass, _render("crackling fire", seed))
    assert np.mean(crackles**4) / np.var(crackles) ** 2 > 20  # Gaussian noise: 3


def test_classes_are_distinguishable_by_a_nearest_centroid_classifier():
    def dataset(seeds):
        features = [_features(_render(name, seed)) for name in NAMES for seed in seeds]
        return np.array(features), np.repeat(np.arange(len(NAMES)), len(seeds))

    train, train_labels = dataset(range(10))
    test, test_labels = dataset(range(100, 110))
    mean, spread = train.mean(axis=0), train.std(axis=0) + 1e-9
    centroids = np.array([((train[train_labels == k] - mean) / spread).mean(axis=0) for k in range(len(NAMES))])
    distances = ((((test - mean) / spread)[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    assert np.mean(np.argmin(distances, axis=1) == test_labels) >= 0.9


# Phrasings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sound_class", procedural.CLASSES, ids=NAMES)
def test_phrasings_compose_into_captions(sound_class):
    assert len(sound_class.phrasings) >= 5 and len(sound_class.held_out_phrasings) >= 3
    assert not set(sound_class.phrasings) & set(sound_class.held_out_phrasings)
    for phrasing in sound_class.phrasings + sound_class.held_out_phrasings:
        assert phrasing == phrasing.lower() == phrasing.strip(), phrasing
        assert phrasing[-1].isalpha(), phrasing
        assert not set(re.findall(r"[a-z']+", phrasing)) & CAPTION_SPLIT_WORDS, phrasing
    for phrasing in sound_class.phrasings:
        assert re.fullmatch(r"[a-z' ]+", phrasing), phrasing
        assert not PLACE_WORDS.search(phrasing), phrasing


def test_phrasings_belong_to_one_class_only():
    every = [p for sound_class in procedural.CLASSES for p in sound_class.phrasings + sound_class.held_out_phrasings]
    assert len(every) == len(set(every))
