"""Training losses: mix-and-separate, consistency reconstruction, bi-modal contrastive, supervised; and the
built-in grounding model's multi-positive InfoNCE and class-ranking terms.

Magnitudes are those of the un-normalised STFT (``n_fft=1022``, so 512 bins; a smaller FFT gives smaller
magnitudes and the weight's ``log1p`` then needs a matching scale). Reconstruction losses are weighted L1 on
magnitudes, ``w * |estimate - target|`` averaged over batch and time-frequency bins, with
``w = clamp(log1p(M), 1e-3, 10)`` from a magnitude ``M`` that each loss names.

Reductions follow the authors' training code: each reconstruction loss is the mean over ``(batch, freq,
frames)`` for one clip (or source), summed over clips; the contrastive loss is the mean over one clip slot's
phrase estimates, summed over clip slots. The weak objective is then
``0.5 * bimodal_contrastive_loss + recons_weight * (consistency_reconstruction_loss + mix_and_separate_loss)``
with ``recons_weight = 5``.

Every function checks its inputs' ranks and shapes and raises ``ValueError`` naming the argument and shapes
(``TypeError`` for a non-tensor).
"""

from __future__ import annotations

import torch

WEIGHT_MIN, WEIGHT_MAX = 1e-3, 10.0


def _check_rank(name: str, tensor: torch.Tensor, layout: tuple[str, ...]) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != len(layout):
        raise ValueError(f"{name} must have shape ({', '.join(layout)}), got rank {tensor.dim()} "
                         f"shape {tuple(tensor.shape)}")


def _check_same_shape(name: str, tensor: torch.Tensor, reference_name: str, reference: torch.Tensor) -> None:
    if tensor.shape != reference.shape:
        raise ValueError(f"{name} shape {tuple(tensor.shape)} does not match {reference_name} shape "
                         f"{tuple(reference.shape)}")


def loss_weight(magnitude: torch.Tensor) -> torch.Tensor:
    """``clamp(log1p(magnitude), 1e-3, 10)``, same shape, without gradient (the weight is a fixed importance).

    magnitude: linear STFT magnitude (``n_fft=1022``, not normalised), any shape.
    """
    if not isinstance(magnitude, torch.Tensor):
        raise TypeError(f"magnitude must be a torch.Tensor, got {type(magnitude).__name__}")
    return torch.log1p(magnitude.detach()).clamp(WEIGHT_MIN, WEIGHT_MAX)


