"""Losses on hand-computed cases: exact values, reductions, masks, the mixture weight, and input refusals."""

import math

import pytest
import torch
import torch.nn.functional as F

from bisep.losses import (
    bimodal_contrastive_loss,
    class_ranking_loss,
    consistency_reconstruction_loss,
    loss_weight,
    mix_and_separate_loss,
    multi_positive_infonce,
    supervised_reconstruction_loss,
    weighted_l1,
)

E = math.e


def magnitude_for_weights(weights):
    """The magnitude whose loss weight is ``weights`` (for weights inside [1e-3, 10])."""
    return torch.tensor(weights, dtype=torch.float64).exp() - 1


def two_sources(batch=2, freq=6, frames=5):
    """Sources with disjoint supports: ``low`` only in the lower half of the bins, ``high`` only in the upper."""
    generator = torch.Generator().manual_seed(0)
    low = torch.zeros(batch, freq, frames, dtype=torch.float64)
    high = torch.zeros_like(low)
    low[:, : freq // 2] = 1 + 4 * torch.rand(batch, freq // 2, frames, generator=generator, dtype=torch.float64)
    high[:, freq // 2 :] = 1 + 4 * torch.rand(batch, freq - freq // 2, frames, generator=generator,
                                              dtype=torch.float64)
    return low, high


def test_loss_weight_clamps_log1p_and_carries_no_gradient():
    magnitude = torch.tensor([0.0, E - 1, 1e6], requires_grad=True)
    weight = loss_weight(magnitude)
    assert torch.allclose(weight, torch.tensor([1e-3, 1.0, 10.0]))
    assert not weight.requires_grad
    with pytest.raises(TypeError, match="magnitude"):
        loss_weight([1.0, 2.0])


def test_weighted_l1_hand_computed():
    estimate = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 4.0]]]], dtype=torch.float64)
    weight_magnitude = magnitude_for_weights([[[[1e-3, 1.0], [2.0, 10.0]]]])
    # errors 0, 2, 3, 0 weighted 1e-3, 1, 2, 10: (0 + 2 + 6 + 0) / 4
    assert weighted_l1(estimate, target, weight_magnitude).item() == pytest.approx(2.0)
    assert weighted_l1(target, target, weight_magnitude).item() == 0.0


def test_weighted_l1_weight_may_lack_the_source_axis():
    generator = torch.Generator().manual_seed(1)
    estimate, target = torch.rand(2, 2, 3, 4, 5, generator=generator).unbind(0)
    mixture = 3 * torch.rand(2, 4, 5, generator=generator)
    expanded = mixture.unsqueeze(1).expand(2, 3, 4, 5)
    assert torch.allclose(weighted_l1(estimate, target, mixture), weighted_l1(estimate, target, expanded))
    assert weighted_l1(estimate[:, 0], target[:, 0], mixture) > 0


def test_weighted_l1_refuses_bad_shapes():
    good = torch.ones(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"estimate .*rank >= 3.*\(3, 4\)"):
        weighted_l1(torch.ones(3, 4), torch.ones(3, 4), torch.ones(3, 4))
    with pytest.raises(ValueError, match=r"target shape \(1, 2, 3, 5\) does not match estimate shape \(1, 2, 3, 4\)"):
        weighted_l1(good, torch.ones(1, 2, 3, 5), good)
    with pytest.raises(ValueError, match=r"weight_magnitude shape \(1, 3, 5\)"):
        weighted_l1(good, good, torch.ones(1, 3, 5))
    with pytest.raises(ValueError, match="weight_magnitude"):
        weighted_l1(good, good, torch.ones(1, 2, 3, 4, 1))


def test_mix_and_separate_is_zero_when_perfect_and_sums_over_clips():
    low, high = two_sources()
    gains = torch.tensor([0.7, 1.3], dtype=torch.float64)
    clips = torch.stack([gains[0] * low, gains[1] * high], dim=1) / 2  # each clip's share of the MoM
    mixture = clips.sum(dim=1)
    assert mix_and_separate_loss(clips, clips, mixture).item() == 0.0

    estimates = clips + 0.1
    per_clip = [weighted_l1(estimates[:, n], clips[:, n], mixture) for n in range(2)]
    loss = mix_and_separate_loss(estimates, clips, mixture)
    assert loss > 0
    assert torch.allclose(loss, per_clip[0] + per_clip[1])


