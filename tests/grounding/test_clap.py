"""The LAION-CLAP backend on a tiny random ClapModel saved to disk (no checkpoint download in CI).

The tiny model has the real audio front end (48 kHz, 64 Slaney mel bins, 1001 frames, 256x256 HTSAT input)
with two small Swin stages and a two-layer text tower; the tokenizer is a byte-level BPE trained here on a few
captions and saved as RoBERTa tokenizer files.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import socket

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
from tokenizers import ByteLevelBPETokenizer  # noqa: E402
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, RobertaTokenizer  # noqa: E402

from bisep.errors import BisepError  # noqa: E402
from bisep.grounding.clap import load_clap  # noqa: E402
from bisep.grounding.clap_features import ClapLogMel, slaney_mel_filters  # noqa: E402

RATE = 48000
TEN_SECONDS = 10 * RATE
CAPTIONS = [
    "a dog barking in the distance",
    "rain falling on a tin roof",
    "a man speaks while birds chirp",
    "the sound of a violin and a piano",
    "a car engine idling then revving",
]


def unfused_extractor(**overrides) -> ClapFeatureExtractor:
    """The settings of LAION's unfused checkpoints' preprocessor_config.json."""
    settings = dict(frequency_min=50, frequency_max=14000, truncation="rand_trunc", padding="repeatpad")
    return ClapFeatureExtractor(**{**settings, **overrides})


def write_tiny_clap(folder: pathlib.Path) -> None:
    """A random ClapModel, RoBERTa tokenizer files and the unfused extractor config, as save_pretrained lays them
    out for the real model."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CAPTIONS, vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    bpe.save_model(str(folder))  # vocab.json + merges.txt
    RobertaTokenizer.from_pretrained(folder, local_files_only=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = ClapConfig(
        text_config=dict(
            vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
        ),
        audio_config=dict(
            patch_embeds_hidden_size=16, depths=[1, 1], num_attention_heads=[1, 2], hidden_size=32, window_size=8
        ),
        projection_dim=16,
    )
    model = ClapModel(config)
    with torch.no_grad():  # different audio and text scales, so the test sees which one is used
        model.logit_scale_a.fill_(math.log(20.0))
        model.logit_scale_t.fill_(math.log(30.0))
    model.save_pretrained(folder)
    unfused_extractor().save_pretrained(folder)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory) -> pathlib.Path:
    folder = tmp_path_factory.mktemp("clap")
    write_tiny_clap(folder)
    return folder


@pytest.fixture
def clap(clap_folder):
    return load_clap(clap_folder)


@pytest.fixture
def folder_copy(clap_folder, tmp_path) -> pathlib.Path:
    return pathlib.Path(shutil.copytree(clap_folder, tmp_path / "clap"))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the CLAP backend tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def tonal(seconds: float) -> np.ndarray:
    time = np.arange(int(seconds * RATE)) / RATE
    chord = sum(a * np.sin(2 * np.pi * f * time) for f, a in ((440, 0.5), (2900, 0.3), (7000, 0.1)))
    return chord.astype(np.float32)


def extractor_features(extractor, audio: np.ndarray) -> np.ndarray:
    """The extractor's ``(1, 1, frames, mels)``; for clips over 10 s its random crop (``np.random.randint(0,
    overflow + 1)``) is pinned to the centre, the crop our front end takes."""
    crops = []

    def centre(low, high):
        crops.append((low, high))
        return (high - 1) // 2

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np.random, "randint", centre)
        features = extractor(audio, sampling_rate=RATE, return_tensors="np")["input_features"]
    assert len(crops) == (audio.shape[0] > TEN_SECONDS)
    return features


def test_loads_offline_with_the_models_dimensions(clap_folder, no_network):
    clap = load_clap(str(clap_folder))
    assert (clap.name, clap.sample_rate, clap.embedding_dim, clap.token_dim) == ("clap", 48000, 16, 32)
    assert not clap.training
    assert clap.logit_scale.item() == pytest.approx(20.0)  # exp(logit_scale_a), not logit_scale_t (30)


