"""Separation metrics: bss_eval SDR, SIR and SAR (fast_bss_eval, numpy, float64, no permutation) and SI-SDR.

bss_eval (Vincent et al. 2006, ``bss_eval_sources`` with a 512-tap distortion filter) scores estimate ``j`` against
the reference it was asked for, with every reference of the composition spanning the interference space. All the
estimates of one composition (the model's, the oracles', the mixture) are scored in one fast_bss_eval call: the
references' correlation matrices and their solves are shared, so the oracles and the mixture cost little extra.

fast_bss_eval 0.1.4's non-permuting ``bss_eval_sources`` path fails under numpy 2 (a ``solve`` broadcasting
change) and its torch path crashes in oneMKL on CPU, so we take its pairwise square-cosine statistics (numpy) and
read off the diagonal: the same numbers as mir_eval's ``bss_eval_sources(..., compute_permutation=False)`` to
about 1e-8 dB (``tests/evaluate/test_metrics.py``).
"""

from __future__ import annotations

import numpy as np

FILTER_LENGTH = 512
DB_LIMIT = 100.0
SILENT_NORM = 1e-6
"""An estimate whose L2 norm is below this holds nothing to score (fast_bss_eval stops normalising there)."""

BSS_METRICS = ("sdr", "sir", "sar")
MIXTURE = "mixture"
"""The unprocessed mixture's scores: the baseline of every improvement."""


