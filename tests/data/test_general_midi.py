"""Tests of the General MIDI family: the source contract, determinism across renders and processes, each class's
character (sounding, in its register), soundfont discovery and refusal of bad files, and the phrasing rules.

Only pretty_midi's TimGM6mb is used, so the results do not depend on which Debian soundfonts are installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bisep.data.sources import RenderResources, general_midi
from bisep.errors import SourceUnavailable

SAMPLE_RATE = 16000
NAMES = [sound_class.name for sound_class in general_midi.CLASSES]
BY_NAME = {sound_class.name: sound_class for sound_class in general_midi.CLASSES}
TIM = general_midi.default_soundfonts()["TimGM6mb"]
RESOURCES = RenderResources({"TimGM6mb": TIM})
CAPTION_SPLIT_WORDS = {"and", "while", "with", "then", "as", "before", "after", "followed"}
MUSIC_INSTRUMENTS = {"accordion", "acoustic guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
                     "tuba", "violin", "xylophone"}
EFFECTS = {"birds chirping", "telephone ringing", "helicopter", "applause", "gunshots", "ocean waves"}


def _plan(name: str, seed: int, duration: float = 4.0) -> dict:
    return general_midi.plan(name, np.random.default_rng(seed), duration)


def _render(recipe: dict, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    return general_midi.render(recipe, sample_rate, RESOURCES)


def _dominant_f0(audio: np.ndarray) -> float:
    """Median over loud 256 ms frames of the harmonic-product-spectrum pitch (Hz), searched in 30-2000 Hz."""
    frame = 4096
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame).astype(np.float64)
    energy = np.sum(frames**2, axis=1)
    frames = frames[energy > 0.01 * energy.max()]
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1))
    bins = spectrum.shape[1] // 3
    product = spectrum[:, :bins] * spectrum[:, ::2][:, :bins] * spectrum[:, ::3][:, :bins]
    frequencies = np.fft.rfftfreq(frame, 1 / SAMPLE_RATE)[:bins]
    product[:, (frequencies < 30) | (frequencies > 2000)] = 0
    return float(np.median(frequencies[np.argmax(product, axis=1)]))


def test_classes_cover_the_music_instruments_drums_and_effects():
    families = {name: BY_NAME[name].family for name in NAMES}
    assert MUSIC_INSTRUMENTS <= {name for name, family in families.items() if family == "instrument"}
    assert {name for name, family in families.items() if family == "percussion"} == {"drum kit"}
    assert {name for name, family in families.items() if family == "sound effect"} == EFFECTS
    assert BY_NAME["erhu"].programs[0].number == 110  # GM Fiddle, see the module docstring


@pytest.mark.parametrize("name", NAMES)
def test_render_is_float32_mono_of_exact_length_peak_normalised_and_sounding(name):
    duration = 2.345
    audio = _render(_plan(name, seed=3, duration=duration))
    assert audio.dtype == np.float32 and audio.shape == (round(duration * SAMPLE_RATE),)
    assert np.abs(audio).max() == pytest.approx(general_midi.PEAK, abs=1e-6)
    frames = audio[: len(audio) // 800 * 800].reshape(-1, 800)
    assert np.mean(np.sqrt(np.mean(frames**2, axis=1)) > 0.01) > 0.1  # at least 10 % of 50 ms frames above -40 dB
    assert abs(audio[-1]) < 1e-3  # faded out


@pytest.mark.parametrize("sample_rate", [22050, 48000])
def test_other_sample_rates_keep_the_exact_length(sample_rate):
    recipe = _plan("violin", seed=1, duration=1.23)
    audio = _render(recipe, sample_rate)
    assert audio.shape == (round(1.23 * sample_rate),) and np.abs(audio).max() == pytest.approx(0.9, abs=1e-6)


def test_render_is_deterministic_after_other_renders_and_in_a_fresh_process():
    recipe = _plan("erhu", seed=5)
    first = _render(recipe).tobytes()
    _render(_plan("drum kit", seed=2))
    _render(_plan("ocean waves", seed=2))
    assert _render(recipe).tobytes() == first
    script = (
        "import json, sys\n"
        "from bisep.data.sources import RenderResources, general_midi\n"
        "recipe = json.loads(sys.argv[1])\n"
        f"audio = general_midi.render(recipe, {SAMPLE_RATE}, RenderResources({{'TimGM6mb': sys.argv[2]}}))\n"
        "sys.stdout.buffer.write(audio.tobytes())\n"
    )
    repository = Path(general_midi.__file__).parents[3]
    fresh = subprocess.run([sys.executable, "-c", script, json.dumps(recipe), str(TIM)], cwd=repository,
                           capture_output=True, check=True).stdout
    assert fresh == first


def test_recipe_survives_a_json_round_trip():
    recipe = _plan("acoustic guitar", seed=4)
    again = json.loads(json.dumps(recipe))
    assert again == recipe
    assert general_midi.recipe_fingerprint(again) == general_midi.recipe_fingerprint(recipe)
    assert _render(again).tobytes() == _render(recipe).tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_plans_repeat_for_a_seed_and_differ_across_seeds(name):
    assert _plan(name, seed=9) == _plan(name, seed=9)
    fingerprints = {general_midi.recipe_fingerprint(_plan(name, seed)) for seed in range(6)}
    assert len(fingerprints) == 6


def test_fingerprint_ignores_the_soundfont_but_not_the_notes():
    recipe = _plan("piano", seed=0)
    other_font = dict(recipe, soundfont="FluidR3_GM")
    assert general_midi.recipe_fingerprint(other_font) == general_midi.recipe_fingerprint(recipe)
    other_note = json.loads(json.dumps(recipe))
    other_note["notes"][0][2] += 1
    assert general_midi.recipe_fingerprint(other_note) != general_midi.recipe_fingerprint(recipe)


@pytest.mark.parametrize("name", NAMES)
def test_notes_start_near_zero_and_end_before_the_clip_end(name):
    for seed in range(5):
        recipe = _plan(name, seed, duration=3.0)
        notes = recipe["notes"]
        assert notes == sorted(notes)
        assert notes[0][0] <= 0.1
        assert max(onset + length for onset, length, _, _ in notes) <= 3.0 - general_midi.EDGE_SECONDS + 1e-3
        assert all(0 <= key <= 127 and 1 <= velocity <= 127 for _, _, key, velocity in notes)


def test_soundfont_is_drawn_from_the_given_names():
    drawn = {general_midi.plan("flute", np.random.default_rng(seed), 2.0, soundfonts=["a", "b"])["soundfont"]
             for seed in range(20)}
    assert drawn == {"a", "b"}
    assert _plan("flute", seed=0)["soundfont"] == "TimGM6mb"


@pytest.mark.parametrize("name", [name for name in NAMES if BY_NAME[name].technique is not None
                                  and BY_NAME[name].technique.textures == ("melody",)])
def test_melodies_stay_in_the_instruments_range(name):
    for seed in range(8):
        recipe = _plan(name, seed)
        program = next(p for p in BY_NAME[name].programs if p.number == recipe["program"])
        keys = [key for _, _, key, _ in recipe["notes"]]
        assert program.lowest_key <= min(keys) and max(keys) <= program.highest_key


def test_low_instruments_sound_lower_than_high_ones():
    def f0(name: str) -> float:
        return float(np.median([_dominant_f0(_render(_plan(name, seed))) for seed in range(3)]))

    assert f0("tuba") < f0("flute") / 2
    assert f0("cello") < f0("violin")


def test_erhu_slides_on_a_pentatonic_mode():
    for seed in range(4):
        recipe = _plan("erhu", seed)
        assert recipe["program"] == 110 and recipe["pitch_bend_range"] == 12
        assert len({key % 12 for _, _, key, _ in recipe["notes"]}) <= 5
        assert any(value != 0 for _, value in recipe["pitch_bends"]) or len(recipe["notes"]) < 3


def test_drum_kit_plays_kick_snare_and_cymbals_on_the_percussion_bank():
    keys = set()
    for seed in range(4):
        recipe = _plan("drum kit", seed)
        assert recipe["bank"] == 128
        keys |= {key for _, _, key, _ in recipe["notes"]}
    assert {36, 38} <= keys and keys & {42, 46, 51}


@pytest.mark.parametrize("content", [b"", b"hello", bytes(np.random.default_rng(0).integers(0, 256, 65536,
                                                                                             dtype=np.uint8))])
def test_corrupt_soundfont_is_refused_with_one_line_naming_it(tmp_path, content):
    path = tmp_path / "corrupt.sf2"
    path.write_bytes(content)
    with pytest.raises(SourceUnavailable, match="corrupt.sf2") as error:
        general_midi.load_soundfonts([path])
    assert "\n" not in str(error.value)


def test_truncated_soundfont_is_refused(tmp_path):
    path = tmp_path / "half.sf2"
    path.write_bytes(TIM.read_bytes()[:3_000_000])
    with pytest.raises(SourceUnavailable, match="half.sf2.*not a readable SF2"):
        general_midi.load_soundfonts([path])


def test_missing_soundfont_or_folder_is_refused(tmp_path):
    with pytest.raises(SourceUnavailable, match="none.sf2: no such file"):
        general_midi.load_soundfonts([tmp_path / "none.sf2"])
    with pytest.raises(SourceUnavailable, match="not a file"):
        general_midi.load_soundfonts([tmp_path])


def test_soundfonts_are_named_by_stem_and_identical_copies_dropped(tmp_path):
    copy = tmp_path / "MyFont.sf2"
    shutil.copyfile(TIM, copy)
    assert general_midi.load_soundfonts([copy]) == {"MyFont": copy}
    assert general_midi.load_soundfonts([TIM, copy]) == {"TimGM6mb": TIM}
    assert general_midi.default_soundfonts()["TimGM6mb"].name == "TimGM6mb.sf2"


def test_unavailable_reason(tmp_path):
    assert general_midi.unavailable_reason(RESOURCES) is None
    assert "no General MIDI soundfont" in general_midi.unavailable_reason(RenderResources())
    corrupt = tmp_path / "bad.sf2"
    corrupt.write_bytes(b"RIFF")
    reason = general_midi.unavailable_reason(RenderResources({"bad": corrupt}))
    assert "bad.sf2" in reason and "\n" not in reason


def test_render_refuses_a_soundfont_name_it_was_not_given():
    recipe = dict(_plan("tuba", seed=0), soundfont="FluidR3_GM")
    with pytest.raises(SourceUnavailable, match="FluidR3_GM"):
        general_midi.render(recipe, SAMPLE_RATE, RESOURCES)


def test_plan_refuses_unknown_classes_and_too_short_clips():
    with pytest.raises(ValueError, match="unknown"):
        _plan("banjo", seed=0)
    with pytest.raises(ValueError, match="at least"):
        _plan("flute", seed=0, duration=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_phrasings_compose_into_captions(name):
    sound = BY_NAME[name]
    assert len(sound.phrasings) >= 5 and len(sound.held_out_phrasings) >= 3
    assert not set(sound.phrasings) & set(sound.held_out_phrasings)
    for phrase in sound.phrasings + sound.held_out_phrasings:
        assert phrase == phrase.lower() and phrase == phrase.strip() and not re.search(r"[.,;:!?]$", phrase)
        assert not set(re.findall(r"[a-z]+", phrase)) & CAPTION_SPLIT_WORDS, phrase


def test_classes_keep_their_words_apart():
    phrases = [phrase for sound in general_midi.CLASSES for phrase in sound.phrasings + sound.held_out_phrasings]
    assert len(phrases) == len(set(phrases))
    for sound in general_midi.CLASSES:
        for other in general_midi.CLASSES:
            if other is not sound:
                assert not any(other.name in phrase for phrase in sound.phrasings + sound.held_out_phrasings)
    erhu_words = {word for phrase in BY_NAME["erhu"].phrasings + BY_NAME["erhu"].held_out_phrasings
                  for word in phrase.split()}
    assert not erhu_words & {"violin", "fiddle", "fiddling", "cello"}
