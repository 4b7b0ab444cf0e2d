"""Field recordings: discovery (dedupe, reserved refusal, archives), the split of recordings between training and
held-out splits, and the render contract, on small recordings written here in place of the Debian packages."""

import zipfile

import numpy as np
import pytest
import soundfile

from bisep.data.reserved import ReservedSource
from bisep.data.sources import RenderResources, field_recordings
from bisep.data.sources.field_recordings import RecordingPackage, Recording
from bisep.data import validation_sets


def _burst(seconds, frequency, rate=22050):
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t) * np.hanning(t.size)).astype(np.float32)


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Two fake packages: a folder of moos (one copied twice) and a zip archive of shatters."""
    folder = tmp_path / "farm"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for index in range(4):
        soundfile.write(folder / "a" / f"cow_{index}.wav", _burst(1.0 + 0.2 * index, 180 + 20 * index), 22050)
    (folder / "b" / "cow_0.wav").write_bytes((folder / "a" / "cow_0.wav").read_bytes())  # a copy: kept once
    (folder / "a" / "silent.wav").write_bytes(b"")
    soundfile.write(folder / "a" / "silence.wav", np.zeros(22050, np.float32), 22050)
    archive = tmp_path / "game"
    archive.mkdir()
    with zipfile.ZipFile(archive / "sounds.pk3", "w") as opened:
        for index in range(3):
            soundfile.write(tmp_path / "glass.ogg", _burst(0.8, 2000 + 300 * index, 44100), 44100)
            opened.write(tmp_path / "glass.ogg", f"sound/misc/breakglass0{index}.ogg")
    fakes = {"farm": RecordingPackage("farm", folder, "test"),
             "game": RecordingPackage("game", archive, "test", "sounds.pk3")}
    monkeypatch.setattr(field_recordings, "PACKAGES", fakes)
    monkeypatch.setattr(field_recordings, "SOURCES", {
        "cow mooing": (("farm", ("a/cow_*.wav", "b/cow_*.wav", "a/silen*.wav")),),
        "glass breaking": (("game", ("sound/misc/breakglass*.ogg",)),),
    })
    field_recordings._trimmed.cache_clear()
    field_recordings._envelope.cache_clear()
    field_recordings._archive_names.cache_clear()
    yield fakes
    field_recordings._trimmed.cache_clear()
    field_recordings._envelope.cache_clear()
    field_recordings._archive_names.cache_clear()


def test_discovery_finds_folders_and_archives_once_each(packages):
    found = field_recordings.discover_recordings(packages)
    assert [r.key for r in found["cow mooing"]] == [f"farm:a/cow_{i}.wav" for i in range(4)]  # no copy, no silence
    assert [r.key for r in found["glass breaking"]] == [f"game:sound/misc/breakglass0{i}.ogg" for i in range(3)]
    assert found["cow mooing"][3].seconds == pytest.approx(1.6, abs=0.1)
    assert set(field_recordings.provenance(found)) == {"farm", "game"}


def test_held_out_recordings_never_train():
    recordings = tuple(Recording(f"p:{i}.wav", 1.0) for i in range(9))
    held = set(field_recordings.split_recordings(recordings, "test"))
    assert held == set(field_recordings.split_recordings(recordings, "valid"))
    for split in ("grounding", "train", "train_sup"):
        trained = set(field_recordings.split_recordings(recordings, split))
        assert trained and not trained & held and trained | held == set(recordings)
    assert len(held) == 2
    single = recordings[:1]
    assert field_recordings.split_recordings(single, "test") == field_recordings.split_recordings(single, "train")


def test_render_is_deterministic_exact_length_and_never_silent(packages):
    found = field_recordings.discover_recordings(packages)
    resources = RenderResources(recordings=found)
    for name in ("cow mooing", "glass breaking"):
        recipe = field_recordings.plan(name, np.random.default_rng(3), 3.7, recordings=found[name], split="train")
        again = field_recordings.plan(name, np.random.default_rng(3), 3.7, recordings=found[name], split="train")
        assert recipe == again and len(recipe["shots"]) >= 2  # one-shots shorter than the clip repeat
        audio = field_recordings.render(recipe, 16000, resources)
        assert audio.dtype == np.float32 and audio.size == round(3.7 * 16000)
        assert np.abs(audio).max() == pytest.approx(field_recordings.PEAK, rel=1e-4)
        assert np.array_equal(audio, field_recordings.render(recipe, 16000, resources))
        held = {r.key for r in field_recordings.split_recordings(found[name], "test")}
        assert not {shot["key"] for shot in recipe["shots"]} & held


def test_classes_follow_what_is_installed(packages):
    empty = RenderResources()
    assert field_recordings.unavailable_reason(empty) and field_recordings.classes_available(empty) == ()
    resources = RenderResources(recordings=field_recordings.discover_recordings(packages))
    assert field_recordings.unavailable_reason(resources) is None
    assert [c.name for c in field_recordings.classes_available(resources)] == ["cow mooing", "glass breaking"]


def test_reserved_packages_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "share" / "sonic-pi" / "samples"
    folder.mkdir(parents=True)
    soundfile.write(folder / "cow_1.wav", _burst(1.0, 200), 22050)
    monkeypatch.setattr(field_recordings, "SOURCES", {"cow mooing": (("pi", ("cow_*.wav",)),)})
    with pytest.raises(ReservedSource):
        field_recordings.discover_recordings({"pi": RecordingPackage("pi", folder, "test")})


def test_training_and_validation_packages_stay_apart():
    used = {package for sources in field_recordings.SOURCES.values() for package, _ in sources}
    assert used <= set(field_recordings.PACKAGES)
    validation = {real.source.package for real in validation_sets.REAL_CLASSES} | {"csound-soundfont"}
    assert validation <= set(field_recordings.VALIDATION_PACKAGES)
    assert not used & validation
    assert set(field_recordings.PACKAGES) <= set(validation_sets.TRAINING_PACKAGES)
