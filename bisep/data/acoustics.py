"""The acoustic conditions a real recording carries and a dry render lacks.

A rendered source is dry, full-band and clean; a recording was made in a room, through a microphone, with
levels riding, over a noise floor, and often stored band-limited or in a lossy codec. Separators trained only on
dry renders fail on recordings (issue 21: -0.7 dB SDRi on real mixtures), so the corpus puts each source through
the same kinds of change before mixing, and the mixture through those that act on a whole recording.

Everything random is drawn into JSON-ready recipes by ``plan_*`` (sequentially, from the corpus seed); ``apply_*``
are pure functions of the recipe and a seed, so renders stay byte-identical for any number of workers.

Per source (part of its stem, because a microphone hears the source in its room): room reverberation, microphone
colouration (rumble filter, shelves, peaks), dynamics (a compressor). Per mixture: band limit by resampling
(linear, so applied to the stems too and they still sum to the mixture), a noise floor (in no stem) and a lossy
codec round trip (nonlinear: the mixture only; the difference it makes belongs to no stem, like the noise).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import soundfile
import soxr
from scipy import signal

Recipe = dict[str, Any]

ROOM_BAND_EDGES_HZ = (250.0, 1000.0, 4000.0)  # the tail decays per band: high frequencies die first
ROOM_BAND_DECAY = (1.25, 1.0, 0.8, 0.55)  # RT60 of each band relative to the drawn RT60 (low -> high)
BAND_LIMIT_RATES = (8000, 11025, 12000)  # telephone, old web audio, low-rate recorders
CODECS = (("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"))


def plan_source_acoustics(rng: np.random.Generator, *, room_probability: float = 0.8,
                          colour_probability: float = 0.7, dynamics_probability: float = 0.3) -> Recipe:
    """Room, microphone and dynamics for one source; each part is ``None`` when not drawn."""
    room = None
    if rng.random() < room_probability:
        rt60 = float(np.exp(rng.uniform(np.log(0.15), np.log(1.2))))  # booth to hall, log-uniform
        room = {
            "rt60": round(rt60, 3),
            # direct-to-reverberant ratio: close microphone (+12 dB) to across the room (-4 dB)
            "direct_to_reverberant_db": round(float(rng.uniform(-4.0, 12.0)), 2),
            "predelay": round(float(rng.uniform(0.002, 0.03)), 4),
            "early_reflections": int(rng.integers(3, 9)),
        }
    colour = None
    if rng.random() < colour_probability:
        colour = {
            "highpass_hz": round(float(np.exp(rng.uniform(np.log(30.0), np.log(250.0)))), 1),
            "low_shelf_db": round(float(rng.uniform(-6.0, 6.0)), 2),
            "high_shelf_db": round(float(rng.uniform(-10.0, 4.0)), 2),
            "peaks": [[round(float(np.exp(rng.uniform(np.log(200.0), np.log(6000.0)))), 1),
                       round(float(rng.uniform(-6.0, 6.0)), 2), round(float(rng.uniform(0.7, 3.0)), 2)]
                      for _ in range(int(rng.integers(1, 4)))],
        }
    dynamics = None
    if rng.random() < dynamics_probability:
        dynamics = {"threshold_db": round(float(rng.uniform(-30.0, -12.0)), 2),
                    "ratio": round(float(rng.uniform(2.0, 8.0)), 2),
                    "release": round(float(rng.uniform(0.05, 0.3)), 3)}
    return {"room": room, "colour": colour, "dynamics": dynamics}


def plan_mixture_acoustics(rng: np.random.Generator, *, band_limit_probability: float = 0.2,
                           noise_probability: float = 0.6, codec_probability: float = 0.3) -> Recipe:
    """Band limit, noise floor and codec for one mixture; each part is ``None`` when not drawn."""
    band_limit = None
    if rng.random() < band_limit_probability:
        band_limit = int(BAND_LIMIT_RATES[int(rng.integers(len(BAND_LIMIT_RATES)))])
    noise = None
    if rng.random() < noise_probability:
        noise = {"level_db": round(float(rng.uniform(-50.0, -20.0)), 2),  # relative to the mixture's RMS
                 "slope": round(float(rng.uniform(-2.0, 0.0)), 2),  # spectral slope: 0 white, -1 pink, -2 brown
                 "hum_hz": [None, 50.0, 60.0][int(rng.choice(3, p=(0.7, 0.15, 0.15)))]}
    codec = None
    if rng.random() < codec_probability:
        kind = int(rng.integers(len(CODECS)))
        codec = {"format": CODECS[kind][0], "subtype": CODECS[kind][1],
                 "quality": round(float(rng.uniform(0.1, 0.6)), 2)}  # libsndfile's 0 (best) .. 1 (smallest)
    return {"band_limit_rate": band_limit, "noise": noise, "codec": codec}


def apply_source_acoustics(audio: np.ndarray, recipe: Recipe, sample_rate: int, seed: int) -> np.ndarray:
    """One source ``(samples,)`` through its room, microphone and compressor; same length, float64."""
    audio = np.asarray(audio, np.float64)
    rng = np.random.default_rng(seed)
    if recipe.get("colour"):
        audio = microphone_colour(audio, recipe["colour"], sample_rate)
    if recipe.get("dynamics"):
        audio = compress(audio, sample_rate, **recipe["dynamics"])
    if recipe.get("room"):
        impulse = room_impulse_response(sample_rate=sample_rate, rng=rng, **recipe["room"])
        audio = signal.fftconvolve(audio, impulse)[: audio.size]
    return audio


def apply_mixture_acoustics(stems: np.ndarray, recipe: Recipe, sample_rate: int,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``stems (sources, samples)`` -> ``(mixture (samples,), stems)`` after band limit, noise and codec.

    The stems stay the sources' share of the mixture: band limiting is linear and applies to them; noise and the
    codec's error belong to no stem.
    """
    stems = np.asarray(stems, np.float64)
    rng = np.random.default_rng(seed)
    if recipe.get("band_limit_rate"):
        stems = band_limit(stems, sample_rate, recipe["band_limit_rate"])
    mixture = stems.sum(axis=0)
    if recipe.get("noise"):
        level = np.sqrt(np.mean(mixture**2)) * 10 ** (recipe["noise"]["level_db"] / 20)
        mixture = mixture + level * noise_floor(mixture.size, sample_rate, rng, recipe["noise"]["slope"],
                                                recipe["noise"]["hum_hz"])
    if recipe.get("codec"):
        mixture = codec_round_trip(mixture, sample_rate, **recipe["codec"])
    return mixture, stems


