"""The one interface every grounding (audio-language) model offers to the separator and the losses.

The separator and the losses never know which model they use: LAION-CLAP loaded from a local folder, or
bisep's built-in model. Both give a joint audio-text embedding space, per-token text features for
cross-attention, and an audio encoder that is differentiable with respect to the waveform.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from bisep.errors import BisepError


@dataclass
class TextFeatures:
    """Text side of a batch of prompts.

    embedding: ``(batch, embedding_dim)``, L2-normalised joint-space embedding (contrastive loss, mask head).
    tokens: ``(batch, length, token_dim)``, the text encoder's last hidden states (cross-attention keys/values).
    mask: ``(batch, length)`` bool, True where ``tokens`` holds a real token.
    """

    embedding: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> "TextFeatures":
        return TextFeatures(self.embedding.to(device), self.tokens.to(device), self.mask.to(device))

    def repeat_interleave(self, repeats: int) -> "TextFeatures":
        return TextFeatures(*(t.repeat_interleave(repeats, dim=0) for t in (self.embedding, self.tokens, self.mask)))


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Prompts must be non-empty text; an empty or blank one is a user error, not a silent zero vector."""
    if isinstance(prompts, str):
        prompts = [prompts]
    cleaned = []
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise BisepError(f"empty prompt {prompt!r}: say what sound to separate, e.g. 'a dog barking'")
        cleaned.append(" ".join(prompt.split()))
    if not cleaned:
        raise BisepError("no prompts given")
    return cleaned


# prompts whose joint embeddings identify a grounding model's text features (see text_signature)
TEXT_SIGNATURE_PROMPTS = ("a dog barks", "someone playing the violin", "rain falls on a roof")


