"""Oracle estimates from the true sources: what a magnitude mask with the mixture's phase can reach.

Both masks are computed with the separator's own STFT (``bisep.spectral``, its ``n_fft`` and ``hop_length``) on
the sources as they sit in the mixture, applied to the mixture's complex spectrogram (so the mixture's phase is
kept) and inverted:

- ideal ratio mask (IRM): ``|S_i| / sum_j |S_j|`` per bin (magnitude ratio, alpha = 1; the masks sum to one);
- ideal binary mask (IBM): 1 where source i is the loudest source in the bin, else 0.

They are reference ceilings for mask-based separators such as bisep's, not strict upper bounds: another mask in
[0, 1] can beat them on a given mixture (the best one per bin in the least-squares sense is phase-dependent).
"""

from __future__ import annotations

import numpy as np
import torch

from bisep.spectral import ISTFT, STFT

ORACLES = ("irm", "ibm")


class IdealMasks:
    """``references (k, samples)`` -> ``{"irm": (k, samples), "ibm": (k, samples)}`` float32."""

    def __init__(self, n_fft: int, hop_length: int):
        self.stft, self.istft = STFT(n_fft, hop_length), ISTFT(n_fft, hop_length)

    @torch.inference_mode()
    def __call__(self, references: np.ndarray) -> dict[str, np.ndarray]:
        if np.ndim(references) != 2:
            raise ValueError(f"references must be (sources, samples), got shape {np.shape(references)}")
        sources = torch.from_numpy(np.asarray(references, np.float64))
        spectrograms = self.stft(sources)
        mixture = spectrograms.sum(0)
        magnitudes = spectrograms.abs()
        ratio = magnitudes / magnitudes.sum(0).clamp_min(torch.finfo(torch.float64).tiny)
        binary = torch.nn.functional.one_hot(magnitudes.argmax(0), sources.shape[0]).movedim(-1, 0).to(ratio.dtype)
        length = sources.shape[-1]
        return {name: self.istft(mask * mixture, length).float().numpy()
                for name, mask in (("irm", ratio), ("ibm", binary))}
