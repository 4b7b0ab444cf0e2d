"""Procedural everyday sounds: sirens, engines, rain, wind, clocks, alarms, drips, knocks, fire and typing.

Each class is a small synthesiser driven by a recipe of drawn parameters (frequencies in Hz, times in s, levels
in dB), so two renders of one class differ audibly while keeping the class's character. Sounds made of discrete
events (ticks, drops, knocks, keystrokes) compute every event's waveform at once as an (events, samples) array
and sum it into the output with ``np.bincount``; no Python loop runs per sample, so a 4 s clip at 16 kHz takes a
few milliseconds.

Event times and slow envelopes come from one random stream drawn in seconds, sample-level noise from another, so a
recipe sounds the same at every sample rate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
from scipy import signal

from bisep.data.sources import RenderResources, SoundClass

FAMILY = "procedural"

CLASSES = (
    SoundClass(
        name="siren",
        family=FAMILY,
        phrasings=(
            "a siren wails",
            "an emergency siren wailing",
            "the sound of a police siren",
            "a loud siren blares",
            "an ambulance siren sounding",
            "a police car siren",
        ),
        held_out_phrasings=(
            "an ambulance approaching, its siren blaring",
            "an emergency vehicle howling past",
            "the wail of a civil defence warning",
        ),
    ),
    SoundClass(
        name="engine hum",
        family=FAMILY,
        phrasings=(
            "an engine idles",
            "an engine idling",
            "the low hum of an idling engine",
            "a car engine running",
            "a motor humming",
            "the rumble of an engine",
        ),
        held_out_phrasings=(
            "a parked truck left running",
            "a stationary car purring quietly",
            "the drone of a motor at rest",
        ),
    ),
    SoundClass(
        name="rain",
        family=FAMILY,
        phrasings=(
            "rain falls",
            "rain pouring",
            "the sound of heavy rain",
            "rain pattering on a roof",
            "raindrops falling",
            "a steady rainfall",
        ),
        held_out_phrasings=(
            "a downpour drumming on the ground",
            "a drizzle coming down outside",
            "a shower of droplets hitting the pavement",
        ),
    ),
    SoundClass(
        name="wind",
        family=FAMILY,
        phrasings=(
            "wind blows",
            "wind blowing",
            "the sound of strong wind",
            "wind howling",
            "gusts of wind",
            "a gusty wind whistling",
        ),
        held_out_phrasings=(
            "a gale roaring past the window",
            "air rushing by in a storm",
            "a breeze gusting outdoors",
        ),
    ),
    SoundClass(
        name="clock ticking",
        family=FAMILY,
        phrasings=(
            "a clock ticks",
            "a clock ticking",
            "the sound of a ticking clock",
            "a wall clock ticking steadily",
            "the tick tock of a clock",
            "a pendulum clock ticking",
        ),
        held_out_phrasings=(
            "a timepiece marking the seconds",
            "the escapement of an old timepiece clicking",
            "seconds counted out by a clockwork mechanism",
        ),
    ),
    SoundClass(
        name="alarm beeps",
        family=FAMILY,
        phrasings=(
            "an alarm beeps",
            "an alarm beeping",
            "the sound of electronic beeps",
            "a smoke detector beeping",
            "repeated beeping",
            "a high pitched electronic alarm",
        ),
        held_out_phrasings=(
            "a digital timer going off",
            "a warning buzzer chirping repeatedly",
            "an electronic device signalling an alert",
        ),
    ),
    SoundClass(
        name="water dripping",
        family=FAMILY,
        phrasings=(
            "water drips",
            "water dripping",
            "the sound of dripping water",
            "a faucet drips",
            "drops of water falling into a sink",
            "a leaky tap dripping",
        ),
        held_out_phrasings=(
            "a leaking pipe plinking into a bucket",
            "droplets plopping into a puddle",
            "moisture dripping from a cave ceiling",
        ),
    ),
    SoundClass(
        name="door knocking",
        family=FAMILY,
        phrasings=(
            "someone knocks on a door",
            "someone knocking on a door",
            "the sound of knocking",
            "a knock at the door",
            "a person knocking loudly",
            "knocking on a wooden door",
        ),
        held_out_phrasings=(
            "a visitor rapping at the entrance",
            "knuckles tapping on a door",
            "a neighbour banging at the front door",
        ),
    ),
    SoundClass(
        name="crackling fire",
        family=FAMILY,
        phrasings=(
            "a fire crackles",
            "a fire crackling",
            "the sound of a crackling fire",
            "logs burning in a fireplace",
            "a campfire crackling",
            "wood crackling in a fire",
        ),
        held_out_phrasings=(
            "embers popping in a hearth",
            "a bonfire snapping",
            "flames consuming dry branches",
        ),
    ),
    SoundClass(
        name="typing on a keyboard",
        family=FAMILY,
        phrasings=(
            "someone types on a keyboard",
            "someone typing on a keyboard",
            "the sound of typing",
            "keyboard keys clicking",
            "a person typing quickly",
            "fingers tapping on a computer keyboard",
        ),
        held_out_phrasings=(
            "an office worker entering text at a computer",
            "keystrokes clattering on a laptop",
            "someone writing an email at a desk",
        ),
    ),
)

_PEAK = 0.9
_FADE_S = 0.02
_MIN_SAMPLE_RATE = 8000
_TOP_FRACTION = 0.45  # highest synthesised frequency as a fraction of the sample rate, clear of aliasing

Recipe = dict


def unavailable_reason(resources: RenderResources) -> str | None:
    """Always None: procedural sounds need only numpy and scipy."""
    return None


def plan(class_name: str, rng: np.random.Generator, duration: float) -> Recipe:
    """Draw every random choice of one render of ``class_name`` lasting ``duration`` s into a JSON-ready recipe.

    ``seed`` drives the many small draws (event times, noise samples) that render makes from the recipe.
    """
    planner, _ = _synthesiser(class_name)
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration} s")
    recipe = {"family": FAMILY, "class": class_name, "duration": float(duration)}
    recipe.update(planner(rng, float(duration)))
    recipe["seed"] = int(rng.integers(2**32))
    return recipe


def render(recipe: Recipe, sample_rate: int, resources: RenderResources) -> np.ndarray:
    """Synthesise ``recipe``: float32 mono of ``round(duration * sample_rate)`` samples, peak 0.9, faded ends.

    A pure function of (recipe, sample_rate): the same arguments give byte-identical audio.
    """
    if recipe.get("family") != FAMILY:
        raise ValueError(f"not a {FAMILY} recipe: family {recipe.get('family')!r}")
    if sample_rate < _MIN_SAMPLE_RATE:
        raise ValueError(f"sample rate must be at least {_MIN_SAMPLE_RATE} Hz, got {sample_rate}")
    _, synthesise = _synthesiser(recipe["class"])
    length = round(recipe["duration"] * sample_rate)
    return _finish(synthesise(recipe, sample_rate, length), sample_rate)


def recipe_fingerprint(recipe: Recipe) -> str:
    """Stable 16-hex-digit hash of a recipe (key order and a JSON round trip do not change it).

    The corpus compares fingerprints to keep one render out of two splits.
    """
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# Shared building blocks ----------------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Equal chance per octave, for frequencies and times."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _choice(rng: np.random.Generator, options: tuple):
    return options[int(rng.integers(len(options)))]


def _streams(recipe: Recipe) -> tuple[np.random.Generator, np.random.Generator]:
    """(events, noise): events draws in seconds, independent of the sample rate; noise draws per sample."""
    return np.random.default_rng([recipe["seed"], 0]), np.random.default_rng([recipe["seed"], 1])


def _times(length: int, sample_rate: int) -> np.ndarray:
    return np.arange(length) / sample_rate


def _top(sample_rate: int) -> float:
    return _TOP_FRACTION * sample_rate


def _smooth_noise(rng: np.random.Generator, duration: float, rate_hz: float, times: np.ndarray) -> np.ndarray:
    """Smooth random curve (knots ~ N(0, 1), cosine-interpolated) changing ``rate_hz`` times per second.

    Knots are drawn per second of duration, not per sample, so the curve is the same at every sample rate.
    """
    knots = rng.standard_normal(int(np.ceil(duration * rate_hz)) + 2)  # one spare knot past the end
    position = times * rate_hz
    index = position.astype(np.int64)
    weight = 0.5 - 0.5 * np.cos(np.pi * (position - index))
    return knots[index] + (knots[index + 1] - knots[index]) * weight


def _filter(x: np.ndarray, sample_rate: int, low_hz: float | None, high_hz: float | None, order: int = 2) -> np.ndarray:
    """Butterworth band-pass, or high-/low-pass when one edge is None; edges beyond the usable band are dropped."""
    if high_hz is not None and high_hz >= _top(sample_rate):
        high_hz = None
    if low_hz is not None:
        low_hz = min(low_hz, 0.9 * _top(sample_rate))
    if low_hz is None and high_hz is None:
        return x
    if low_hz is None:
        sos = signal.butter(order, high_hz, "lowpass", fs=sample_rate, output="sos")
    elif high_hz is None:
        sos = signal.butter(order, low_hz, "highpass", fs=sample_rate, output="sos")
    else:
        sos = signal.butter(order, [low_hz, high_hz], "bandpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale to RMS 1 so layers mix at the levels (dB) the recipe names."""
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def _db(level_db: float) -> float:
    return 10.0 ** (level_db / 20.0)