def test_text_features_match_transformers(clap):
    prompts = ["a dog barking", "rain"]
    features = clap.encode_text(prompts)
    batch = clap.tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = clap.model.get_text_features(**batch)  # transformers 5: a model output, pooled and normalised
    assert features.embedding.shape == (2, 16)
    assert torch.allclose(features.embedding.norm(dim=-1), torch.ones(2), atol=1e-6)
    assert torch.allclose(features.embedding, reference.pooler_output, atol=1e-6)
    assert features.tokens.shape == (2, batch["input_ids"].shape[1], 32)
    assert torch.equal(features.mask, batch["attention_mask"].bool())
    assert features.mask[0].all() and not features.mask[1].all()  # "rain" is the shorter, padded prompt
    assert torch.allclose(features.tokens[features.mask], reference.last_hidden_state[features.mask], atol=1e-6)
    assert (features.tokens[~features.mask] == 0).all()


def test_text_cache_computes_each_prompt_once(clap):
    batch_sizes = []

    def count(module, args, kwargs, output):
        batch_sizes.append(kwargs["input_ids"].shape[0])

    clap.model.text_model.register_forward_hook(count, with_kwargs=True)
    first = clap.encode_text(["a dog barking", "rain"])
    again = clap.encode_text(["a dog barking", "rain"])
    clap.encode_text(["rain", "a violin"])
    assert batch_sizes == [1, 1, 1]  # each distinct prompt once, alone (features never depend on batch-mates)
    assert torch.equal(first.embedding, again.embedding) and torch.equal(first.tokens, again.tokens)


def test_vocab_and_merges_alone_give_the_same_tokens(clap, folder_copy):
    (folder_copy / "tokenizer.json").unlink()
    prompts = ["a man speaks while birds chirp", "a car engine"]
    reloaded = load_clap(folder_copy).tokenizer(prompts, padding=True)
    assert reloaded["input_ids"] == clap.tokenizer(prompts, padding=True)["input_ids"]


@pytest.mark.parametrize("seconds", [3.0, 10.0, 12.5])
def test_audio_embedding_matches_transformers(clap, seconds):
    audio = np.stack([noise(seconds, seed=1), tonal(seconds)])
    features = np.concatenate([extractor_features(unfused_extractor(), clip) for clip in audio])
    with torch.no_grad():
        reference = clap.model.get_audio_features(input_features=torch.from_numpy(features)).pooler_output
        embedding = clap.encode_audio(torch.from_numpy(audio), RATE)
    assert embedding.shape == (2, 16)
    assert torch.allclose(embedding.norm(dim=-1), torch.ones(2), atol=1e-6)
    # measured: max abs difference 3.7e-6 (float32 front end vs the extractor's float64 numpy)
    assert (embedding - reference).abs().max() <= 2e-5


def test_gradients_reach_a_16khz_waveform(clap):
    clap.freeze()
    waveform = torch.from_numpy(np.stack([noise(2.0, seed=2)[::3], tonal(2.0)[::3]])).requires_grad_(True)
    embedding = clap.encode_audio(waveform, 16000)
    text = clap.encode_text(["a dog barking", "rain"]).embedding
    (clap.logit_scale * clap.similarity(embedding, text)).log_softmax(dim=1).diagonal().sum().backward()
    assert embedding.shape == (2, 16)
    assert torch.isfinite(waveform.grad).all()
    assert (waveform.grad.abs().sum(dim=1) > 0).all()
    assert all(parameter.grad is None for parameter in clap.parameters())


def test_slaney_filters_match_the_extractors():
    extractor = unfused_extractor()
    filters = slaney_mel_filters(1024, 64, 50.0, 14000.0, RATE).numpy()
    assert np.abs(filters - extractor.mel_filters_slaney).max() <= 1e-12


