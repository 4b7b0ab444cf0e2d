"""A reference-free score: how well a grounding model says an estimate matches its prompt (a CLAPScore).

The CLAPScore of an estimate is the cosine similarity, in the grounding model's joint space, between the
estimate's audio embedding and its prompt's text embedding (as in the DCASE 2024 language-queried separation
task, without the x100 scaling). It needs no reference, so it also works where no clean source exists; it is
biased towards separators trained against the same grounding model (the weak method's contrastive loss
optimises exactly this similarity), so pass another grounding model to compare methods fairly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from bisep.grounding.base import GroundingModel

REFERENCE = "reference"
"""The clean references' CLAPScore: the reference point of what a perfect separation scores."""


@torch.inference_mode()
def similarity_matrix(grounding: GroundingModel, waveforms: np.ndarray, sample_rate: int,
                      prompts: Sequence[str]) -> np.ndarray:
    """``waveforms`` ``(n, samples)`` at ``sample_rate`` Hz and ``k`` prompts -> ``(n, k)`` cosine similarities
    (one batched audio embedding call; the CLAPScore of waveform i for prompt j is entry ``[i, j]``)."""
    if np.ndim(waveforms) != 2:
        raise ValueError(f"waveforms must be (n, samples), got shape {np.shape(waveforms)}")
    parameter = next(grounding.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    audio = grounding.encode_audio(torch.from_numpy(np.asarray(waveforms, np.float32)).to(device), sample_rate)
    text = grounding.encode_text(list(prompts)).embedding.to(device)
    return grounding.similarity(audio, text).double().cpu().numpy()