def test_mix_and_separate_hand_computed():
    estimates = torch.tensor([[[[2.0]], [[0.0]]]], dtype=torch.float64)  # (1, 2, 1, 1)
    clips = torch.tensor([[[[1.0]], [[3.0]]]], dtype=torch.float64)
    mixture = magnitude_for_weights([[[2.0]]])
    # clip 0: 2 * |2 - 1| = 2; clip 1: 2 * |0 - 3| = 6; summed over clips
    assert mix_and_separate_loss(estimates, clips, mixture).item() == pytest.approx(8.0)


def test_mixture_weight_punishes_leakage_that_the_target_weight_lets_through():
    low, high = two_sources()
    mixture = low + high
    leaky = low + 0.5 * high  # the estimate for `low` still holds half of `high`
    clean = 0.8 * low  # errors only where `low` itself sounds
    leaky_mixture_weight = weighted_l1(leaky, low, mixture)
    leaky_target_weight = weighted_l1(leaky, low, low)
    assert leaky_mixture_weight > 100 * leaky_target_weight
    assert torch.allclose(weighted_l1(clean, low, mixture), weighted_l1(clean, low, low))

    estimates, clips = torch.stack([leaky, high], 1), torch.stack([low, high], 1)
    assert torch.allclose(mix_and_separate_loss(estimates, clips, mixture), leaky_mixture_weight)

    phrases = torch.stack([leaky, torch.zeros_like(leaky)], 1).unsqueeze(1)  # (batch, 1 clip, 2 phrases, F, T)
    weights = torch.ones(low.shape[0], 1, 2, dtype=torch.float64)
    by_mixture = consistency_reconstruction_loss(phrases, weights, low.unsqueeze(1), mixture)
    by_clip = consistency_reconstruction_loss(phrases, weights, low.unsqueeze(1), low.unsqueeze(1))
    assert by_mixture > 100 * by_clip


def test_mix_and_separate_refuses_bad_shapes():
    estimates = torch.ones(2, 2, 3, 4)
    with pytest.raises(ValueError, match=r"estimates must have shape \(batch, clips, freq, frames\), got rank 3"):
        mix_and_separate_loss(torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"clip_magnitudes shape \(2, 3, 3, 4\) does not match estimates"):
        mix_and_separate_loss(estimates, torch.ones(2, 3, 3, 4), torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match=r"mixture_magnitude must have shape \(batch, freq, frames\), got rank 4"):
        mix_and_separate_loss(estimates, estimates, estimates)
    with pytest.raises(ValueError, match=r"mixture_magnitude shape \(2, 3, 5\) does not match"):
        mix_and_separate_loss(estimates, estimates, torch.ones(2, 3, 5))
    with pytest.raises(TypeError, match="estimates"):
        mix_and_separate_loss(estimates.numpy(), estimates, torch.ones(2, 3, 4))


def test_supervised_reconstruction_matches_mix_and_separate_reduction():
    low, high = two_sources()
    sources = torch.stack([low, high], 1) / 2
    mixture = sources.sum(1)
    assert supervised_reconstruction_loss(sources, sources, mixture).item() == 0.0
    estimates = torch.stack([low / 2 + high / 4, high / 2], 1)
    loss = supervised_reconstruction_loss(estimates, sources, mixture)
    assert loss > 0
    assert torch.allclose(loss, mix_and_separate_loss(estimates, sources, mixture))
    with pytest.raises(ValueError, match=r"source_magnitudes shape \(2, 1, 6, 5\) does not match estimates"):
        supervised_reconstruction_loss(estimates, sources[:, :1], mixture)
    with pytest.raises(ValueError, match=r"estimates must have shape \(batch, sources, freq, frames\)"):
        supervised_reconstruction_loss(estimates[:, 0], sources[:, 0], mixture)


def test_consistency_hand_computed():
    phrases = torch.tensor([[[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 2.0]]]]], dtype=torch.float64)
    weights = torch.tensor([[[1.0, 1.0]]], dtype=torch.float64)
    clip = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    weight_magnitude = magnitude_for_weights([[[1.0, 1.0], [2.0, 10.0]]])
    # weighted sum [[1, 1], [0, 2]] against ones: errors 0, 0, 1, 1 weighted 1, 1, 2, 10 -> 12 / 4
    assert consistency_reconstruction_loss(phrases, weights, clip, weight_magnitude).item() == pytest.approx(3.0)
    # repeat weights scale each phrase: 0.5 * first + second = [[0.5, 1], [0, 2]]: errors 0.5, 0, 1, 1
    half = torch.tensor([[[0.5, 1.0]]], dtype=torch.float64)
    expected = (0.5 * 1 + 0 + 2 + 10) / 4
    assert consistency_reconstruction_loss(phrases, half, clip, weight_magnitude).item() == pytest.approx(expected)


