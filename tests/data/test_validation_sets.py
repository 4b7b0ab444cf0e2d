"""Tests of the validation sets: tiny builds (one clip per class, six compositions per list), determinism, the
composition lists as the evaluator mixes them, and refusal of reserved, training and missing sources."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bisep.audio import load_audio
from bisep.cli import run
from bisep.data import validation_sets
from bisep.data.validation_sets import ValidationOptions
from bisep.evaluate.compositions import CompositionList

TINY = ValidationOptions(seed=3, per_class=1, items=6, progress=False)
REAL_SOURCES = {real.source.package: real.source for real in validation_sets.REAL_CLASSES}
MISSING = [name for name, source in REAL_SOURCES.items() if not source.path.exists()]
needs_real = pytest.mark.skipif(bool(MISSING), reason=f"Debian packages not installed: {', '.join(MISSING)}")
needs_soundfont = pytest.mark.skipif(not validation_sets.CSOUND_SOUNDFONT.path.is_file(),
                                     reason="Debian package csound-soundfont not installed")


@pytest.fixture(scope="module")
def realval(tmp_path_factory):
    if MISSING:
        pytest.skip(f"Debian packages not installed: {', '.join(MISSING)}")
    folder = tmp_path_factory.mktemp("realval") / "realval"
    validation_sets.build_real_validation(folder, TINY)
    return folder


def _files(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@needs_real
def test_same_seed_gives_identical_files(realval, tmp_path):
    again = tmp_path / "again"
    validation_sets.build_real_validation(again, TINY)
    assert _files(again) == _files(realval)
    assert not [p for p in realval.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


@needs_real
@pytest.mark.parametrize("name", ["valid_2", "valid_3"])
def test_compositions_mix_clips_of_different_classes_whose_stems_sum_to_the_mixture(realval, name):
    compositions = CompositionList.open(realval / "compositions" / f"{name}.csv")
    k = int(name[-1])
    assert len(compositions.compositions) == 6
    for composition in compositions.compositions:
        assert len(set(composition.classes)) == len(composition.clips) == k
        loaded = compositions.load(composition)
        np.testing.assert_allclose(loaded.references.sum(0), loaded.mixture, atol=1e-6)
        for reference, clip_id in zip(loaded.references, composition.clips):
            clip = load_audio(compositions.dataset.audio_path(clip_id), channels=1)[0][0].numpy()
            np.testing.assert_allclose(reference * k, clip, atol=1e-6)


@needs_real
def test_clips_are_peak_normalised_4_s_and_prompted_in_everyday_words(realval):
    annotations = json.loads((realval / "annotations.json").read_text())
    prompts = {real.name: set(real.prompts) for real in validation_sets.REAL_CLASSES}
    assert sorted(record["labels"][0] for record in annotations["clips"].values()) == sorted(prompts)
    for record in annotations["clips"].values():
        assert record["phrases"] == [record["caption"]] and record["caption"] in prompts[record["labels"][0]]
        waveform, rate = load_audio(realval / record["audio"])
        assert rate == 16000 and waveform.shape == (1, 64000)
        assert float(waveform.abs().max()) == pytest.approx(validation_sets.PEAK, abs=1e-3)
    manifest = json.loads((realval / "manifest.json").read_text())
    assert {source["package"] for source in manifest["sources"]} == set(REAL_SOURCES)
    assert all(source["version"] not in ("", "not installed") and source["licence"] for source in manifest["sources"])


def test_a_missing_package_is_one_error_line_naming_it(monkeypatch, tmp_path, capsys):
    absent = validation_sets.DebianSource("freepats", tmp_path / "no-freepats")
    classes = tuple(dataclasses.replace(real, source=absent) if real.source.package == "freepats" else real
                    for real in validation_sets.REAL_CLASSES)
    monkeypatch.setattr(validation_sets, "REAL_CLASSES", classes)
    assert run(["data", "realval", "--out", str(tmp_path / "out"), "--per-class", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "freepats" in error and "apt-get install freepats" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path, reason", [
    ("/usr/share/sounds/sf2/MuseScore_General.sf2", "reserved for independent evaluation"),
    ("/usr/share/asterisk/sounds/en/hello.wav", "reserved for independent evaluation"),
    ("/usr/share/hydrogen/data/drumkits/TheBlackPearl/kick.flac", "training corpus uses"),
])
def test_reserved_and_training_sources_are_refused(path, reason, tmp_path, capsys):
    assert run(["data", "soundfont-val", "--out", str(tmp_path / "out"), "--soundfont", path]) == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_soundfont
def test_soundfont_set_uses_the_validation_paraphrases(tmp_path):
    from bisep.data.sources import general_midi
    from bisep.evaluate.grounding import VALIDATION_PHRASINGS

    folder = tmp_path / "sfval"
    options = dataclasses.replace(TINY, items=4)
    manifest = validation_sets.build_soundfont_validation(folder, options=options)
    assert manifest["soundfont"]["package"] == "csound-soundfont" and manifest["compositions"] == {
        "valid_2": 4, "valid_3": 4}
    paraphrases = json.loads(VALIDATION_PHRASINGS.read_text())["classes"]
    training = {phrase for sound in general_midi.CLASSES for phrase in sound.phrasings + sound.held_out_phrasings}
    clips = json.loads((folder / "annotations.json").read_text())["clips"].values()
    assert {clip["labels"][0] for clip in clips} == {sound.name for sound in general_midi.CLASSES}
    for clip in clips:
        assert clip["caption"] in paraphrases[clip["labels"][0]] and clip["caption"] not in training
    CompositionList.open(folder / "compositions" / "valid_3.csv")