def room_impulse_response(*, rt60: float, direct_to_reverberant_db: float, predelay: float,
                          early_reflections: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: direct path at 1, sparse early reflections, then a diffuse tail.

    The tail is Gaussian noise under an exponential decay (energy down 60 dB at ``rt60`` s), decaying faster in
    higher bands (``ROOM_BAND_DECAY``); the energy after the direct path is ``direct_to_reverberant_db`` below
    the direct path's. ``(samples,)`` float64, 1.2 x the longest band's RT60 long.
    """
    length = max(int(1.2 * rt60 * max(ROOM_BAND_DECAY) * sample_rate), int(predelay * sample_rate) + 2)
    time = np.arange(length) / sample_rate
    tail = np.zeros(length)
    edges = (0.0,) + ROOM_BAND_EDGES_HZ + (sample_rate / 2,)
    for band, decay in enumerate(ROOM_BAND_DECAY):
        low, high = edges[band], min(edges[band + 1], 0.45 * sample_rate)
        if low >= high:
            continue
        noise = rng.standard_normal(length)
        if band == 0:
            sos = signal.butter(4, high, "lowpass", fs=sample_rate, output="sos")
        elif high >= 0.45 * sample_rate:
            sos = signal.butter(4, low, "highpass", fs=sample_rate, output="sos")
        else:
            sos = signal.butter(4, (low, high), "bandpass", fs=sample_rate, output="sos")
        tail += signal.sosfilt(sos, noise) * np.exp(-6.9 * time / (rt60 * decay))
    start = int(predelay * sample_rate)
    tail[:start] = 0.0
    tail[start:] *= np.minimum(1.0, (time[start:] - time[start]) / 0.005)  # the tail builds up over 5 ms
    for _ in range(early_reflections):
        at = start + int(rng.uniform(0.0, 0.06) * sample_rate)
        if at < length:
            tail[at] += rng.choice((-1.0, 1.0)) * rng.uniform(0.2, 0.7) * np.exp(-6.9 * time[at] / rt60)
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / max(np.sum(tail**2), 1e-12))
    tail[0] = 1.0
    return tail


def microphone_colour(audio: np.ndarray, colour: Recipe, sample_rate: int) -> np.ndarray:
    """A microphone and preamp: rumble high-pass, low and high shelves, a few resonant peaks and dips."""
    nyquist = sample_rate / 2
    sections = [signal.butter(2, min(colour["highpass_hz"], 0.4 * nyquist), "highpass", fs=sample_rate,
                              output="sos")]
    sections.append(biquad("low_shelf", 200.0, colour["low_shelf_db"], 0.707, sample_rate))
    sections.append(biquad("high_shelf", min(4000.0, 0.6 * nyquist), colour["high_shelf_db"], 0.707, sample_rate))
    for frequency, gain_db, quality in colour["peaks"]:
        if frequency < 0.9 * nyquist:
            sections.append(biquad("peak", frequency, gain_db, quality, sample_rate))
    return signal.sosfilt(np.concatenate(sections), audio)


def biquad(kind: str, frequency: float, gain_db: float, quality: float, sample_rate: int) -> np.ndarray:
    """One second-order section ``(1, 6)`` of the audio-EQ cookbook: ``peak``, ``low_shelf`` or ``high_shelf``."""
    amplitude = 10 ** (gain_db / 40)
    omega = 2 * np.pi * frequency / sample_rate
    cos, alpha = np.cos(omega), np.sin(omega) / (2 * quality)
    if kind == "peak":
        b = (1 + alpha * amplitude, -2 * cos, 1 - alpha * amplitude)
        a = (1 + alpha / amplitude, -2 * cos, 1 - alpha / amplitude)
    elif kind in ("low_shelf", "high_shelf"):
        root = 2 * np.sqrt(amplitude) * alpha
        sign = 1 if kind == "low_shelf" else -1
        b = (amplitude * ((amplitude + 1) - sign * (amplitude - 1) * cos + root),
             sign * 2 * amplitude * ((amplitude - 1) - sign * (amplitude + 1) * cos),
             amplitude * ((amplitude + 1) - sign * (amplitude - 1) * cos - root))
        a = ((amplitude + 1) + sign * (amplitude - 1) * cos + root,
             -sign * 2 * ((amplitude - 1) + sign * (amplitude + 1) * cos),
             (amplitude + 1) + sign * (amplitude - 1) * cos - root)
    else:
        raise ValueError(f"unknown filter kind {kind!r}")
    return np.array([[*(np.array(b) / a[0]), 1.0, a[1] / a[0], a[2] / a[0]]])


def compress(audio: np.ndarray, sample_rate: int, threshold_db: float, ratio: float, release: float) -> np.ndarray:
    """A feed-forward compressor: gain falls by ``1 - 1/ratio`` of the level above ``threshold_db`` (relative
    to the source's peak), the level followed with 5 ms attack and ``release`` s; makeup keeps the peak."""
    peak = max(np.abs(audio).max(initial=0.0), 1e-12)
    power = (audio / peak) ** 2
    attack_coefficient = np.exp(-1.0 / (0.005 * sample_rate))
    release_coefficient = np.exp(-1.0 / (release * sample_rate))
    smoothed_fast = signal.lfilter([1 - attack_coefficient], [1, -attack_coefficient], power)
    smoothed_slow = signal.lfilter([1 - release_coefficient], [1, -release_coefficient], power)
    level_db = 10 * np.log10(np.maximum(np.maximum(smoothed_fast, smoothed_slow), 1e-12))
    gain_db = -np.maximum(level_db - threshold_db, 0.0) * (1 - 1 / ratio)
    out = audio * 10 ** (gain_db / 20)
    return out * (peak / max(np.abs(out).max(initial=0.0), 1e-12))


def band_limit(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """Down to ``rate`` Hz and back (the last axis): what a low-rate recorder or a phone line keeps."""
    if rate >= sample_rate:
        return audio
    flat = np.atleast_2d(audio)
    restored = np.stack([soxr.resample(soxr.resample(row, sample_rate, rate), rate, sample_rate)[: row.size]
                         for row in flat])
    restored = np.pad(restored, ((0, 0), (0, flat.shape[1] - restored.shape[1])))
    return restored.reshape(audio.shape)


def noise_floor(length: int, sample_rate: int, rng: np.random.Generator, slope: float,
                hum_hz: float | None) -> np.ndarray:
    """Unit-RMS noise of power slope ``slope`` (0 white, -1 pink, -2 brown) plus, optionally, mains hum with its
    odd harmonics at a quarter of the noise's level."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.maximum(np.fft.rfftfreq(length, 1 / sample_rate), 20.0)
    noise = np.fft.irfft(spectrum * frequencies ** (slope / 2), n=length)
    noise /= max(np.sqrt(np.mean(noise**2)), 1e-12)
    if hum_hz:
        time = np.arange(length) / sample_rate
        phase = rng.uniform(0, 2 * np.pi)
        hum = sum(np.sin(2 * np.pi * hum_hz * k * time + phase) / k for k in (1, 3, 5) if hum_hz * k < sample_rate / 2)
        noise = noise + 0.25 * hum / max(np.sqrt(np.mean(hum**2)), 1e-12)
        noise /= max(np.sqrt(np.mean(noise**2)), 1e-12)
    return noise


def codec_round_trip(audio: np.ndarray, sample_rate: int, format: str, subtype: str, quality: float) -> np.ndarray:
    """Encode ``(samples,)`` with a lossy codec (libsndfile's Vorbis or MP3) and decode it back, same length.

    The encoder's delay is not compensated by every decoder, so the decoded signal is aligned to the input by
    cross-correlation before trimming.
    """
    peak = max(np.abs(audio).max(initial=0.0), 1e-12)
    scale = min(1.0, 0.99 / peak)
    buffer = io.BytesIO()
    soundfile.write(buffer, (audio * scale).astype(np.float32), sample_rate, format=format, subtype=subtype,
                    compression_level=quality)
    buffer.seek(0)
    decoded, _ = soundfile.read(buffer, dtype="float64")
    if decoded.ndim > 1:
        decoded = decoded.mean(axis=1)
    shift = _alignment(audio, decoded, max_lag=4096)
    decoded = decoded[shift:]
    decoded = np.pad(decoded[: audio.size], (0, max(0, audio.size - decoded.size)))
    return decoded / scale


def _alignment(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """The delay (0..max_lag samples) at which ``decoded`` best matches ``reference``."""
    span = min(reference.size, decoded.size - max_lag, 4 * max_lag)
    if span <= 0:
        return 0
    scores = signal.correlate(decoded[: span + max_lag], reference[:span], mode="valid", method="fft")
    return int(np.argmax(scores[: max_lag + 1]))