def _check(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    references, estimates = np.asarray(references, np.float64), np.asarray(estimates, np.float64)
    if references.ndim != 2 or estimates.ndim != 2:
        raise ValueError(f"references and estimates must be (sources, samples), got shapes "
                         f"{references.shape} and {estimates.shape}")
    if references.shape[-1] != estimates.shape[-1]:
        raise ValueError(f"references have {references.shape[-1]} samples, estimates {estimates.shape[-1]}")
    if references.shape[-1] < 2 * FILTER_LENGTH:
        raise ValueError(f"signals of {references.shape[-1]} samples are too short for bss_eval "
                         f"(at least {2 * FILTER_LENGTH})")
    return references, estimates


def _ratio_db(coherence: np.ndarray) -> np.ndarray:
    """Square cosine ``c`` of the wanted part -> ``10 log10(c / (1 - c))`` dB, limited to +-100 dB."""
    coherence = np.clip(coherence, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return np.clip(10.0 * np.log10(coherence) - 10.0 * np.log10(1.0 - coherence), -DB_LIMIT, DB_LIMIT)


def silent(estimates: np.ndarray) -> np.ndarray:
    """``(m,)`` bool: which estimates are (numerically) silent."""
    return np.linalg.norm(np.asarray(estimates, np.float64), axis=-1) < SILENT_NORM


def bss_eval(references: np.ndarray, estimates: np.ndarray, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """SDR, SIR and SAR in dB, ``(n,)`` each, for ``pairs`` ``(n, 2)`` of (reference index, estimate index) into
    ``references`` ``(k, samples)`` and ``estimates`` ``(m, samples)``: each pair is scored as given (no
    permutation), with all k references spanning the interference space.

    A silent estimate scores -100 dB on all three (mir_eval refuses it; the paper's code drops the pair).
    """
    from fast_bss_eval.numpy.metrics import square_cosine_metrics

    references, estimates = _check(references, estimates)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    reference_index, estimate_index = pairs[:, 0], pairs[:, 1]
    if pairs.size and (pairs.min() < 0 or reference_index.max() >= references.shape[0]
                       or estimate_index.max() >= estimates.shape[0]):
        raise ValueError(f"pairs {pairs.tolist()} point outside {references.shape[0]} references "
                         f"and {estimates.shape[0]} estimates")
    with np.errstate(divide="ignore", invalid="ignore"):
        # (k, m) square cosines of each estimate with each reference's filtered subspace, and with all references'
        coherence_target, coherence_all = square_cosine_metrics(references, estimates, filter_length=FILTER_LENGTH,
                                                               pairwise=True)
        target = coherence_target[reference_index, estimate_index]
        all_references = coherence_all[reference_index, estimate_index]
        scores = {"sdr": _ratio_db(target), "sir": _ratio_db(target / all_references),
                  "sar": _ratio_db(all_references)}
    quiet = silent(estimates)[estimate_index]
    for values in scores.values():
        values[quiet] = -DB_LIMIT
    return scores


def si_sdr(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, zero-mean), ``(m,)`` for matching rows ``(m, samples)``."""
    references, estimates = _check(references, estimates)
    if references.shape != estimates.shape:
        raise ValueError(f"si_sdr needs matching shapes, got {references.shape} and {estimates.shape}")
    references = references - references.mean(-1, keepdims=True)
    estimates = estimates - estimates.mean(-1, keepdims=True)
    energy = np.maximum((references**2).sum(-1, keepdims=True), 1e-300)
    target = (estimates * references).sum(-1, keepdims=True) / energy * references
    target_energy, error_energy = (target**2).sum(-1), ((estimates - target) ** 2).sum(-1)
    total = target_energy + error_energy  # the estimate's energy: zero for a silent estimate, which scores -100 dB
    return _ratio_db(np.divide(target_energy, total, out=np.zeros_like(total), where=total > 0))


def score_composition(references: np.ndarray, estimates: dict[str, np.ndarray], mixture: np.ndarray) -> dict:
    """Score every method's estimates ``(k, samples)`` and the unprocessed mixture ``(samples,)`` in one pass.

    Returns ``{"mixture": {...}, method: {...}}``, each ``{sdr, sir, sar, si_sdr, sdri, si_sdri: [k floats]}``
    (improvements over the mixture's score for the same reference), and ``"silent_estimates": {method: count}``.
    """
    references = np.asarray(references, np.float64)
    if references.ndim != 2:
        raise ValueError(f"references must be (sources, samples), got shape {references.shape}")
    sources = references.shape[0]
    methods = list(estimates)
    for method in methods:
        if np.shape(estimates[method]) != references.shape:
            raise ValueError(f"{method}: estimates {np.shape(estimates[method])} do not match references "
                             f"{references.shape}")
    mixture = np.asarray(mixture, np.float64)
    if mixture.shape != references.shape[1:]:
        raise ValueError(f"mixture {mixture.shape} does not match references {references.shape}")
    # One call: the methods' estimates row after row, then the mixture, scored against every reference.
    stacked = np.concatenate([np.asarray(estimates[m], np.float64) for m in methods] + [mixture[None]])
    mixture_index = len(methods) * sources
    slots = np.arange(sources)
    pairs = [np.stack([slots, index * sources + slots], 1) for index in range(len(methods))]
    pairs.append(np.stack([slots, np.full(sources, mixture_index)], 1))
    scores = bss_eval(references, stacked, np.concatenate(pairs))
    mixture_rows = np.broadcast_to(mixture, references.shape)

    def block(index: int) -> dict[str, np.ndarray]:
        return {name: scores[name][index * sources:(index + 1) * sources] for name in BSS_METRICS}

    baseline = block(len(methods))
    baseline["si_sdr"] = si_sdr(references, mixture_rows)
    result: dict = {MIXTURE: {name: values.tolist() for name, values in baseline.items()}}
    result[MIXTURE].update(sdri=[0.0] * sources, si_sdri=[0.0] * sources)
    result["silent_estimates"] = {}
    for index, method in enumerate(methods):
        rows = stacked[index * sources:(index + 1) * sources]
        method_scores = block(index)
        method_scores["si_sdr"] = si_sdr(references, rows)
        method_scores["sdri"] = method_scores["sdr"] - baseline["sdr"]
        method_scores["si_sdri"] = method_scores["si_sdr"] - baseline["si_sdr"]
        result[method] = {name: values.tolist() for name, values in method_scores.items()}
        result["silent_estimates"][method] = int(silent(rows).sum())
    return result