def _weighted_error(
    estimate: torch.Tensor, target: torch.Tensor, weight_magnitude: torch.Tensor, estimate_name: str = "estimate"
) -> torch.Tensor:
    """Element-wise ``loss_weight(weight_magnitude) * |estimate - target|``, shape of ``estimate``."""
    for name, tensor in ((estimate_name, estimate), ("target", target), ("weight_magnitude", weight_magnitude)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if estimate.dim() < 3:
        raise ValueError(f"{estimate_name} must have shape (batch, ..., freq, frames) of rank >= 3, got rank "
                         f"{estimate.dim()} shape {tuple(estimate.shape)}")
    _check_same_shape("target", target, estimate_name, estimate)
    without_axis_1 = estimate.shape[:1] + estimate.shape[2:]
    if weight_magnitude.shape == without_axis_1:
        weight_magnitude = weight_magnitude.unsqueeze(1)
    elif weight_magnitude.shape != estimate.shape:
        raise ValueError(f"weight_magnitude shape {tuple(weight_magnitude.shape)} must equal {estimate_name} shape "
                         f"{tuple(estimate.shape)} or lack its axis 1, {tuple(without_axis_1)}")
    return loss_weight(weight_magnitude) * (estimate - target).abs()


def weighted_l1(estimate: torch.Tensor, target: torch.Tensor, weight_magnitude: torch.Tensor) -> torch.Tensor:
    """Mean over all elements of ``loss_weight(weight_magnitude) * |estimate - target|``; a scalar.

    estimate, target: magnitudes ``(batch, ..., freq, frames)``, rank >= 3, same shape.
    weight_magnitude: the magnitude the weight comes from, either the shape of ``estimate`` or that shape
    without axis 1 (the source axis), e.g. a mixture ``(batch, freq, frames)`` shared by all sources of
    ``(batch, sources, freq, frames)``.
    """
    return _weighted_error(estimate, target, weight_magnitude).mean()


def _per_part_reconstruction(
    estimates: torch.Tensor, targets: torch.Tensor, mixture_magnitude: torch.Tensor, names: tuple[str, str, str]
) -> torch.Tensor:
    """Sum over axis 1 of the weighted L1 (mean over batch and bins) of each part against its target."""
    estimates_name, targets_name, parts = names
    _check_rank(estimates_name, estimates, ("batch", parts, "freq", "frames"))
    _check_rank(targets_name, targets, ("batch", parts, "freq", "frames"))
    _check_same_shape(targets_name, targets, estimates_name, estimates)
    _check_rank("mixture_magnitude", mixture_magnitude, ("batch", "freq", "frames"))
    expected = estimates.shape[:1] + estimates.shape[2:]
    if mixture_magnitude.shape != expected:
        raise ValueError(f"mixture_magnitude shape {tuple(mixture_magnitude.shape)} does not match "
                         f"{estimates_name} shape {tuple(estimates.shape)} without its {parts} axis, "
                         f"{tuple(expected)}")
    return _weighted_error(estimates, targets, mixture_magnitude).mean(dim=(0, 2, 3)).sum()


def mix_and_separate_loss(
    estimates: torch.Tensor, clip_magnitudes: torch.Tensor, mixture_magnitude: torch.Tensor
) -> torch.Tensor:
    """Unsupervised reconstruction: the estimate for clip n's caption, from the mixture of mixtures, is clip n.

    estimates: ``(batch, clips, freq, frames)`` magnitude estimates, one per clip caption, taken from the MoM.
    clip_magnitudes: ``(batch, clips, freq, frames)``, |STFT| of each clip as it sits in the MoM (its gain and the
    1/N scaling applied).
    mixture_magnitude: ``(batch, freq, frames)``, |STFT| of the MoM; it gives the weight, so bins where a clip is
    silent but the mixture is loud still punish leakage into that clip's estimate.
    complete: ``(batch, clips)`` bool, whether the phrases drawn for clip n name all of its sounds. A clip
    queried by only some of its phrases cannot be rebuilt from their estimates: asking it would push the
    unnamed sounds into the named ones, so such clips are left out (None: every clip is complete).
    Returns the sum over clips of each clip's weighted L1 (mean over bins and over the batch's complete clips;
    0 for a clip slot without any), a scalar.
    """
    return _per_part_reconstruction(estimates, clip_magnitudes, mixture_magnitude,
                                    ("estimates", "clip_magnitudes", "clips"))


def supervised_reconstruction_loss(
    estimates: torch.Tensor, source_magnitudes: torch.Tensor, mixture_magnitude: torch.Tensor
) -> torch.Tensor:
    """Supervised reconstruction: the estimate for source s's prompt, from a mixture of single sources, is s.

    estimates: ``(batch, sources, freq, frames)`` magnitude estimates, one per source prompt.
    source_magnitudes: ``(batch, sources, freq, frames)``, |STFT| of each source as it sits in the mixture.
    mixture_magnitude: ``(batch, freq, frames)``, |STFT| of the mixture, which gives the weight.
    Returns the sum over sources of each source's weighted L1 (mean over batch and bins), a scalar: the same
    reduction as :func:`mix_and_separate_loss`, so the two are on one scale for equal source and clip counts.
    """
    return _per_part_reconstruction(estimates, source_magnitudes, mixture_magnitude,
                                    ("estimates", "source_magnitudes", "sources"))


def consistency_reconstruction_loss(
    phrase_estimates: torch.Tensor,
    repeat_weights: torch.Tensor,
    clip_magnitudes: torch.Tensor,
    weight_magnitude: torch.Tensor,
    complete: torch.Tensor | None = None,
) -> torch.Tensor:
    """Consistency reconstruction (L_CRL): clip n's phrase estimates, weighted and summed, make clip n.

    phrase_estimates: ``(batch, clips, phrases, freq, frames)``, the estimate for each phrase of clip n, each
    prompted on the mixture of mixtures.
    repeat_weights: ``(batch, clips, phrases)``, 1/count for a phrase drawn count times (so each distinct phrase
    counts once) and 0 for padding.
    clip_magnitudes: ``(batch, clips, freq, frames)``, |STFT| of each clip as it sits in the MoM.
    weight_magnitude: ``(batch, clips, freq, frames)`` or ``(batch, freq, frames)``, the magnitude the weight
    comes from. The authors weight by the clip (``clip_magnitudes``); a CPU probe found that this makes leakage
    into bins where the clip is silent almost free and collapsed learning, while the mixture's magnitude
    worked. The function uses whichever the caller passes (the trainer's ``consistency_weight: clip | mixture``).
    complete: ``(batch, clips)`` bool, whether the phrases drawn for clip n name all of its sounds. A clip
    queried by only some of its phrases cannot be rebuilt from their estimates: asking it would push the
    unnamed sounds into the named ones, so such clips are left out (None: every clip is complete).
    Returns the sum over clips of each clip's weighted L1 (mean over bins and over the batch's complete clips;
    0 for a clip slot without any), a scalar.
    """
    _check_rank("phrase_estimates", phrase_estimates, ("batch", "clips", "phrases", "freq", "frames"))
    _check_rank("repeat_weights", repeat_weights, ("batch", "clips", "phrases"))
    if repeat_weights.shape != phrase_estimates.shape[:3]:
        raise ValueError(f"repeat_weights shape {tuple(repeat_weights.shape)} does not match phrase_estimates "
                         f"shape {tuple(phrase_estimates.shape)} in (batch, clips, phrases)")
    _check_rank("clip_magnitudes", clip_magnitudes, ("batch", "clips", "freq", "frames"))
    expected = phrase_estimates.shape[:2] + phrase_estimates.shape[3:]
    if clip_magnitudes.shape != expected:
        raise ValueError(f"clip_magnitudes shape {tuple(clip_magnitudes.shape)} does not match phrase_estimates "
                         f"shape {tuple(phrase_estimates.shape)} without its phrases axis, {tuple(expected)}")
    reconstruction = torch.einsum("bnpft,bnp->bnft", phrase_estimates, repeat_weights.to(phrase_estimates.dtype))
    error = _weighted_error(reconstruction, clip_magnitudes, weight_magnitude, "weighted sum of phrase_estimates")
    if complete is None:
        return error.mean(dim=(0, 2, 3)).sum()
    if complete.shape != phrase_estimates.shape[:2]:
        raise ValueError(f"complete shape {tuple(complete.shape)} does not match phrase_estimates shape "
                         f"{tuple(phrase_estimates.shape)} in (batch, clips)")
    keep = complete.to(error.dtype)
    per_clip = error.mean(dim=(2, 3)) * keep  # (batch, clips)
    return (per_clip.sum(0) / keep.sum(0).clamp(min=1)).sum()


def _audio_to_text_cross_entropy(logits: torch.Tensor, valid: torch.Tensor, same_text: torch.Tensor) -> torch.Tensor:
    """Mean over valid rows of the cross-entropy with the diagonal as target, summed over axis 0.

    logits: ``(slots, K, K)``; valid ``(slots, K)``; same_text ``(slots, K, K)`` pairs removed from negatives.
    Invalid rows keep all their columns so that they stay finite; they are then left out of the mean.
    """
    size = logits.shape[-1]
    diagonal = torch.eye(size, dtype=torch.bool, device=logits.device)
    excluded = valid[:, :, None] & (~valid[:, None, :] | (same_text & ~diagonal))
    log_probabilities = logits.masked_fill(excluded, float("-inf")).log_softmax(dim=-1)
    row_loss = -log_probabilities.diagonal(dim1=-2, dim2=-1) * valid
    return (row_loss.sum(dim=-1) / valid.sum(dim=-1).clamp(min=1)).sum()


def bimodal_contrastive_loss(
    audio_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    logit_scale: torch.Tensor | float,
    valid: torch.Tensor | None = None,
    same_text: torch.Tensor | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """Bi-modal contrastive loss (L_CNT) between phrase estimates' audio embeddings and the phrases' text.

    audio_embeddings: ``(clips, K, dim)``, L2-normalised grounding-model embeddings of the K = batch x phrases
    phrase estimates of clip slot n.
    text_embeddings: ``(clips, K, dim)``, L2-normalised embeddings of the matching phrases (same order).
    logit_scale: the grounding model's multiplier of cosine similarities (already exponentiated), a scalar.
    valid: ``(clips, K)`` bool, False for padded (or dropped repeated) entries, which leave both the rows and the
    columns (they are nobody's negative). Default: all valid.
    same_text: ``(clips, K, K)`` bool, True where entries i and j have identical text (e.g. one class prompt in two
    batch items): j is then not a negative of i, since the grounding model cannot tell their texts apart.
    symmetric: False (the authors' choice) scores audio against texts only; True averages that with the
    text-to-audio direction.
    For each slot, logits ``logit_scale * audio @ text.T`` ``(K, K)`` and a cross-entropy with the diagonal as
    target, averaged over valid rows; summed over slots. A scalar in nats.
    """
    _check_rank("audio_embeddings", audio_embeddings, ("clips", "K", "dim"))
    _check_rank("text_embeddings", text_embeddings, ("clips", "K", "dim"))
    _check_same_shape("text_embeddings", text_embeddings, "audio_embeddings", audio_embeddings)
    logit_scale = torch.as_tensor(logit_scale, dtype=audio_embeddings.dtype, device=audio_embeddings.device)
    if logit_scale.numel() != 1:
        raise ValueError(f"logit_scale must be a scalar, got shape {tuple(logit_scale.shape)}")
    slots, size = audio_embeddings.shape[:2]
    if valid is None:
        valid = torch.ones(slots, size, dtype=torch.bool, device=audio_embeddings.device)
    elif valid.dtype != torch.bool or valid.shape != (slots, size):
        raise ValueError(f"valid must be a bool tensor of shape {(slots, size)} (clips, K), got {valid.dtype} "
                         f"shape {tuple(valid.shape)}")
    if same_text is None:
        same_text = torch.zeros(slots, size, size, dtype=torch.bool, device=audio_embeddings.device)
    elif same_text.dtype != torch.bool or same_text.shape != (slots, size, size):
        raise ValueError(f"same_text must be a bool tensor of shape {(slots, size, size)} (clips, K, K), got "
                         f"{same_text.dtype} shape {tuple(same_text.shape)}")
    logits = logit_scale.reshape(()) * audio_embeddings @ text_embeddings.transpose(-1, -2)
    audio_to_text = _audio_to_text_cross_entropy(logits, valid, same_text)
    if not symmetric:
        return audio_to_text
    text_to_audio = _audio_to_text_cross_entropy(logits.transpose(-1, -2), valid, same_text.transpose(-1, -2))
    return 0.5 * (audio_to_text + text_to_audio)


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the cross-entropy of ``logits`` ``(rows, columns)`` against ``targets`` (same shape,
    non-negative weights), each row of targets normalised to a distribution."""
    return -((targets / targets.sum(1, keepdim=True)) * logits.log_softmax(1)).sum(1).mean()


def multi_positive_infonce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE in which an audio may have several matching texts (two violin clips in one batch are
    not pushed apart), for training the built-in grounding model.

    logits: ``(audio, texts)``, scaled similarities ``logit_scale * audio @ text.T``.
    targets: ``(audio, texts)``, bool or non-negative weights; every row and column needs a positive entry.
    Returns the mean of the audio-to-text and text-to-audio soft cross-entropies, a scalar in nats.
    """
    _check_rank("logits", logits, ("audio", "texts"))
    _check_rank("targets", targets, ("audio", "texts"))
    _check_same_shape("targets", targets, "logits", logits)
    targets = targets.float()
    return (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets.T)) / 2


def class_ranking_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Audio-to-text cross-entropy over one text per class: a mixture of a violin and a dog should put both
    phrases above the other classes. Audio-to-text only, so it never rewards a phrase for matching leaky audio.

    logits: ``(audio, classes)``, scaled similarities of each clip to one phrasing of every class.
    targets: ``(audio, classes)``, each clip's share of each class (its own classes > 0, e.g. a mixed-in clip's
    amplitude share); rows are normalised to distributions.
    Returns the mean over clips, a scalar in nats.
    """
    _check_rank("logits", logits, ("audio", "classes"))
    _check_rank("targets", targets, ("audio", "classes"))
    _check_same_shape("targets", targets, "logits", logits)
    return _soft_cross_entropy(logits, targets)
