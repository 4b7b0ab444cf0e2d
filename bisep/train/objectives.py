"""The training objectives of each mode, computed on one micro-batch.

Every prompt of a mixture (clip captions and phrases) goes through the separator in one batched call, so the
prompt-independent U-Net levels run once per mixture. The mix-and-separate term queries each clip by its
caption; the consistency and contrastive terms query it by each of its phrases (method.md, Losses).
"""

from __future__ import annotations

import torch

from bisep.grounding.base import GroundingModel, TextFeatures
from bisep.losses import (
    bimodal_contrastive_loss,
    consistency_reconstruction_loss,
    mix_and_separate_loss,
    supervised_reconstruction_loss,
)
from bisep.train.config import LossConfig


def _encode(grounding: GroundingModel, prompts: list[str], device: torch.device) -> TextFeatures:
    return grounding.encode_text(prompts).to(device)


def _per_slot(tensor: torch.Tensor) -> torch.Tensor:
    """``(B, N, P, ...)`` -> ``(N, B * P, ...)``: the contrastive loss compares phrases within a clip slot."""
    batch_size, clip_count, phrase_count = tensor.shape[:3]
    return tensor.transpose(0, 1).reshape(clip_count, batch_size * phrase_count, *tensor.shape[3:])


def weak_terms(model, grounding: GroundingModel, batch: dict, config: LossConfig, mode: str
               ) -> dict[str, torch.Tensor]:
    """Loss terms for a mixture-of-mixtures batch: ``mix_and_separate`` always; ``consistency`` and
    ``contrastive`` in weak mode. ``model`` may be the DDP wrapper: its forward is what gets called, so
    gradients synchronise."""
    device = next(model.parameters()).device
    mixture, clips = batch["mixture"].to(device), batch["clips"].to(device)
    batch_size, clip_count, samples = clips.shape  # B, N, samples
    weak = mode == "weak"
    phrase_count = batch["repeat_weights"].shape[-1] if weak else 0  # P
    # per mixture: its N captions, then (weak) the P phrases of clip 0, of clip 1, ...: B * N * (1 + P) prompts
    prompts = []
    for captions, phrases in zip(batch["captions"], batch["phrases"]):
        prompts += list(captions)
        if weak:
            prompts += [phrase for clip_phrases in phrases for phrase in clip_phrases]
    per_mixture = clip_count * (1 + phrase_count)
    text = _encode(grounding, prompts, device)
    separator = getattr(model, "module", model)
    output = model(mixture, text)
    # estimates (B, N * (1 + P), F, T), one per prompt in the order above; magnitude (B, F, T) of the mixture
    estimates, magnitude = output["magnitudes"].float(), output["spectrogram"].abs()
    clip_magnitudes = separator.stft(clips).abs()  # (B, N, F, T)
    terms = {"mix_and_separate": mix_and_separate_loss(estimates[:, :clip_count], clip_magnitudes, magnitude)}
    if not weak:
        return terms
    bins, frames = estimates.shape[-2:]
    # (B, N * P, F, T) -> (B, N, P, F, T): the phrases follow the captions clip by clip
    phrase_estimates = estimates[:, clip_count:].reshape(batch_size, clip_count, phrase_count, bins, frames)
    repeat_weights = batch["repeat_weights"].to(device)
    terms["consistency"] = consistency_reconstruction_loss(
        phrase_estimates, repeat_weights, clip_magnitudes,
        magnitude if config.consistency_weight == "mixture" else clip_magnitudes,
        complete=batch["phrases_complete"].to(device) if "phrases_complete" in batch else None)
    if config.contrastive == 0:  # the ablation: no grounding forward (it is most of a weak step)
        return terms
    waveforms = output["waveforms"][:, clip_count:].float()  # (B, N * P, samples)
    # (B * N * P, samples) -> (B * N * P, D) -> (B, N, P, D)
    audio = grounding.encode_audio(waveforms.reshape(-1, samples), separator.config.sample_rate)
    dimension = audio.shape[-1]
    audio = audio.view(batch_size, clip_count, phrase_count, dimension)
    # text embeddings (B * N * (1 + P), D) -> (B, N * (1 + P), D) -> phrases only (B, N * P, D) -> (B, N, P, D)
    text_embedding = text.embedding.view(batch_size, per_mixture, dimension)[:, clip_count:]
    text_embedding = text_embedding.reshape(batch_size, clip_count, phrase_count, dimension)
    valid = _per_slot(repeat_weights > 0)  # (N, B * P)
    # names[n]: the B * P phrase texts of clip slot n, in _per_slot's order (batch item, then phrase)
    names = [[phrases[n][p] for phrases in batch["phrases"] for p in range(phrase_count)]
             for n in range(clip_count)]
    same_text = torch.tensor([[[a == b for b in slot] for a in slot] for slot in names], device=device)
    slot_text = _per_slot(text_embedding)
    same_text |= (slot_text @ slot_text.transpose(1, 2)) >= config.duplicate_text_similarity
    terms["contrastive"] = bimodal_contrastive_loss(
        _per_slot(audio), slot_text, grounding.logit_scale.to(device), valid=valid,
        same_text=same_text, symmetric=config.symmetric_contrastive)
    return terms


