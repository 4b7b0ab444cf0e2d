"""Ideal masks: they partition the mixture, pick the right source, and refuse wrong shapes."""

import numpy as np
import pytest

from bisep.evaluate.metrics import score_composition
from bisep.evaluate.oracles import IdealMasks
from synthetic import sound


@pytest.fixture
def references():
    return np.stack([sound("low hum", 1.0, 0), sound("high whistle", 1.0, 1)]) / 2


def test_masks_partition_the_mixture(references):
    estimates = IdealMasks(254, 64)(references)
    mixture = references.sum(0)
    for name in ("irm", "ibm"):
        assert estimates[name].shape == references.shape and estimates[name].dtype == np.float32
        assert np.abs(estimates[name].sum(0) - mixture).max() < 1e-5, name


def test_disjoint_tones_are_separated_almost_perfectly(references):
    estimates = IdealMasks(510, 128)(references)
    scores = score_composition(references.astype(np.float64), estimates, references.sum(0))
    for name in ("irm", "ibm"):
        assert min(scores[name]["sdri"]) > 15, (name, scores[name]["sdri"])


def test_the_binary_mask_keeps_only_the_louder_source_per_bin():
    references = np.stack([sound("low hum", 1.0, 0), 0.01 * sound("low hum", 1.0, 5)])
    estimates = IdealMasks(254, 64)(references)
    assert np.abs(estimates["ibm"][1]).max() < 1e-6
    assert np.abs(estimates["irm"][1]).max() > 1e-4


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="sources, samples"):
        IdealMasks(254, 64)(np.zeros(4000))