def test_consistency_is_zero_when_phrases_add_up_and_sums_over_clips():
    low, high = two_sources()
    clip_a = torch.stack([low, high], 1).unsqueeze(1)  # (batch, 1, 2 phrases, F, T)
    clip_b = torch.stack([2 * low, high], 1).unsqueeze(1)
    phrases = torch.cat([clip_a, clip_b], 1)
    weights = torch.ones(2, 2, 2, dtype=torch.float64)
    clips = phrases.sum(2)
    mixture = clips.sum(1)
    assert consistency_reconstruction_loss(phrases, weights, clips, mixture).item() == 0.0
    assert consistency_reconstruction_loss(phrases, weights, clips, clips).item() == 0.0

    wrong = phrases * 0.9
    loss = consistency_reconstruction_loss(wrong, weights, clips, mixture)
    separately = sum(consistency_reconstruction_loss(wrong[:, n : n + 1], weights[:, n : n + 1], clips[:, n : n + 1],
                                                     mixture) for n in range(2))
    assert loss > 0 and torch.allclose(loss, separately)
    expanded = mixture.unsqueeze(1).expand_as(clips)
    assert torch.allclose(loss, consistency_reconstruction_loss(wrong, weights, clips, expanded))


def test_repeated_phrase_counts_once_and_padding_counts_not_at_all():
    low, high = two_sources()
    clip = (low + high).unsqueeze(1)
    a, b = 0.7 * low + 0.1 * high, 0.9 * high
    repeated = torch.stack([a, a, b], 1).unsqueeze(1)
    distinct = torch.stack([a, b], 1).unsqueeze(1)
    batch = low.shape[0]
    repeated_weights = torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64).expand(batch, 1, 3)
    distinct_weights = torch.ones(batch, 1, 2, dtype=torch.float64)
    loss_repeated = consistency_reconstruction_loss(repeated, repeated_weights, clip, low + high)
    loss_distinct = consistency_reconstruction_loss(distinct, distinct_weights, clip, low + high)
    assert loss_distinct > 0 and torch.allclose(loss_repeated, loss_distinct)

    padded = torch.stack([a, b, 100 * torch.ones_like(a)], 1).unsqueeze(1)
    padded_weights = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64).expand(batch, 1, 3)
    assert torch.allclose(consistency_reconstruction_loss(padded, padded_weights, clip, low + high), loss_distinct)


def test_a_clip_named_by_only_some_of_its_phrases_is_left_out_of_the_consistency_loss():
    low, high = two_sources()
    clips = torch.stack([low + high, low + high], 1)  # two clip slots
    phrases = torch.stack([torch.stack([low, high], 1), torch.stack([low, 0 * high], 1)], 1)  # slot 1 misses high
    weights = torch.ones(low.shape[0], 2, 2, dtype=torch.float64)
    everything = consistency_reconstruction_loss(phrases, weights, clips, low + high)
    complete = torch.tensor([[True, False]]).expand(low.shape[0], 2)
    assert everything > 0
    assert consistency_reconstruction_loss(phrases, weights, clips, low + high, complete=complete).item() == 0.0
    # all clips complete: the same as no mask; one batch item left out: the mean over the others
    all_complete = torch.ones(low.shape[0], 2, dtype=torch.bool)
    assert torch.allclose(consistency_reconstruction_loss(phrases, weights, clips, low + high, all_complete),
                          everything)
    first_only = torch.zeros(low.shape[0], 2, dtype=torch.bool)
    first_only[0] = True
    alone = consistency_reconstruction_loss(phrases[:1], weights[:1], clips[:1], (low + high)[:1])
    assert torch.allclose(consistency_reconstruction_loss(phrases, weights, clips, low + high, first_only), alone)
    with pytest.raises(ValueError, match=r"complete shape \(2,\) does not match"):
        consistency_reconstruction_loss(phrases, weights, clips, low + high, complete=torch.ones(2, dtype=torch.bool))


