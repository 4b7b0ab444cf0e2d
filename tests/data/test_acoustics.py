import numpy as np
import pytest

from bisep.data import acoustics

RATE = 16000


def schroeder_rt60(impulse: np.ndarray) -> float:
    """RT60 from the -5..-35 dB slope of the backward-integrated energy (T30, doubled)."""
    energy = np.cumsum(impulse[::-1] ** 2)[::-1]
    level = 10 * np.log10(energy / energy[0])
    return 2 * (np.argmax(level < -35) - np.argmax(level < -5)) / RATE


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_room_impulse_decays_at_its_rt60_and_keeps_its_direct_to_reverberant_ratio(rt60):
    impulse = acoustics.room_impulse_response(rt60=rt60, direct_to_reverberant_db=4.0, predelay=0.01,
                                              early_reflections=4, sample_rate=RATE,
                                              rng=np.random.default_rng(0))
    assert impulse[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(impulse[1:] ** 2)) == pytest.approx(4.0, abs=1e-6)
    # the bands decay at 0.55-1.25 x rt60; the broadband decay lands inside that range
    assert 0.55 * rt60 < schroeder_rt60(impulse) < 1.25 * rt60


def test_peaking_filter_has_its_gain_at_its_centre_frequency():
    sos = acoustics.biquad("peak", 1000.0, 6.0, 1.0, RATE)
    from scipy import signal
    _, response = signal.sosfreqz(sos, worN=[1000.0, 100.0], fs=RATE)
    assert 20 * np.log10(abs(response[0])) == pytest.approx(6.0, abs=0.01)
    assert abs(20 * np.log10(abs(response[1]))) < 0.5


@pytest.mark.parametrize("kind,low_db,high_db", [("low_shelf", 5.0, 0.0), ("high_shelf", 0.0, 5.0)])
def test_shelves_lift_their_own_end_of_the_spectrum(kind, low_db, high_db):
    from scipy import signal
    _, response = signal.sosfreqz(acoustics.biquad(kind, 1000.0, 5.0, 0.707, RATE), worN=[20.0, 7900.0], fs=RATE)
    assert 20 * np.log10(abs(response)) == pytest.approx([low_db, high_db], abs=0.3)


def test_compressor_lowers_loud_passages_relative_to_quiet_ones():
    time = np.arange(RATE * 2) / RATE
    audio = np.sin(2 * np.pi * 220 * time) * np.where(time < 1.0, 1.0, 0.05)
    out = acoustics.compress(audio, RATE, threshold_db=-20.0, ratio=4.0, release=0.05)
    def rms_ratio_db(x):  # steady parts only: the compressor lets the first 5 ms of an attack through
        loud, quiet = x[RATE // 5:9 * RATE // 10], x[6 * RATE // 5:19 * RATE // 10]
        return 10 * np.log10(np.mean(loud**2) / np.mean(quiet**2))
    # the loud part's -3 dB mean power is 17 dB over -20 dB: 4:1 removes 3/4 of it
    assert rms_ratio_db(out) == pytest.approx(rms_ratio_db(audio) - 0.75 * 17.0, abs=1.0)
    assert np.abs(out).max() == pytest.approx(np.abs(audio).max())


def test_band_limit_removes_what_lies_above_the_lower_rate_and_keeps_length():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((2, RATE))
    limited = acoustics.band_limit(noise, RATE, 8000)
    assert limited.shape == noise.shape
    spectrum = np.abs(np.fft.rfft(limited[0])) ** 2
    frequencies = np.fft.rfftfreq(RATE, 1 / RATE)
    assert spectrum[frequencies > 4500].sum() < 1e-3 * spectrum[frequencies < 3500].sum()


@pytest.mark.parametrize("slope", [0.0, -1.0, -2.0])
def test_noise_floor_has_unit_rms_and_its_slope(slope):
    noise = acoustics.noise_floor(RATE * 4, RATE, np.random.default_rng(2), slope, None)
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    frequencies = np.fft.rfftfreq(noise.size, 1 / RATE)
    low = spectrum[(frequencies > 200) & (frequencies < 400)].mean()
    high = spectrum[(frequencies > 3200) & (frequencies < 6400)].mean()
    measured_slope = np.log10(high / low) / np.log10(4800 / 300)
    assert measured_slope == pytest.approx(slope, abs=0.2)


@pytest.mark.parametrize("codec", acoustics.CODECS)
def test_codec_round_trip_stays_aligned_and_close(codec):
    time = np.arange(RATE * 2) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * time) + 0.1 * np.sin(2 * np.pi * 1250 * time)
    decoded = acoustics.codec_round_trip(tone, RATE, *codec, quality=0.3)
    assert decoded.shape == tone.shape
    error = tone[RATE // 4:-RATE // 4] - decoded[RATE // 4:-RATE // 4]
    assert 10 * np.log10(np.sum(tone[RATE // 4:-RATE // 4] ** 2) / np.sum(error**2)) > 15


def test_stems_stay_the_sources_share_of_the_mixture_without_noise_and_codec():
    rng = np.random.default_rng(3)
    stems = rng.standard_normal((2, RATE))
    recipe = {"band_limit_rate": 11025, "noise": None, "codec": None}
    mixture, out = acoustics.apply_mixture_acoustics(stems, recipe, RATE, seed=0)
    np.testing.assert_allclose(mixture, out.sum(axis=0), atol=1e-9)


def test_plans_are_deterministic_and_json_ready():
    import json
    first = [acoustics.plan_source_acoustics(np.random.default_rng(5)), acoustics.plan_mixture_acoustics(
        np.random.default_rng(5))]
    second = [acoustics.plan_source_acoustics(np.random.default_rng(5)), acoustics.plan_mixture_acoustics(
        np.random.default_rng(5))]
    assert json.dumps(first) == json.dumps(second)
    dry = acoustics.plan_source_acoustics(np.random.default_rng(5), room_probability=0, colour_probability=0,
                                          dynamics_probability=0)
    assert dry == {"room": None, "colour": None, "dynamics": None}
    audio = np.random.default_rng(6).standard_normal(RATE)
    np.testing.assert_array_equal(acoustics.apply_source_acoustics(audio, dry, RATE, seed=1), audio)