def _harmonic_sum(phase: np.ndarray, amplitudes: list[float]) -> np.ndarray:
    """sum_h amplitudes[h - 1] * sin(h * phase), by the Chebyshev recurrence (one sin and one cos in all)."""
    two_cos = 2.0 * np.cos(phase)
    previous, current = np.zeros_like(phase), np.sin(phase)
    total = amplitudes[0] * current
    for amplitude in amplitudes[1:]:
        previous, current = current, two_cos * current - previous
        total += amplitude * current
    return total


def _modes(
    times: np.ndarray, frequencies_hz: list[float], decays_s: list[float], levels: list[float], sample_rate: int
) -> np.ndarray:
    """A struck resonator: sum of decaying sinusoids over ``times`` (s); modes above the usable band are dropped."""
    total = np.zeros_like(times)
    for frequency, decay, level in zip(frequencies_hz, decays_s, levels):
        if frequency < _top(sample_rate):
            total += level * np.exp(-times / decay) * np.sin(2 * np.pi * frequency * times)
    return total


def _scatter(length: int, onsets_s: np.ndarray, grains: np.ndarray, sample_rate: int) -> np.ndarray:
    """Sum event waveforms ``grains`` (events, grain_samples) starting at ``onsets_s`` (s) into ``length`` samples.

    Events jittered to before 0 s start at 0 s (a clip must not lose its only event); later ones are cut off.
    """
    onsets = np.maximum(np.round(np.asarray(onsets_s) * sample_rate).astype(np.int64), 0)
    keep = onsets < length
    onsets, grains = onsets[keep], grains[keep]
    index = onsets[:, None] + np.arange(grains.shape[1])
    return np.bincount(index.ravel(), weights=grains.ravel(), minlength=length + grains.shape[1])[:length]


