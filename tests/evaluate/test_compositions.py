"""Composition lists: what is mixed and queried, and every malformed list refused with one clear message."""

import numpy as np
import pytest

from bisep.data.format import DatasetError
from bisep.evaluate.compositions import CompositionList
from synthetic import make_dataset


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "data", silent_clip=True)


def test_mixture_is_the_mean_and_references_sum_to_it(dataset):
    compositions = CompositionList.open(dataset / "compositions" / "test_2.csv")
    first = compositions.compositions[1]
    assert first.prompts == ("a hiss", "a beeping") and first.classes == ("hiss", "beeping")
    loaded = compositions.load(first)
    assert loaded.references.shape == (2, 20000)  # the shorter clip (1 s) is padded to the longer (1.25 s)
    assert np.all(loaded.references[1, 16000:] == 0)
    assert np.allclose(loaded.mixture, loaded.references.sum(0))
    assert loaded.silent_clips == []
    assert compositions.load(compositions.compositions[3]).silent_clips == ["test-004"]


def test_a_multi_phrase_clip_is_queried_with_its_caption(dataset):
    import json

    path = dataset / "annotations.json"
    data = json.loads(path.read_text())
    data["clips"]["test-000"]["phrases"] = ["a low hum", "a click"]
    path.write_text(json.dumps(data))
    compositions = CompositionList.open(dataset / "compositions" / "test_2.csv")
    assert compositions.compositions[0].prompts == ("A low hum.", "a high whistle")


@pytest.mark.parametrize("rows, message", [
    ("id,clip_1,clip_2\nx,test-000,\n", "has 1 clip"),
    ("id,clip_1,clip_2\nx,test-000,test-000\n", "repeats a clip"),
    ("id,clip_1,clip_2\nx,test-000,test-999\n", "unknown clip test-999"),
    ("id,clip_1,clip_2\n", "no compositions"),
])
def test_malformed_lists_are_refused(dataset, rows, message):
    (dataset / "compositions" / "bad.csv").write_text(rows)
    with pytest.raises(DatasetError, match=message):
        CompositionList.open(dataset / "compositions" / "bad.csv")


def test_missing_files_and_wrong_paths_are_refused(dataset, tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        CompositionList.open(dataset / "compositions" / "nope.csv")
    with pytest.raises(DatasetError, match="is a folder.*test_2.csv"):
        CompositionList.open(dataset)
    (tmp_path / "elsewhere.csv").write_text("id,clip_1,clip_2\n")
    with pytest.raises(DatasetError, match="DATASET/compositions/NAME.csv"):
        CompositionList.open(tmp_path / "elsewhere.csv")
    (dataset / "audio" / "test" / "test-003.wav").unlink()
    with pytest.raises(DatasetError, match="composition test_2-000001: audio of clip test-003 not found"):
        CompositionList.open(dataset / "compositions" / "test_2.csv")