class GroundingModel(nn.Module, ABC):
    """A frozen-able audio-language model.

    Subclasses set ``name``, ``sample_rate`` (Hz the audio tower expects), ``embedding_dim``, ``token_dim`` and
    ``context_length`` (the most tokens a prompt is encoded with), and implement :meth:`_encode_text_batch`
    (honouring ``pad_to_context``) and :meth:`_embed_audio`.
    """

    name: str
    sample_rate: int
    embedding_dim: int
    token_dim: int
    context_length: int

    def __init__(self) -> None:
        super().__init__()
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.pad_to_context = False

    def pad_text_to_context(self, enabled: bool = True) -> "GroundingModel":
        """Encode every prompt padded to ``context_length`` tokens, keeping the text encoder's outputs at the
        padding positions (``mask`` still marks the real tokens). A separator that attends padding
        (``attend_padding``, as the authors' network attends all 77 positions of LAION-CLAP's padded prompt)
        needs these features; otherwise prompts are cut to their real tokens."""
        if enabled != self.pad_to_context:
            self._text_cache.clear()
        self.pad_to_context = enabled
        return self

    @property
    @abstractmethod
    def logit_scale(self) -> torch.Tensor:
        """The multiplier (already exponentiated) applied to cosine similarities, a scalar tensor."""

    @abstractmethod
    def _encode_text_batch(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(embedding (B, D) normalised, tokens (B, L, Dt), mask (B, L))`` computed from scratch."""

    @abstractmethod
    def _embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, samples)`` at ``self.sample_rate`` -> ``(B, D)`` L2-normalised, differentiable."""

    def encode_text(self, prompts: Sequence[str]) -> TextFeatures:
        """Embed prompts; in eval mode each distinct prompt is computed once and then served from a cache."""
        prompts = check_prompts(prompts)
        if self.training:
            return TextFeatures(*self._encode_text_batch(prompts))
        for prompt in dict.fromkeys(p for p in prompts if p not in self._text_cache):
            # One prompt at a time: a prompt's features then never depend on which prompts shared its batch
            # (padding changes the floating-point path), so runs and resumed runs stay bit-identical.
            with torch.no_grad():
                self._cache_batch([prompt], *self._encode_text_batch([prompt]))
        return self._assemble([self._text_cache[p] for p in prompts])

    def _cache_batch(self, prompts: list[str], embedding: torch.Tensor, tokens: torch.Tensor,
                     mask: torch.Tensor) -> None:
        """Keep each prompt's real tokens, or all ``context_length`` positions when padding to the context."""
        for index, prompt in enumerate(prompts):
            keep = tokens.shape[1] if self.pad_to_context else int(mask[index].sum())
            self._text_cache[prompt] = (embedding[index].detach(), tokens[index, :keep].detach(),
                                        mask[index, :keep].detach())

    def precompute(self, prompts: Sequence[str], chunk: int = 64) -> None:
        """Fill the text cache for many prompts at once (e.g. every caption and phrase of a training set).

        Chunks are formed from the sorted distinct prompts, so the same set always gives the same features.
        """
        if self.training:
            return
        missing = sorted({" ".join(p.split()) for p in prompts if p.strip()} - set(self._text_cache))
        for start in range(0, len(missing), chunk):
            batch = missing[start:start + chunk]
            with torch.no_grad():
                self._cache_batch(batch, *self._encode_text_batch(batch))

    def _assemble(self, entries: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> TextFeatures:
        length = max(tokens.shape[0] for _, tokens, _ in entries)
        device = entries[0][0].device
        tokens = torch.zeros(len(entries), length, self.token_dim, device=device, dtype=entries[0][1].dtype)
        mask = torch.zeros(len(entries), length, dtype=torch.bool, device=device)
        for index, (_, item, item_mask) in enumerate(entries):
            tokens[index, : item.shape[0]] = item
            mask[index, : item.shape[0]] = item_mask
        return TextFeatures(torch.stack([embedding for embedding, _, _ in entries]), tokens, mask)

    def encode_audio(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``(B, samples)`` at ``sample_rate`` Hz -> ``(B, embedding_dim)`` L2-normalised; gradients reach the
        waveform (resampling happens inside, differentiably)."""
        if waveform.dim() != 2:
            raise ValueError(f"encode_audio expects (batch, samples), got shape {tuple(waveform.shape)}")
        return self._embed_audio(self._resampler(sample_rate)(waveform))

    def _resampler(self, sample_rate: int) -> nn.Module:
        from bisep.spectral import Resample

        key = f"_resample_from_{sample_rate}"
        if not hasattr(self, key):
            setattr(self, key, Resample(sample_rate, self.sample_rate).to(self._device()))
        return getattr(self, key)

    def _device(self) -> torch.device:
        parameter = next(self.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def train(self, mode: bool = True) -> "GroundingModel":
        self._text_cache.clear()
        return super().train(mode)

    def freeze(self) -> "GroundingModel":
        """Eval mode and no gradients for the weights: how the separator's losses use it."""
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    @torch.no_grad()
    def text_signature(self) -> list[list[float]]:
        """Joint embeddings of three fixed prompts. A separator stores them when it is trained, because it is
        conditioned on these text features: loading it with another grounding model (a retrained ``builtin``,
        another checkpoint) must fail loudly instead of separating by the wrong prompts."""
        embedding = self._encode_text_batch(list(TEXT_SIGNATURE_PROMPTS))[0]
        return [[round(float(value), 5) for value in row] for row in embedding.float().cpu()]

    def matches_text_signature(self, signature: list[list[float]]) -> bool:
        """True when this model embeds the signature prompts as stored (cosine > 0.99 each: devices and
        padding change the last digits, a different model changes the direction)."""
        stored = torch.tensor(signature, dtype=torch.float32)
        if stored.shape != (len(TEXT_SIGNATURE_PROMPTS), self.embedding_dim):
            return False
        current = torch.tensor(self.text_signature(), dtype=torch.float32)
        return bool((nn.functional.cosine_similarity(stored, current, dim=1) > 0.99).all())

    def similarity(self, audio_embedding: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
        """Cosine similarities ``(A, T)`` of normalised embeddings."""
        return audio_embedding @ text_embedding.T
