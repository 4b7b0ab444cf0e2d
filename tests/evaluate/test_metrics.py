"""bss_eval through fast_bss_eval agrees with mir_eval's bss_eval_sources (no permutation) on random and real
signals; SI-SDR on hand-computed cases; refusals of wrong shapes; silent estimates."""

import warnings

import numpy as np
import pytest

from bisep.evaluate.compositions import CompositionList
from bisep.evaluate.metrics import DB_LIMIT, bss_eval, score_composition, si_sdr
from bisep.evaluate.oracles import IdealMasks

TOLERANCE_DB = 1e-6


def mir_eval_sources(references, estimates):
    from mir_eval.separation import bss_eval_sources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is deprecated in mir_eval 0.8
        return bss_eval_sources(references, estimates, compute_permutation=False)[:3]


def leaky_estimates(references, rng, leak=0.3, noise=0.05):
    """Each reference, filtered, with some of the others and some noise: every bss_eval term is non-trivial."""
    kernel = np.array([1.0, 0.4, -0.2])
    filtered = np.stack([np.convolve(r, kernel)[:r.shape[0]] for r in references])
    others = references.sum(0, keepdims=True) - references
    return filtered + leak * others + noise * references.std() * rng.standard_normal(references.shape)


def assert_agrees(references, estimates, mixture):
    ours = score_composition(references, {"estimate": estimates}, mixture)
    theirs = mir_eval_sources(references, estimates)
    for name, values in zip(("sdr", "sir", "sar"), theirs):
        assert np.abs(np.array(ours["estimate"][name]) - values).max() < TOLERANCE_DB, name
    repeated = np.repeat(mixture[None], references.shape[0], 0)
    mixture_sdr, mixture_sir, mixture_sar = mir_eval_sources(references, repeated)
    assert np.abs(np.array(ours["mixture"]["sdr"]) - mixture_sdr).max() < TOLERANCE_DB
    assert np.abs(np.array(ours["mixture"]["sir"]) - mixture_sir).max() < TOLERANCE_DB
    # The mixture lies in the references' span: its SAR is unbounded (mir_eval gives a huge number), ours the limit.
    assert np.all(mixture_sar > DB_LIMIT) and ours["mixture"]["sar"] == [DB_LIMIT] * references.shape[0]


@pytest.mark.parametrize("sources", [2, 3])
def test_agrees_with_mir_eval_on_random_signals(sources):
    rng = np.random.default_rng(sources)
    references = rng.standard_normal((sources, 8000)) * rng.uniform(0.2, 2.0, (sources, 1))
    assert_agrees(references, leaky_estimates(references, rng), references.sum(0))


def test_agrees_with_mir_eval_on_real_signals(tiny_corpus):
    compositions = CompositionList.open(tiny_corpus / "compositions" / "test_2.csv")
    masks = IdealMasks(510, 256)
    rng = np.random.default_rng(0)
    for composition in compositions.compositions[:1]:
        loaded = compositions.load(composition)
        references = loaded.references.astype(np.float64)
        for estimates in (masks(loaded.references)["irm"], leaky_estimates(references, rng)):
            assert_agrees(references, estimates.astype(np.float64), loaded.mixture.astype(np.float64))


def test_si_sdr_of_a_scaled_reference_plus_orthogonal_noise():
    time = np.arange(16000) / 16000
    reference = np.sin(2 * np.pi * 100 * time)
    noise = 0.1 * np.cos(2 * np.pi * 100 * time)  # zero-mean and orthogonal to the reference
    expected = 10 * np.log10(np.sum((3 * reference) ** 2) / np.sum(noise**2))
    assert si_sdr(reference[None], (3 * reference + noise)[None])[0] == pytest.approx(expected, abs=1e-6)
    assert si_sdr(reference[None], (-0.5 * reference)[None])[0] == DB_LIMIT


def test_perfect_estimates_hit_the_limit_and_improvements_are_differences():
    rng = np.random.default_rng(1)
    references = rng.standard_normal((2, 16000))
    mixture = references.sum(0)
    scores = score_composition(references, {"perfect": references, "swapped": references[::-1]}, mixture)
    assert scores["perfect"]["sdr"] == pytest.approx([DB_LIMIT, DB_LIMIT], abs=1e-3)
    assert np.allclose(np.array(scores["perfect"]["sdri"]),
                       np.array(scores["perfect"]["sdr"]) - np.array(scores["mixture"]["sdr"]))
    assert max(scores["swapped"]["sdr"]) < -10  # no permutation: the swapped estimates score as wrong
    assert scores["mixture"]["sdri"] == [0.0, 0.0]
    assert scores["silent_estimates"] == {"perfect": 0, "swapped": 0}


def test_a_silent_estimate_scores_the_floor_and_is_counted():
    rng = np.random.default_rng(2)
    references = rng.standard_normal((2, 4000))
    estimates = references.copy()
    estimates[1] = 0.0
    scores = score_composition(references, {"model": estimates}, references.sum(0))
    assert scores["silent_estimates"] == {"model": 1}
    for name in ("sdr", "sir", "sar", "si_sdr"):
        assert scores["model"][name][1] == -DB_LIMIT
    assert scores["model"]["sdr"][0] > 50


def test_wrong_shapes_are_refused():
    signal = np.zeros((2, 4000))
    with pytest.raises(ValueError, match="sources, samples"):
        bss_eval(signal[0], signal, [[0, 0]])
    with pytest.raises(ValueError, match="too short"):
        bss_eval(signal[:, :100], signal[:, :100], [[0, 0]])
    with pytest.raises(ValueError, match="point outside"):
        bss_eval(signal + 1, signal + 1, [[0, 2]])
    with pytest.raises(ValueError, match="do not match"):
        score_composition(signal, {"model": signal[:1]}, signal[0])
    with pytest.raises(ValueError, match="matching shapes"):
        si_sdr(signal, signal[:1])