@pytest.mark.parametrize("signal", ["noise", "tonal"])
@pytest.mark.parametrize("seconds", [3.0, 10.0, 12.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_front_end_matches_the_extractor(signal, seconds, dtype):
    """Measured max abs differences (dB): float64 3.8e-6 everywhere (the extractor rounds its spectrum to
    complex64 and its output to float32). float32 (round-off of the FFT): noise 1.5e-5, and 8.4e-5 in the frame
    where a repeat-padded clip meets its zero tail; tonal 1.3e-3 on bins within 80 dB of their frame's loudest,
    0.035 on bins about 120 dB below it, near the -100 dB floor."""
    audio = noise(seconds) if signal == "noise" else tonal(seconds)
    extractor = unfused_extractor()
    reference = extractor_features(extractor, audio)
    features = ClapLogMel.from_extractor(extractor).to(dtype)(torch.from_numpy(audio).to(dtype)[None]).numpy()
    assert features.shape == reference.shape == (1, 1, 1001, 64)
    difference = np.abs(features - reference)
    if dtype == torch.float64:
        assert difference.max() <= 1e-5
    elif signal == "noise":
        assert difference.max() <= 5e-4
    else:
        below_peak = reference.max(axis=-1, keepdims=True) - reference
        assert difference[below_peak <= 80].max() <= 3e-3
        assert difference.max() <= 0.1


@pytest.mark.parametrize("padding", ["repeat", "pad"])
def test_other_paddings_match_the_extractor(padding):
    extractor = unfused_extractor(padding=padding)
    audio = noise(2.7)
    reference = extractor_features(extractor, audio)
    features = ClapLogMel.from_extractor(extractor).double()(torch.from_numpy(audio).double()[None]).numpy()
    assert np.abs(features - reference).max() <= 1e-5


def test_front_end_refuses_the_fused_extractor():
    with pytest.raises(BisepError, match="rand_trunc"):
        ClapLogMel.from_extractor(ClapFeatureExtractor())  # truncation="fusion" by default


def test_pickle_weights_load_as_tensors_only(clap, folder_copy):
    state = {name: tensor.clone() for name, tensor in clap.model.state_dict().items()}
    (folder_copy / "model.safetensors").unlink()
    torch.save(state, folder_copy / "pytorch_model.bin")
    loaded = load_clap(folder_copy).model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())

    marker = folder_copy / "code-ran"

    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    torch.save({"audio_projection.linear1.weight": Payload()}, folder_copy / "pytorch_model.bin")
    with pytest.raises(BisepError, match="pickled objects") as error:
        load_clap(folder_copy)
    assert not marker.exists()
    assert "\n" not in str(error.value)


def remove(*names):
    def edit(folder: pathlib.Path) -> None:
        for name in names:
            (folder / name).unlink()

    return edit


def rewrite_json(name: str, **changes):
    def edit(folder: pathlib.Path) -> None:
        content = json.loads((folder / name).read_text())
        for key, value in changes.items():
            target = content
            *parents, leaf = key.split(".")
            for parent in parents:
                target = target[parent]
            target[leaf] = value
        (folder / name).write_text(json.dumps(content))

    return edit


@pytest.mark.parametrize(
    "edit,named",
    [
        (shutil.rmtree, "no such folder"),
        (remove("config.json"), "missing config.json"),
        (remove("model.safetensors"), "missing model.safetensors (or pytorch_model.bin)"),
        (remove("tokenizer.json", "vocab.json", "merges.txt"), "missing tokenizer.json (or vocab.json + merges.txt)"),
        (remove("tokenizer.json", "merges.txt"), "missing tokenizer.json (or vocab.json + merges.txt)"),
        (remove("tokenizer_config.json"), "missing tokenizer_config.json"),
        (remove("preprocessor_config.json"), "missing preprocessor_config.json"),
        (remove("config.json", "tokenizer_config.json"), "missing config.json, tokenizer_config.json"),
        (rewrite_json("config.json", model_type="bert"), "model_type 'bert', not a CLAP model"),
        (lambda folder: (folder / "config.json").write_text("{not json"), "config.json is not readable JSON"),
        (lambda folder: (folder / "model.safetensors").write_bytes(b"garbage"), "cannot load it (SafetensorError"),
        (rewrite_json("config.json", **{"audio_config.enable_fusion": True}), "fused LAION-CLAP"),
        (rewrite_json("preprocessor_config.json", truncation="fusion"), "truncation='fusion'"),
    ],
)
def test_loading_errors_are_one_line_and_name_the_files(folder_copy, edit, named, no_network):
    edit(folder_copy)
    with pytest.raises(BisepError) as error:
        load_clap(folder_copy)
    message = str(error.value)
    assert named in message
    assert "\n" not in message
    if "fus" not in named:
        assert "config.json, model.safetensors (or pytorch_model.bin), preprocessor_config.json" in message
        assert "save_pretrained" in message
