"""The text-queried separator: mixture waveform + text features in, one mask and waveform per prompt out.

Signal path (the method's): STFT of the mixture -> log1p magnitude -> conditional U-Net (text tokens as
cross-attention keys/values) -> ``out_channels`` sound features per bin; the mask synthesizer takes, at every bin,
the inner product of those features with a sigmoid projection of the prompt's joint text embedding, each
channel scaled by a learnable weight, plus a learnable bias; a sigmoid gives the ratio mask. Estimates are
mask x mixture magnitude with the mixture's phase, back to waveforms by the inverse STFT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from bisep.grounding.base import TextFeatures
from bisep.separator.unet import ConditionalUNet
from bisep.spectral import ISTFT, STFT


@dataclass(frozen=True)
class SeparatorConfig:
    """Architecture of the separator. ``embedding_dim`` and ``token_dim`` must match the grounding model."""

    sample_rate: int = 16000
    n_fft: int = 1022
    hop_length: int = 256
    num_downs: int = 7
    base_channels: int = 64
    out_channels: int = 32
    conditioning: Literal["ca", "sa", "sca", "cat", "sca_cat", "identity"] = "sca"
    conditioned_levels: int | None = None
    condition_blocks: int = 1
    res_layers: int = 1
    heads: int = 8
    token_dim: int = 768
    embedding_dim: int = 512
    mask: Literal["ratio", "binary"] = "ratio"
    attend_padding: bool = False
    decoder_film: bool = False

    def __post_init__(self) -> None:
        """Refuse sizes no model has (a config asking for 100 000 base channels would allocate terabytes)."""
        bounds = {"sample_rate": (1000, 192_000), "n_fft": (16, 16384), "hop_length": (1, self.n_fft),
                  "num_downs": (2, 10), "base_channels": (1, 256), "out_channels": (1, 256),
                  "condition_blocks": (1, 16), "res_layers": (0, 16), "heads": (1, 64), "token_dim": (1, 8192),
                  "embedding_dim": (1, 8192)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


class MaskSynthesizer(nn.Module):
    """Per-bin mask logit: ``sum_c text[c] * scale[c] * sound[c, f, t] + bias`` (as in Sound of Pixels)."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, text: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """text ``(B, C)``, sound ``(B, C, F, T)`` -> logits ``(B, F, T)``."""
        return torch.einsum("bc,bcft->bft", text * self.scale, sound) + self.bias


class TextQueriedSeparator(nn.Module):
    def __init__(self, config: SeparatorConfig = SeparatorConfig()):
        super().__init__()
        self.config = config
        self.stft = STFT(config.n_fft, config.hop_length)
        self.istft = ISTFT(config.n_fft, config.hop_length)
        self.unet = ConditionalUNet(
            num_downs=config.num_downs, base_channels=config.base_channels, out_channels=config.out_channels,
            conditioning=config.conditioning, conditioned_levels=config.conditioned_levels,
            condition_blocks=config.condition_blocks, res_layers=config.res_layers, heads=config.heads,
            token_dim=config.token_dim, decoder_film=config.decoder_film, embedding_dim=config.embedding_dim,
        )
        self.text_projection = nn.Linear(config.embedding_dim, config.out_channels)
        nn.init.normal_(self.text_projection.weight, 0.0, 1e-4)
        self.synthesizer = MaskSynthesizer(config.out_channels)

    def mask_logits(self, magnitude: torch.Tensor, text: TextFeatures, prompts_per_mixture: int) -> torch.Tensor:
        """Mixture magnitudes ``(B, F, T)`` and ``B * P`` prompts (mixture-major) -> logits ``(B, P, F, T)``.

        The U-Net levels above the first conditioned one run once per mixture, not once per prompt.
        """
        batch, bins, frames = magnitude.shape
        multiple = 2 ** self.config.num_downs
        padded_bins, padded_frames = -(-bins // multiple) * multiple, -(-frames // multiple) * multiple
        log_magnitude = torch.log1p(magnitude)[:, None]
        log_magnitude = nn.functional.pad(log_magnitude, (0, padded_frames - frames, 0, padded_bins - bins))
        mask = None if self.config.attend_padding else text.mask
        sound = self.unet(log_magnitude, text.tokens, mask, prompts_per_mixture,
                          text.embedding)[..., :bins, :frames]
        text_vector = torch.sigmoid(self.text_projection(text.embedding))
        logits = self.synthesizer(text_vector, sound)
        return logits.view(batch, prompts_per_mixture, bins, frames)

    def masks(self, magnitude: torch.Tensor, text: TextFeatures, prompts_per_mixture: int) -> torch.Tensor:
        """Masks in [0, 1] ``(B, P, F, T)``; binary masks (threshold 0.5) only outside training."""
        masks = torch.sigmoid(self.mask_logits(magnitude, text, prompts_per_mixture))
        if self.config.mask == "binary" and not self.training:
            masks = (masks > 0.5).to(masks.dtype)
        return masks

    def forward(self, mixture: torch.Tensor, text: TextFeatures) -> dict[str, torch.Tensor]:
        """Mixtures ``(B, samples)`` and ``B * P`` prompts -> ``masks``, ``magnitudes`` ``(B, P, F, T)``,
        ``waveforms`` ``(B, P, samples)`` and the mixture's ``spectrogram`` ``(B, F, T)`` (complex)."""
        batch = mixture.shape[0]
        if text.embedding.shape[0] % batch:
            raise ValueError(f"{text.embedding.shape[0]} prompts do not divide into {batch} mixtures")
        prompts = text.embedding.shape[0] // batch
        spectrogram = self.stft(mixture)
        magnitude = spectrogram.abs()
        masks = self.masks(magnitude, text, prompts)
        magnitudes = masks * magnitude[:, None]
        waveforms = self.istft(magnitudes * torch.exp(1j * spectrogram.angle())[:, None], mixture.shape[-1])
        return {"masks": masks, "magnitudes": magnitudes, "waveforms": waveforms, "spectrogram": spectrogram}