def supervised_terms(model, grounding: GroundingModel, batch: dict) -> dict[str, torch.Tensor]:
    """Single-source mixtures: each source's prompt must recover that source (its share of the mixture)."""
    separator = getattr(model, "module", model)
    device = next(separator.parameters()).device
    mixture, sources = batch["mixture"].to(device), batch["sources"].to(device)
    prompts = [prompt for item in batch["prompts"] for prompt in item]
    text = _encode(grounding, prompts, device)
    output = model(mixture, text)
    estimates, magnitude = output["magnitudes"].float(), output["spectrogram"].abs()
    return {"supervised": supervised_reconstruction_loss(estimates, separator.stft(sources).abs(), magnitude)}


def total_loss(terms: dict[str, torch.Tensor], config: LossConfig) -> torch.Tensor:
    reconstruction = (config.mix_and_separate * terms.get("mix_and_separate", 0.0)
                      + config.consistency * terms.get("consistency", 0.0)
                      + config.supervised * terms.get("supervised", 0.0))
    return config.contrastive * terms.get("contrastive", 0.0) + config.reconstruction * reconstruction


# a reference this far below its mixture is (nearly) silent in the crop: its SI-SDR measures noise, not
# separation, and a few such pairs would dominate the mean (bisep evaluate skips silent references likewise)
AUDIBLE_SOURCE_DB = -30.0


@torch.no_grad()
def validation_scores(model, grounding: GroundingModel, batch: dict) -> dict[str, torch.Tensor]:
    """Per-source scores in dB of the sources audible in their mixture (energy above ``AUDIBLE_SOURCE_DB``
    relative to it): ``sdr`` (bss_eval, no permutation: the paper's metric) and ``si_sdr`` of the estimates, and
    ``mixture_sdr``, ``mixture_si_sdr`` of the unprocessed mixture; flat float64 tensors of equal length."""
    from bisep.evaluate.metrics import score_composition

    separator = getattr(model, "module", model)
    device = next(separator.parameters()).device
    mixture, sources = batch["mixture"].to(device), batch["sources"].to(device)
    prompts = [prompt for item in batch["prompts"] for prompt in item]
    text = _encode(grounding, prompts, device)
    estimates = separator(mixture, text)["waveforms"].double().cpu().numpy()
    audible = sources.pow(2).sum(-1) > mixture.pow(2).sum(-1, keepdim=True) * 10 ** (AUDIBLE_SOURCE_DB / 10)
    mixtures, references = mixture.double().cpu().numpy(), sources.double().cpu().numpy()
    scores: dict[str, list[float]] = {"sdr": [], "si_sdr": [], "mixture_sdr": [], "mixture_si_sdr": []}
    for index in range(len(mixtures)):
        keep = audible[index].cpu().numpy()
        if not keep.any():
            continue
        result = score_composition(references[index], {"model": estimates[index]}, mixtures[index])
        for prefix, method in (("", "model"), ("mixture_", "mixture")):
            for metric in ("sdr", "si_sdr"):
                scores[prefix + metric] += [v for v, k in zip(result[method][metric], keep) if k]
    return {name: torch.tensor(values, dtype=torch.float64) for name, values in scores.items()}


def separations_per_item(mode: str, clips_per_mixture: int, phrases_per_clip: int, sources_per_mixture: int) -> int:
    """How many (mixture, prompt) estimates one batch item trains in ``mode``: what a step's batch buys.

    weak: every clip by its caption and its P phrases, N * (1 + P); unsupervised: each clip by its caption, N;
    supervised: each source, S; semi: a natural item and a single-source item each step, N * (1 + P) + S. A
    budget that fixes optimiser steps at one batch size gives weak three times the supervised estimates; the
    benchmark divides a fixed number of estimates per step by this instead (issue 22).
    """
    natural = clips_per_mixture * (1 + (phrases_per_clip if mode in ("weak", "semi") else 0))
    return {"weak": natural, "unsupervised": natural, "supervised": sources_per_mixture,
            "semi": natural + sources_per_mixture}[mode]
