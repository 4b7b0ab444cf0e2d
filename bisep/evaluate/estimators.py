"""What is scored: each estimator turns a loaded composition into one estimate per queried source."""

from __future__ import annotations

from typing import Callable

import numpy as np

from bisep.evaluate.compositions import Composition, LoadedComposition
from bisep.evaluate.oracles import IdealMasks
from bisep.grounding.base import check_prompts

Estimator = Callable[[Composition, LoadedComposition, int], dict[str, np.ndarray]]
"""``(composition, loaded audio, sample rate) -> {method: estimates (k, samples)}``."""


class SeparatorEstimator:
    """The separator's estimate for each clip's prompt, from one batched call per composition. ``grounding``
    encodes the prompts (the evaluation fills its text cache up front); ``device`` says where the network runs."""

    def __init__(self, separator, method: str = "model"):
        self.separator, self.method = separator, method
        self.grounding, self.device = separator.grounding, separator.device

    def __call__(self, composition: Composition, loaded: LoadedComposition, sample_rate: int) -> dict[str, np.ndarray]:
        prompts = check_prompts(list(composition.prompts))
        result = self.separator.separate(loaded.mixture, list(dict.fromkeys(prompts)), sample_rate=sample_rate)
        return {self.method: np.stack([result.sources[prompt][0] for prompt in prompts])}


class OracleEstimator:
    """The ideal ratio and binary masks with the given STFT (use the separator's)."""

    def __init__(self, n_fft: int, hop_length: int):
        self.masks = IdealMasks(n_fft, hop_length)

    def __call__(self, composition: Composition, loaded: LoadedComposition, sample_rate: int) -> dict[str, np.ndarray]:
        return self.masks(loaded.references)


def run_estimators(estimators: list[Estimator], composition: Composition, loaded: LoadedComposition,
                   sample_rate: int) -> dict[str, np.ndarray]:
    estimates: dict[str, np.ndarray] = {}
    for estimator in estimators:
        estimates.update(estimator(composition, loaded, sample_rate))
    return estimates