def test_consistency_refuses_bad_shapes():
    phrases, weights = torch.ones(2, 2, 3, 4, 5), torch.ones(2, 2, 3)
    clips, mixture = torch.ones(2, 2, 4, 5), torch.ones(2, 4, 5)
    assert consistency_reconstruction_loss(phrases, weights, clips, mixture) > 0
    with pytest.raises(ValueError, match=r"phrase_estimates must have shape .* got rank 4"):
        consistency_reconstruction_loss(phrases[:, 0], weights, clips, mixture)
    with pytest.raises(ValueError, match=r"repeat_weights shape \(2, 2, 4\) does not match phrase_estimates"):
        consistency_reconstruction_loss(phrases, torch.ones(2, 2, 4), clips, mixture)
    with pytest.raises(ValueError, match=r"repeat_weights must have shape \(batch, clips, phrases\)"):
        consistency_reconstruction_loss(phrases, torch.ones(2, 2), clips, mixture)
    with pytest.raises(ValueError, match=r"clip_magnitudes shape \(2, 2, 4, 6\) does not match phrase_estimates"):
        consistency_reconstruction_loss(phrases, weights, torch.ones(2, 2, 4, 6), mixture)
    with pytest.raises(ValueError, match=r"weight_magnitude shape \(2, 4, 6\)"):
        consistency_reconstruction_loss(phrases, weights, clips, torch.ones(2, 4, 6))
    with pytest.raises(ValueError, match=r"weight_magnitude shape \(4, 5\)"):
        consistency_reconstruction_loss(phrases, weights, clips, torch.ones(4, 5))


def test_gradients_flow_to_the_estimates():
    low, high = two_sources()
    mixture = low + high
    clips = torch.stack([low, high], 1)
    estimates = (0.5 * mixture).unsqueeze(1).repeat(1, 2, 1, 1).requires_grad_()
    (mix_and_separate_loss(estimates, clips, mixture) + supervised_reconstruction_loss(estimates, clips, mixture)
     ).backward()
    assert estimates.grad.abs().sum() > 0

    phrases = (0.25 * mixture)[:, None, None].repeat(1, 2, 2, 1, 1).requires_grad_()
    consistency_reconstruction_loss(phrases, torch.ones(2, 2, 2, dtype=torch.float64), clips, mixture).backward()
    assert phrases.grad.abs().sum() > 0 and torch.isfinite(phrases.grad).all()

    weight_source = mixture.clone().requires_grad_()
    assert not weighted_l1(estimates.detach()[:, 0], low, weight_source).requires_grad


def unit(vectors):
    return F.normalize(torch.as_tensor(vectors, dtype=torch.float64), dim=-1)


def test_contrastive_hand_computed_and_summed_over_clip_slots():
    identity = torch.eye(2, dtype=torch.float64).unsqueeze(0)
    # each row: logits (1, 0) with the first as target -> log(1 + e^-1)
    expected = math.log(1 + math.exp(-1))
    assert bimodal_contrastive_loss(identity, identity, 1.0).item() == pytest.approx(expected)
    two_slots = identity.repeat(2, 1, 1)
    assert bimodal_contrastive_loss(two_slots, two_slots, torch.tensor(1.0)).item() == pytest.approx(2 * expected)
    assert bimodal_contrastive_loss(two_slots, two_slots, 100.0).item() < 1e-40


def test_contrastive_prefers_the_true_source_to_a_leaky_estimate():
    texts = torch.eye(3, 4, dtype=torch.float64).unsqueeze(0)  # three orthonormal phrase embeddings
    true_sources = texts.clone()
    estimates = unit([[[1.0, 0.6, 0.0, 0.0], [0.5, 1.0, 0.0, 0.0], [0.0, 0.3, 1.0, 0.2]]])
    base = bimodal_contrastive_loss(estimates, texts, 10.0)
    assert base > 0
    for k in range(3):
        improved = estimates.clone()
        improved[0, k] = true_sources[0, k]
        assert bimodal_contrastive_loss(improved, texts, 10.0) < base
    assert bimodal_contrastive_loss(true_sources, texts, 10.0) < base