def _room(x: np.ndarray, sample_rate: int, rng: np.random.Generator, decay_s: float, wet: float) -> np.ndarray:
    """Add a diffuse reverberant tail: exponentially decaying noise, 60 dB down after ``decay_s`` s.

    ``wet`` is the tail's energy relative to the dry sound, as an amplitude ratio.
    """
    times = _times(int(decay_s * sample_rate), sample_rate)
    response = rng.standard_normal(len(times)) * np.exp(-6.9 * times / decay_s)
    response *= wet / np.sqrt(np.sum(response**2))
    return x + signal.fftconvolve(x, response)[: len(x)]


def _finish(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Raised-cosine fades (no clicks at the ends), zero mean (no DC) and peak 0.9, as float32."""
    length = len(x)
    fade = max(1, min(int(_FADE_S * sample_rate), length // 4))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    window = np.ones(length)
    window[:fade] = ramp
    window[length - fade :] = ramp[::-1]
    # Subtracting the window-weighted mean before windowing makes the result exactly zero-mean.
    x = window * (x - np.sum(window * x) / np.sum(window))
    peak = float(np.max(np.abs(x)))
    if not peak > 0:
        raise RuntimeError("procedural synthesiser rendered silence; this is a bug in bisep")
    return (x * (_PEAK / peak)).astype(np.float32)


# Siren: a tone whose pitch sweeps (wail, yelp) or alternates (hi-lo), optionally passing by --------------------


def _plan_siren(rng: np.random.Generator, duration: float) -> dict:
    mode = _choice(rng, ("wail", "yelp", "hi-lo"))
    if mode == "wail":
        sweeps, low, spread = _uniform(rng, 0.15, 0.45), _uniform(rng, 450, 800), _uniform(rng, 1.6, 2.4)
    elif mode == "yelp":
        sweeps, low, spread = _uniform(rng, 2.5, 6.0), _uniform(rng, 600, 1000), _uniform(rng, 1.5, 2.0)
    else:
        sweeps, low, spread = _uniform(rng, 0.6, 1.4), _uniform(rng, 400, 750), _uniform(rng, 1.25, 1.45)
    passing = rng.random() < 0.5
    return {
        "mode": mode,
        "sweeps_per_s": sweeps,
        "low_hz": low,
        "high_hz": low * spread,
        "rise_fraction": _uniform(rng, 0.3, 0.7),
        "cycle_offset": _uniform(rng, 0.0, 1.0),
        "harmonics": int(rng.integers(1, 7)),
        "rolloff_db": _uniform(rng, 4.0, 14.0),
        "doppler_shift": _uniform(rng, 0.03, 0.08) if passing else 0.0,
        "pass_time_s": _uniform(rng, 0.3, 0.7) * duration,
        "pass_width_s": _uniform(rng, 0.4, 1.5),
    }


def _render_siren(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    times = _times(length, sample_rate)
    cycle = (recipe["sweeps_per_s"] * times + recipe["cycle_offset"]) % 1.0
    if recipe["mode"] == "hi-lo":
        # A square wave whose edges take about 10 ms, so the pitch switch does not splatter like a click.
        steepness = 1.0 / (np.pi * recipe["sweeps_per_s"] * 0.005)
        shape = 0.5 + 0.5 * np.tanh(steepness * np.sin(2 * np.pi * cycle))
    else:
        rise = recipe["rise_fraction"]
        shape = np.where(cycle < rise, cycle / rise, (1.0 - cycle) / (1.0 - rise))
        if recipe["mode"] == "wail":
            shape = 0.5 - 0.5 * np.cos(np.pi * shape)  # a rotor spinning up and down eases in and out
    frequency = recipe["low_hz"] + (recipe["high_hz"] - recipe["low_hz"]) * shape
    gain = np.ones(length)
    if recipe["doppler_shift"] > 0:
        closeness = (times - recipe["pass_time_s"]) / recipe["pass_width_s"]
        frequency = frequency * (1.0 - recipe["doppler_shift"] * np.tanh(closeness))
        gain = 1.0 / np.sqrt(1.0 + closeness**2)
    amplitudes = [
        _db(-recipe["rolloff_db"] * (harmonic - 1))
        for harmonic in range(1, recipe["harmonics"] + 1)
        if harmonic * frequency.max() < _top(sample_rate)
    ]
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return gain * _harmonic_sum(phase, amplitudes)


# Engine hum: firing pulses exciting an exhaust resonance, uneven per cylinder, over low rumble ------------------


def _plan_engine(rng: np.random.Generator, duration: float) -> dict:
    cylinders = _choice(rng, (4, 6, 8))
    revving = rng.random() < 0.35
    return {
        "rpm": _uniform(rng, 600, 1100),
        "cylinders": cylinders,
        "cylinder_gains": [_uniform(rng, 0.6, 1.0) for _ in range(cylinders)],
        "rpm_wander": _uniform(rng, 0.01, 0.04),
        "wander_per_s": _uniform(rng, 0.3, 1.0),
        "rev_amount": _uniform(rng, 0.3, 0.9) if revving else 0.0,
        "rev_time_s": _uniform(rng, 0.2, 0.6) * duration,
        "rev_decay_s": _uniform(rng, 0.3, 0.9),
        "timing_jitter": _uniform(rng, 0.005, 0.03),
        "pulse_jitter": _uniform(rng, 0.05, 0.3),
        "resonance_hz": _uniform(rng, 60, 180),
        "resonance_decay_s": _uniform(rng, 0.006, 0.02),
        "rumble_db": _uniform(rng, -20, -8),
        "cutoff_hz": _uniform(rng, 250, 450),
    }


def _render_engine(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    duration = recipe["duration"]
    control = np.arange(int(np.ceil(duration * 1000)) + 1) / 1000.0  # 1 kHz grid (s) for the rpm curve
    since_rev = np.maximum(control - recipe["rev_time_s"], 0.0)
    rev = (1.0 - np.exp(-since_rev / 0.1)) * np.exp(-since_rev / recipe["rev_decay_s"])
    wander = _smooth_noise(events, duration, recipe["wander_per_s"], control)
    rpm = recipe["rpm"] * (1.0 + recipe["rpm_wander"] * wander) * (1.0 + recipe["rev_amount"] * rev)
    firing_hz = rpm / 60.0 * recipe["cylinders"] / 2.0  # four-stroke: each cylinder fires every other turn
    firings = np.concatenate([[0.0], np.cumsum(firing_hz[1:] * np.diff(control))])
    count = np.arange(int(firings[-1])) + events.random()
    onsets = np.interp(count, firings, control)
    period = 1.0 / np.interp(onsets, control, firing_hz)
    onsets = onsets + recipe["timing_jitter"] * period * events.standard_normal(len(onsets))
    gains = np.asarray(recipe["cylinder_gains"])[np.arange(len(onsets)) % recipe["cylinders"]]
    gains = gains * (1.0 + recipe["pulse_jitter"] * events.standard_normal(len(onsets)))
    gains = gains * np.sqrt(np.interp(onsets, control, rpm) / recipe["rpm"])
    decay, resonance = recipe["resonance_decay_s"], recipe["resonance_hz"]
    grain_times = _times(int(6 * decay * sample_rate), sample_rate)
    pulse = _modes(grain_times, [resonance, 2.3 * resonance], [decay, 0.6 * decay], [1.0, 0.5], sample_rate)
    pulses = _scatter(length, onsets, gains[:, None] * pulse, sample_rate)
    rumble = _filter(noise.standard_normal(length), sample_rate, None, 1.5 * resonance)
    mixed = _unit_rms(pulses) + _db(recipe["rumble_db"]) * _unit_rms(rumble)
    return _filter(mixed, sample_rate, None, recipe["cutoff_hz"], order=4)


# Rain: thousands of tiny droplet impacts, a few near drops with a bubble ring, surface hiss --------------------


def _plan_rain(rng: np.random.Generator, duration: float) -> dict:
    intensity = _uniform(rng, 0.0, 1.0)
    drop_low = _uniform(rng, 900, 3000)
    return {
        "droplets_per_s": 400.0 * 10.0 ** (1.2 * intensity),
        "droplet_low_hz": drop_low,
        "droplet_high_hz": drop_low * _uniform(rng, 2.0, 4.0),
        "near_drops_per_s": _uniform(rng, 5, 40),
        "near_drop_low_hz": _uniform(rng, 1000, 2500),
        "near_drop_db": _uniform(rng, -14, -4),
        "hiss_low_hz": _uniform(rng, 300, 1200),
        "hiss_high_hz": _uniform(rng, 3500, 7500),
        "hiss_db": _uniform(rng, -9, 3),
        "swell_per_s": _uniform(rng, 0.1, 0.4),
        "swell_depth": _uniform(rng, 0.0, 0.5),
    }


def _render_rain(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    duration = recipe["duration"]
    count = events.poisson(recipe["droplets_per_s"] * duration)
    onsets = events.uniform(0.0, duration, count)
    weights = events.lognormal(0.0, 0.7, count) * events.choice([-1.0, 1.0], count)
    droplets = _scatter(length, onsets, weights[:, None], sample_rate)
    droplets = _filter(droplets, sample_rate, recipe["droplet_low_hz"], recipe["droplet_high_hz"])

    near = events.poisson(recipe["near_drops_per_s"] * duration)
    near_onsets = events.uniform(0.0, duration, near)
    pitch = recipe["near_drop_low_hz"] * np.exp(events.uniform(0.0, np.log(3.0), near))
    pitch = np.minimum(pitch, 0.8 * _top(sample_rate))
    decay = events.uniform(0.002, 0.006, near)[:, None]
    grain_times = _times(int(0.03 * sample_rate), sample_rate)
    chirp = grain_times * (1.0 + 3.0 * grain_times)  # phase of a pitch rising 18% over the 30 ms grain
    bubble = np.exp(-grain_times / decay) * np.sin(2 * np.pi * pitch[:, None] * chirp)
    near_drops = _scatter(length, near_onsets, events.lognormal(0.0, 0.5, near)[:, None] * bubble, sample_rate)

    times = _times(length, sample_rate)
    hiss = _filter(noise.standard_normal(length), sample_rate, recipe["hiss_low_hz"], recipe["hiss_high_hz"])
    swell = np.exp(recipe["swell_depth"] * _smooth_noise(events, duration, recipe["swell_per_s"], times))
    mixed = _unit_rms(droplets) + _db(recipe["hiss_db"]) * _unit_rms(hiss)
    if near:
        mixed += _db(recipe["near_drop_db"]) * _unit_rms(near_drops)
    return swell * mixed


# Wind: octave bands of noise swelling with gusts, the upper bands more, a breathy whistle in strong gusts -------


def _plan_wind(rng: np.random.Generator, duration: float) -> dict:
    whistling = rng.random() < 0.6
    return {
        "center_hz": _log_uniform(rng, 200, 600),
        "gust_per_s": _uniform(rng, 0.15, 0.5),
        "gust_depth": _uniform(rng, 0.4, 1.0),
        "flutter_per_s": _uniform(rng, 2.0, 6.0),
        "flutter_depth": _uniform(rng, 0.05, 0.25),
        "brightness": _uniform(rng, 0.3, 1.0),
        "whistle_hz": _log_uniform(rng, 500, 1600),
        "whistle_db": _uniform(rng, -12, -3) if whistling else None,
    }


def _render_wind(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    duration = recipe["duration"]
    times = _times(length, sample_rate)
    gust = _smooth_noise(events, duration, recipe["gust_per_s"], times)
    gust += recipe["flutter_depth"] * _smooth_noise(events, duration, recipe["flutter_per_s"], times)
    depth, brightness = recipe["gust_depth"], recipe["brightness"]
    wind = np.zeros(length)
    levels, responses = (1.0, 0.9, 0.5, 0.25), (0.6, 1.0, 1.0 + brightness, 1.0 + 2.0 * brightness)
    for octave, (level, response) in enumerate(zip(levels, responses)):
        center = recipe["center_hz"] * 2.0 ** (octave - 1)
        band = _filter(noise.standard_normal(length), sample_rate, center / np.sqrt(2), center * np.sqrt(2))
        wind += level * np.exp(depth * response * gust) * _unit_rms(band)
    if recipe["whistle_db"] is None:
        return wind
    frequency = np.minimum(recipe["whistle_hz"] * (1.0 + 0.15 * gust), _top(sample_rate))
    breath = 1.0 + 0.4 * _unit_rms(_filter(noise.standard_normal(length), sample_rate, None, 20.0))
    whistle = np.exp(1.5 * depth * gust) * breath * np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate)
    return wind + _db(recipe["whistle_db"]) * np.sqrt(np.mean(wind**2)) * _unit_rms(whistle)


# Clock: escapement clicks (metal modes + case resonance) alternating tick and lower tock ------------------------


def _plan_clock(rng: np.random.Generator, duration: float) -> dict:
    interval = _log_uniform(rng, 0.25, 1.0)
    return {
        "interval_s": interval,
        "beat_error": _uniform(rng, 0.0, 0.06),
        "click_hz": sorted(_uniform(rng, 1500, 6000) for _ in range(3)),
        "click_decay_s": _uniform(rng, 0.0015, 0.006),
        "tock_ratio": _uniform(rng, 0.8, 0.95),
        "tock_level": _uniform(rng, 0.6, 1.0),
        "case_hz": _uniform(rng, 300, 1200),
        "case_decay_s": _uniform(rng, 0.008, 0.03),
        "case_db": _uniform(rng, -12, 0),
        "escapement_gap_s": _uniform(rng, 0.003, 0.012),
        "escapement_level": _uniform(rng, 0.3, 0.8),
        "start_s": _uniform(rng, 0.0, min(interval, 0.25 * duration)),
        "room_decay_s": _uniform(rng, 0.1, 0.6),
        "room_wet": _uniform(rng, 0.05, 0.4),
    }


def _render_clock(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    interval = recipe["interval_s"]
    beats = np.arange(int((recipe["duration"] - recipe["start_s"]) / interval) + 1)
    is_tock = beats % 2
    onsets = recipe["start_s"] + interval * (beats + recipe["beat_error"] * is_tock)
    onsets = onsets + 0.002 * interval * events.standard_normal(len(beats))
    grain_times = _times(int(5 * max(recipe["click_decay_s"], recipe["case_decay_s"]) * sample_rate), sample_rate)
    kernels = np.stack([
        _modes(
            grain_times,
            [ratio * f for f in recipe["click_hz"]] + [ratio * recipe["case_hz"]],
            [recipe["click_decay_s"]] * 3 + [recipe["case_decay_s"]],
            [1.0, 0.7, 0.5, _db(recipe["case_db"])],
            sample_rate,
        )
        for ratio in (1.0, recipe["tock_ratio"])
    ])
    gains = np.where(is_tock, recipe["tock_level"], 1.0) * (1.0 + 0.05 * events.standard_normal(len(beats)))
    all_onsets = np.concatenate([onsets, onsets + recipe["escapement_gap_s"]])
    all_gains = np.concatenate([gains, recipe["escapement_level"] * gains])
    grains = all_gains[:, None] * kernels[np.tile(is_tock, 2)]
    ticks = _scatter(length, all_onsets, grains, sample_rate)
    return _room(ticks, sample_rate, noise, recipe["room_decay_s"], recipe["room_wet"])


# Alarm beeps: a steady 1-4 kHz tone gated into groups of beeps -----------------------------------------------


def _plan_alarm(rng: np.random.Generator, duration: float) -> dict:
    beeps = int(rng.integers(1, 5))
    return {
        "frequency_hz": _log_uniform(rng, 1000, 4000),
        "waveform": _choice(rng, ("sine", "square")),
        "beeps_per_group": beeps,
        "on_s": _log_uniform(rng, 0.05, 0.4),
        "off_s": _log_uniform(rng, 0.08, 0.4),
        "group_gap_s": _uniform(rng, 0.3, 1.2) if beeps > 1 else 0.0,
        "ramp_s": _uniform(rng, 0.002, 0.01),
        "start_s": _uniform(rng, 0.0, 0.15 * duration),
    }


def _render_alarm(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    times = _times(length, sample_rate)
    on, slot = recipe["on_s"], recipe["on_s"] + recipe["off_s"]
    beeps = recipe["beeps_per_group"]
    since_start = times - recipe["start_s"]
    in_cycle = since_start % (beeps * slot + recipe["group_gap_s"])
    in_slot = in_cycle % slot
    ramp = recipe["ramp_s"]
    gate = np.clip(in_slot / ramp, 0, 1) * np.clip((on - in_slot) / ramp, 0, 1)
    gate *= (in_cycle < beeps * slot) & (since_start >= 0)
    frequency = min(recipe["frequency_hz"], 0.9 * _top(sample_rate))
    if recipe["waveform"] == "sine":
        amplitudes = [1.0]
    else:  # odd harmonics at 1/h below the usable band: a band-limited square wave
        amplitudes = [1.0 / h if h % 2 and h * frequency < _top(sample_rate) else 0.0 for h in range(1, 16)]
    return gate * _harmonic_sum(2 * np.pi * frequency * times, amplitudes)


# Water dripping: plinks whose pitch rises as the air bubble shrinks, at irregular intervals ---------------------


def _plan_drip(rng: np.random.Generator, duration: float) -> dict:
    return {
        "mean_interval_s": _uniform(rng, 0.25, 1.0),
        "regularity": _uniform(rng, 2.0, 6.0),
        "pitch_hz": _log_uniform(rng, 500, 2000),
        "pitch_spread": _uniform(rng, 0.05, 0.25),
        "rise": _uniform(rng, 0.3, 1.0),
        "decay_s": _uniform(rng, 0.01, 0.04),
        "click_db": _uniform(rng, -26, -12),
        "start_s": _uniform(rng, 0.0, min(0.3, 0.25 * duration)),
        "room_decay_s": _uniform(rng, 0.2, 1.0),
        "room_wet": _uniform(rng, 0.1, 0.6),
    }


def _render_drip(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    shape, mean = recipe["regularity"], recipe["mean_interval_s"]
    intervals = events.gamma(shape, mean / shape, int(3 * recipe["duration"] / mean) + 2)
    onsets = recipe["start_s"] + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    onsets = onsets[onsets < recipe["duration"]]
    count, rise = len(onsets), recipe["rise"]
    pitch = recipe["pitch_hz"] * np.exp(recipe["pitch_spread"] * events.standard_normal(count))
    pitch = np.minimum(pitch, 0.9 * _top(sample_rate) / (1 + rise))[:, None]
    decay = (recipe["decay_s"] * np.exp(0.2 * events.standard_normal(count)))[:, None]
    gains = events.lognormal(0.0, 0.3, count)[:, None]
    grain_times = _times(int(7.5 * recipe["decay_s"] * sample_rate), sample_rate)  # covers drops decaying slower
    # Pitch glides from f to f * (1 + rise) with the decay's time constant; phase is its integral.
    glide = grain_times + rise * (grain_times - decay * (1.0 - np.exp(-grain_times / decay)))
    plinks = np.exp(-grain_times / decay) * np.sin(2 * np.pi * pitch * glide)
    click_times = grain_times[: max(1, int(0.003 * sample_rate))]
    click = _filter(noise.standard_normal(len(click_times)), sample_rate, 2000.0, None) * np.exp(-click_times / 5e-4)
    plinks[:, : len(click)] += _db(recipe["click_db"]) * click
    drops = _scatter(length, onsets, gains * plinks, sample_rate)
    return _room(drops, sample_rate, noise, recipe["room_decay_s"], recipe["room_wet"])


# Door knocking: groups of 2-4 knuckle impacts exciting the door's low modes -----------------------------------

_DOOR_MODES = {  # material: (first mode range Hz, ranges of the mode ratios, ranges of the mode decays s)
    "solid wood": (
        (90, 180),
        ((1, 1), (1.7, 2.3), (2.9, 3.8), (4.8, 6.5)),
        ((0.03, 0.08), (0.02, 0.05), (0.01, 0.03), (0.006, 0.015)),
    ),
    "hollow wood": (
        (150, 300),
        ((1, 1), (1.5, 2.0), (2.5, 3.2), (4.0, 5.5)),
        ((0.06, 0.15), (0.04, 0.09), (0.02, 0.05), (0.01, 0.03)),
    ),
    "metal": (
        (250, 600),
        ((1, 1), (2.6, 2.9), (5.2, 5.6), (8.6, 9.2)),
        ((0.06, 0.2), (0.04, 0.12), (0.02, 0.06), (0.01, 0.04)),
    ),
}


def _plan_knock(rng: np.random.Generator, duration: float) -> dict:
    material = _choice(rng, tuple(_DOOR_MODES))
    first_range, ratio_ranges, decay_ranges = _DOOR_MODES[material]
    first = _uniform(rng, *first_range)
    group_gap = _uniform(rng, 0.6, 1.6)
    return {
        "material": material,
        "mode_hz": [first * _uniform(rng, *ratio) for ratio in ratio_ranges],
        "mode_decay_s": [_uniform(rng, *decay) for decay in decay_ranges],
        "mode_db": [0.0, _uniform(rng, -6, 0), _uniform(rng, -10, -3), _uniform(rng, -15, -6)],
        "click_db": _uniform(rng, -12, -3),
        "knock_gap_s": _uniform(rng, 0.11, 0.25),
        "group_gap_s": group_gap,
        "group_sizes": [int(size) for size in rng.integers(2, 5, int(duration / group_gap) + 2)],
        "accent": _uniform(rng, 1.0, 1.4),
        "start_s": _uniform(rng, 0.0, min(0.4, 0.25 * duration)),
        "room_decay_s": _uniform(rng, 0.2, 0.8),
        "room_wet": _uniform(rng, 0.1, 0.5),
    }


def _render_knock(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    sizes = np.asarray(recipe["group_sizes"])
    gap = recipe["knock_gap_s"]
    group_gaps = recipe["group_gap_s"] * (1.0 + 0.15 * events.standard_normal(len(sizes)))
    group_onsets = recipe["start_s"] + np.concatenate([[0.0], np.cumsum((sizes - 1) * gap + group_gaps)[:-1]])
    position = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    onsets = np.repeat(group_onsets, sizes) + gap * (position + 0.08 * events.standard_normal(len(position)))
    gains = np.where(position == 0, recipe["accent"], 1.0) * (1.0 + 0.1 * events.standard_normal(len(position)))
    hardness = events.uniform(0.5, 1.5, len(position))[:, None]
    grain_times = _times(int(5 * max(recipe["mode_decay_s"]) * sample_rate), sample_rate)
    levels = [_db(level) for level in recipe["mode_db"]]
    body = _modes(grain_times, recipe["mode_hz"], recipe["mode_decay_s"], levels, sample_rate)
    click_times = grain_times[: int(0.004 * sample_rate)]
    click = _filter(noise.standard_normal(len(click_times)), sample_rate, 1000.0, None) * np.exp(-click_times / 8e-4)
    click = np.pad(click, (0, len(grain_times) - len(click))) * _db(recipe["click_db"]) * np.max(np.abs(body))
    knocks = _scatter(length, onsets, gains[:, None] * (body + hardness * click), sample_rate)
    return _room(knocks, sample_rate, noise, recipe["room_decay_s"], recipe["room_wet"])


# Crackling fire: bursty sparse crackles, occasional loud pops, a low flickering roar -------------------------


def _plan_fire(rng: np.random.Generator, duration: float) -> dict:
    low = _uniform(rng, 800, 2000)
    return {
        "crackles_per_s": _uniform(rng, 30, 150),
        "burstiness": _uniform(rng, 0.5, 1.5),
        "bursts_per_s": _uniform(rng, 0.5, 3.0),
        "crackle_low_hz": low,
        "crackle_high_hz": low * _uniform(rng, 2.5, 5.0),
        "pops_per_s": _uniform(rng, 0.2, 1.5),
        "pop_db": _uniform(rng, -6, 2),
        "roar_hz": _uniform(rng, 150, 500),
        "roar_db": _uniform(rng, -6, 4),
        "flicker_per_s": _uniform(rng, 0.5, 2.0),
    }


def _render_fire(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    duration, burstiness = recipe["duration"], recipe["burstiness"]
    # Thinning: candidates at the peak rate, each kept with probability rate(t) / peak rate.
    peak_rate = recipe["crackles_per_s"] * np.exp(2.0 * burstiness)
    candidates = events.uniform(0.0, duration, events.poisson(peak_rate * duration))
    rate = np.exp(burstiness * (_smooth_noise(events, duration, recipe["bursts_per_s"], candidates) - 2.0))
    onsets = candidates[events.random(len(candidates)) < rate]
    weights = events.lognormal(0.0, 0.7, len(onsets)) * events.choice([-1.0, 1.0], len(onsets))
    crackles = _scatter(length, onsets, weights[:, None], sample_rate)
    crackles = _filter(crackles, sample_rate, recipe["crackle_low_hz"], recipe["crackle_high_hz"])

    pop_onsets = events.uniform(0.0, duration, events.poisson(recipe["pops_per_s"] * duration))
    grain_times = _times(int(0.03 * sample_rate), sample_rate)
    decay = events.uniform(0.002, 0.008, len(pop_onsets))[:, None]
    bursts = noise.standard_normal((len(pop_onsets), len(grain_times))) * np.exp(-grain_times / decay)
    pops = _scatter(length, pop_onsets, bursts, sample_rate)

    times = _times(length, sample_rate)
    flicker = np.exp(0.3 * _smooth_noise(events, duration, recipe["flicker_per_s"], times))
    roar = flicker * _filter(noise.standard_normal(length), sample_rate, None, recipe["roar_hz"])
    crackles = _unit_rms(crackles)
    fire = crackles + _db(recipe["roar_db"]) * _unit_rms(roar)
    if len(pop_onsets):
        fire += _db(recipe["pop_db"]) * np.max(np.abs(crackles)) * pops / np.max(np.abs(pops))
    return fire


# Typing on a keyboard: key presses (click + bottom-out thock) in word-like bursts, softer releases ---------------

_KEYBOARDS = {  # kind: click Hz, click decay s, thock Hz, thock decay s, release dB
    "mechanical": ((2500, 5000), (0.002, 0.005), (250, 600), (0.01, 0.025), (-8, -3)),
    "membrane": ((1500, 3500), (0.001, 0.003), (150, 400), (0.015, 0.03), (-18, -10)),
    "laptop": ((2000, 4000), (0.001, 0.003), (400, 900), (0.005, 0.012), (-15, -8)),
}


def _plan_typing(rng: np.random.Generator, duration: float) -> dict:
    keyboard = _choice(rng, tuple(_KEYBOARDS))
    click_hz, click_decay, thock_hz, thock_decay, release_db = _KEYBOARDS[keyboard]
    return {
        "keyboard": keyboard,
        "click_hz": _uniform(rng, *click_hz),
        "click_decay_s": _uniform(rng, *click_decay),
        "thock_hz": _uniform(rng, *thock_hz),
        "thock_decay_s": _uniform(rng, *thock_decay),
        "thock_db": _uniform(rng, -6, 3),
        "release_db": _uniform(rng, *release_db),
        "release_delay_s": _uniform(rng, 0.05, 0.12),
        "key_interval_s": _uniform(rng, 0.09, 0.2),
        "interval_spread": _uniform(rng, 0.2, 0.5),
        "letters_per_word": _uniform(rng, 3.0, 7.0),
        "word_pause_s": _uniform(rng, 0.1, 0.35),
        "sentence_pause_probability": _uniform(rng, 0.05, 0.2),
        "sentence_pause_s": _uniform(rng, 0.5, 1.2),
        "start_s": _uniform(rng, 0.0, min(0.3, 0.25 * duration)),
        "room_decay_s": _uniform(rng, 0.15, 0.5),
        "room_wet": _uniform(rng, 0.05, 0.3),
    }


def _render_typing(recipe: Recipe, sample_rate: int, length: int) -> np.ndarray:
    events, noise = _streams(recipe)
    count = int(2 * recipe["duration"] / recipe["key_interval_s"]) + 4  # enough keys for a fast typist
    intervals = recipe["key_interval_s"] * events.lognormal(0.0, recipe["interval_spread"], count)
    is_space = events.random(count) < 1.0 / recipe["letters_per_word"]
    ends_sentence = is_space & (events.random(count) < recipe["sentence_pause_probability"])
    intervals += is_space * recipe["word_pause_s"] + ends_sentence * recipe["sentence_pause_s"]
    onsets = recipe["start_s"] + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    # Key variants: four letter keys a few percent apart in pitch, then the lower, heavier space bar.
    key = np.where(is_space, 4, events.integers(0, 4, count))
    gains = events.lognormal(0.0, 0.15, count)
    decays = (recipe["click_decay_s"], recipe["click_decay_s"], recipe["thock_decay_s"])
    grain_times = _times(int(6 * max(decays) * sample_rate), sample_rate)
    click, thock = recipe["click_hz"], recipe["thock_hz"]
    presses = np.stack([
        _modes(grain_times, [pitch * click, 1.6 * pitch * click, pitch * thock], decays,
               [1.0, 0.5, weight * _db(recipe["thock_db"])], sample_rate)
        for pitch, weight in ((0.94, 1.0), (0.98, 1.0), (1.02, 1.0), (1.06, 1.0), (0.7, 2.5))
    ])
    releases = _modes(grain_times, [1.1 * click], [recipe["click_decay_s"]], [_db(recipe["release_db"])], sample_rate)
    release_onsets = onsets + recipe["release_delay_s"] * events.lognormal(0.0, 0.2, count)
    grains = np.concatenate([gains[:, None] * presses[key], gains[:, None] * releases[None, :]])
    typing = _scatter(length, np.concatenate([onsets, release_onsets]), grains, sample_rate)
    return _room(typing, sample_rate, noise, recipe["room_decay_s"], recipe["room_wet"])


_SYNTHESISERS: dict[str, tuple[Callable, Callable]] = {
    "siren": (_plan_siren, _render_siren),
    "engine hum": (_plan_engine, _render_engine),
    "rain": (_plan_rain, _render_rain),
    "wind": (_plan_wind, _render_wind),
    "clock ticking": (_plan_clock, _render_clock),
    "alarm beeps": (_plan_alarm, _render_alarm),
    "water dripping": (_plan_drip, _render_drip),
    "door knocking": (_plan_knock, _render_knock),
    "crackling fire": (_plan_fire, _render_fire),
    "typing on a keyboard": (_plan_typing, _render_typing),
}


def _synthesiser(class_name: str) -> tuple[Callable, Callable]:
    if class_name not in _SYNTHESISERS:
        raise ValueError(f"unknown {FAMILY} class {class_name!r}; known: {', '.join(_SYNTHESISERS)}")
    return _SYNTHESISERS[class_name]