def test_contrastive_valid_mask_ignores_padded_entries():
    generator = torch.Generator().manual_seed(2)
    audio = F.normalize(torch.randn(2, 4, 8, generator=generator, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(2, 4, 8, generator=generator, dtype=torch.float64), dim=-1)
    valid = torch.tensor([[True, True, True, False], [True, False, True, True]])
    loss = bimodal_contrastive_loss(audio, text, 5.0, valid=valid)

    changed_audio, changed_text = audio.clone(), text.clone()
    changed_audio[0, 3] = audio[0, 0]  # a padded entry that would be a perfect match for row 0
    changed_text[0, 3] = audio[0, 0]
    changed_audio[1, 1], changed_text[1, 1] = -audio[1, 1], text[1, 0]
    assert torch.allclose(bimodal_contrastive_loss(changed_audio, changed_text, 5.0, valid=valid), loss)

    kept = [[0, 1, 2], [0, 2, 3]]
    by_hand = sum(F.cross_entropy(5.0 * audio[n, kept[n]] @ text[n, kept[n]].T, torch.arange(3)) for n in range(2))
    assert torch.allclose(loss, by_hand)
    for symmetric in (False, True):
        assert not torch.allclose(bimodal_contrastive_loss(changed_audio, changed_text, 5.0, symmetric=symmetric),
                                  bimodal_contrastive_loss(audio, text, 5.0, symmetric=symmetric))

    audio.requires_grad_()
    bimodal_contrastive_loss(audio, text, 5.0, valid=valid, symmetric=True).backward()
    assert torch.isfinite(audio.grad).all() and audio.grad.abs().sum() > 0
    assert audio.grad[0, 3].abs().sum() == 0 and audio.grad[1, 1].abs().sum() == 0


def test_contrastive_same_text_removes_copies_from_the_negatives():
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    text = unit([[a, a, b]])
    audio = unit([[[1.0, 0.2, 0.1], [1.0, 0.0, 0.3], [0.1, 1.0, 0.0]]])
    same_text = torch.tensor([[[True, True, False], [True, True, False], [False, False, True]]])
    loss = bimodal_contrastive_loss(audio, text, 10.0, same_text=same_text)
    rows = [F.cross_entropy(10.0 * audio[0, i, None] @ text[0, [i, 2]].T, torch.tensor([0])) for i in (0, 1)]
    rows.append(F.cross_entropy(10.0 * audio[0, 2, None] @ text[0].T, torch.tensor([2])))
    assert torch.allclose(loss, sum(rows) / 3)
    columns = [F.cross_entropy(10.0 * text[0, i, None] @ audio[0, [i, 2]].T, torch.tensor([0])) for i in (0, 1)]
    columns.append(F.cross_entropy(10.0 * text[0, 2, None] @ audio[0].T, torch.tensor([2])))
    symmetric = bimodal_contrastive_loss(audio, text, 10.0, same_text=same_text, symmetric=True)
    assert torch.allclose(symmetric, (sum(rows) + sum(columns)) / 6)
    # without the mask a copy of the target's own text is a negative: at least log 2 for those rows
    assert bimodal_contrastive_loss(audio, text, 10.0) > loss + 2 / 3 * math.log(2) - 1e-3


def test_contrastive_symmetric_averages_both_directions():
    generator = torch.Generator().manual_seed(3)
    audio = F.normalize(torch.randn(2, 3, 5, generator=generator, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(2, 3, 5, generator=generator, dtype=torch.float64), dim=-1)
    logits = 4.0 * audio @ text.transpose(1, 2)
    target = torch.arange(3)
    audio_to_text = sum(F.cross_entropy(logits[n], target) for n in range(2))
    text_to_audio = sum(F.cross_entropy(logits[n].T, target) for n in range(2))
    assert torch.allclose(bimodal_contrastive_loss(audio, text, 4.0), audio_to_text)
    assert torch.allclose(bimodal_contrastive_loss(audio, text, 4.0, symmetric=True),
                          (audio_to_text + text_to_audio) / 2)


def test_contrastive_refuses_bad_inputs():
    embeddings = F.normalize(torch.ones(2, 3, 4), dim=-1)
    assert bimodal_contrastive_loss(embeddings, embeddings, 1.0) > 0
    with pytest.raises(ValueError, match=r"audio_embeddings must have shape \(clips, K, dim\), got rank 2"):
        bimodal_contrastive_loss(embeddings[0], embeddings[0], 1.0)
    with pytest.raises(ValueError, match=r"text_embeddings shape \(2, 4, 4\) does not match audio_embeddings"):
        bimodal_contrastive_loss(embeddings, torch.ones(2, 4, 4), 1.0)
    with pytest.raises(ValueError, match="logit_scale must be a scalar"):
        bimodal_contrastive_loss(embeddings, embeddings, torch.ones(2))
    with pytest.raises(ValueError, match=r"valid must be a bool tensor of shape \(2, 3\)"):
        bimodal_contrastive_loss(embeddings, embeddings, 1.0, valid=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid must be a bool tensor"):
        bimodal_contrastive_loss(embeddings, embeddings, 1.0, valid=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"same_text must be a bool tensor of shape \(2, 3, 3\)"):
        bimodal_contrastive_loss(embeddings, embeddings, 1.0, same_text=torch.ones(2, 3, dtype=torch.bool))


# The grounding model's training terms. The reference formulas are those the shipped grounding model was trained
# with (bisep.train.grounding before the terms moved here); the moved functions must give the same values.

def reference_multi_positive_infonce(logits, targets):
    targets = targets.float()
    audio_to_text = -((targets / targets.sum(1, keepdim=True)) * logits.log_softmax(1)).sum(1).mean()
    transposed = targets.T
    text_to_audio = -((transposed / transposed.sum(1, keepdim=True)) * logits.T.log_softmax(1)).sum(1).mean()
    return (audio_to_text + text_to_audio) / 2


def reference_class_ranking_loss(logits, shares, names):
    targets = torch.tensor([[row.get(name, 0.0) for name in names] for row in shares])
    return -((targets / targets.sum(1, keepdim=True)) * logits.log_softmax(1)).sum(1).mean()


def fixed_grounding_logits(rows, columns):
    return torch.randn(rows, columns, generator=torch.Generator().manual_seed(3)) * 7


def test_multi_positive_infonce_equals_the_formula_the_shipped_model_was_trained_with():
    from bisep.train.grounding import match_weights

    labels = [frozenset({"violin"}), frozenset({"violin", "rain"}), frozenset({"siren"}), frozenset({"violin"})]
    logits = fixed_grounding_logits(4, 4)
    for targets, value in ((match_weights(labels, 0.0) > 0, 4.681340), (match_weights(labels, 0.2), 4.852928)):
        expected = reference_multi_positive_infonce(logits, targets)
        assert float(expected) == pytest.approx(value, abs=1e-5)
        assert torch.equal(multi_positive_infonce(logits, targets), expected)


def test_class_ranking_loss_equals_the_formula_the_shipped_model_was_trained_with():
    from bisep.train.grounding import class_share_targets, level_share, uniform_shares

    names = ["dog", "rain", "siren", "violin"]
    added = level_share(-6.0)
    shares = [uniform_shares(frozenset({"violin", "rain"})), uniform_shares(frozenset({"siren"})),
              uniform_shares(frozenset({"dog"}), 1 - added) | uniform_shares(frozenset({"violin"}), added)]
    logits = fixed_grounding_logits(3, 4)
    expected = reference_class_ranking_loss(logits, shares, names)
    assert float(expected) == pytest.approx(8.174445, abs=1e-5)
    assert torch.equal(class_ranking_loss(logits, class_share_targets(shares, names)), expected)


def test_multi_positive_infonce_is_small_for_matching_pairs():
    positives = torch.eye(3, dtype=torch.bool)
    assert multi_positive_infonce(torch.eye(3) * 20, positives) < 1e-6
    assert multi_positive_infonce(torch.zeros(3, 3), positives) == pytest.approx(math.log(3))
    duplicates = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    # two audio share two texts: each puts half its target on either, so log 2 is the best it can do there
    loss = multi_positive_infonce(torch.tensor([[9.0, 9, 0], [9, 9, 0], [0, 0, 9]]), duplicates)
    assert loss == pytest.approx(2 / 3 * math.log(2), abs=1e-3)


def test_class_ranking_rewards_putting_every_own_class_first():
    targets = torch.tensor([[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])
    both_first = torch.tensor([[0.0, 9.0, 0.0, 9.0], [0.0, 0.0, 9.0, 0.0]])
    one_missing = torch.tensor([[9.0, 0.0, 0.0, 9.0], [0.0, 0.0, 9.0, 0.0]])
    # the 2-class row cannot do better than log 2 (half its target on each class); the 1-class row reaches 0
    assert class_ranking_loss(both_first, targets) == pytest.approx(0.5 * math.log(2), abs=1e-3)
    assert class_ranking_loss(one_missing, targets) > 2.0


@pytest.mark.parametrize("loss", [multi_positive_infonce, class_ranking_loss])
def test_grounding_losses_refuse_bad_inputs(loss):
    with pytest.raises(ValueError, match=r"logits must have shape \(audio, "):
        loss(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="targets shape"):
        loss(torch.zeros(3, 3), torch.ones(3, 2))
    with pytest.raises(TypeError, match="targets must be a torch.Tensor"):
        loss(torch.zeros(3, 3), [[1.0] * 3] * 3)
