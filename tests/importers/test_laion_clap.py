"""LAION-CLAP layout -> transformers ClapModel, checked against LAION's own model's outputs.

``data/laion_clap_tiny.json`` holds the key list and outputs of LAION-CLAP's own code at a tiny size with the
seeded weights of ``tiny_laion_clap.py`` (made by ``benchmarks/laion_clap_equivalence.py --write``, which needs
LAION's source, torchlibrosa and librosa; CI needs none of them).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
from tokenizers import ByteLevelBPETokenizer  # noqa: E402
from transformers import RobertaTokenizer  # noqa: E402

from bisep.errors import BisepError  # noqa: E402
from bisep.grounding.clap import load_clap  # noqa: E402
from bisep.importers.laion_clap import (  # noqa: E402
    convert_laion_clap,
    read_laion_checkpoint,
    save_clap_folder,
)
from tiny_laion_clap import (  # noqa: E402
    TEXT_HEADS,
    converted_outputs,
    load_reference,
    random_laion_state,
    reference_inputs,
)


@pytest.fixture(scope="module")
def reference():
    return load_reference()


@pytest.fixture(scope="module")
def laion_state(reference):
    return random_laion_state(reference["shapes"])


@pytest.fixture(scope="module")
def converted(laion_state):
    return convert_laion_clap(laion_state, "tiny", text_heads=TEXT_HEADS)


def write_roberta_tokenizer(folder: Path, vocab_size: int = 300) -> Path:
    """Byte-level BPE files in RoBERTa's format (vocab.json + merges.txt), trained here on a few captions."""
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["a dog barking", "rain on a roof", "a man speaks", "violin and piano"],
                            vocab_size=vocab_size, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(folder))
    return folder


def test_converted_model_reproduces_laion_outputs(converted, reference):
    model, record = converted
    got = converted_outputs(model, *reference_inputs())
    for name, expected in reference["outputs"].items():
        difference = (got[name] - torch.tensor(expected)).abs().max().item()
        assert difference < 1e-4, f"{name}: {difference}"
    # The embeddings are not degenerate: the two clips and the two prompts differ.
    outputs = reference["outputs"]
    assert np.abs(np.subtract(*outputs["audio"])).max() > 0.05
    assert np.abs(np.subtract(*outputs["text"])).max() > 0.05
    assert record["converted_tensors"] + sum(record["dropped"].values()) == len(reference["shapes"])


def test_config_is_read_from_the_shapes(converted):
    config = converted[0].config
    assert config.audio_config.depths == [1, 1, 1, 1] and config.audio_config.num_attention_heads == [1, 1, 2, 2]
    assert (config.audio_config.patch_embeds_hidden_size, config.audio_config.hidden_size) == (8, 64)
    assert config.projection_dim == 32 and config.text_config.vocab_size == 300
    assert config.text_config.layer_norm_eps == 1e-5


def test_folder_loads_offline_as_grounding(converted, tmp_path, reference):
    folder = save_clap_folder(converted[0], write_roberta_tokenizer(tmp_path / "tok"), tmp_path / "clap")
    grounding = load_clap(folder).pad_text_to_context()
    text = grounding.encode_text(["a dog barking"])
    assert text.tokens.shape == (1, 77, 768) and int(text.mask.sum()) < 77
    assert text.tokens[0, 76].abs().sum() > 0  # RoBERTa's output at a padding position, not zeros
    assert RobertaTokenizer.from_pretrained(folder, local_files_only=True).pad_token_id == 1
    unpadded = grounding.pad_text_to_context(False).encode_text(["a dog barking"])
    assert torch.allclose(unpadded.embedding, text.embedding, atol=1e-5)


def test_checkpoint_file_with_ddp_prefix_and_numpy_scalars(laion_state, tmp_path):
    path = tmp_path / "laion.pt"
    state = {"module." + key: value for key, value in laion_state.items()}
    torch.save({"epoch": 15, "best": np.float64(90.14), "state_dict": state}, path)
    assert read_laion_checkpoint(path).keys() == laion_state.keys()


@pytest.mark.parametrize("edit, named", [
    (lambda s: s.update({"audio_branch.fusion_model.local_att.0.weight": torch.zeros(1)}), "fused"),
    (lambda s: s.update({"some_other_head.weight": torch.zeros(1)}), "some_other_head.weight"),
    (lambda s: s.update({"audio_branch.logmel_extractor.melW": s["audio_branch.logmel_extractor.melW"] * 2}),
     "mel filter bank"),
    (lambda s: s.pop("text_branch.pooler.dense.weight"), "missing"),
    (lambda s: s.update({"audio_projection.2.bias": torch.zeros(5)}), "audio_projection.linear2.bias"),
])
def test_bad_layouts_are_one_line_errors(laion_state, edit, named):
    state = dict(laion_state)
    edit(state)
    with pytest.raises(BisepError) as error:
        convert_laion_clap(state, "bad.pt", text_heads=TEXT_HEADS)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_missing_tokenizer_names_the_files(converted, tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.json").write_text("{}")
    with pytest.raises(BisepError) as error:
        save_clap_folder(converted[0], tmp_path / "tok", tmp_path / "clap")
    message = str(error.value)
    assert "merges.txt" in message and "roberta-base" in message and not (tmp_path / "clap").exists()


def test_logit_scales_are_carried_over(converted, laion_state):
    model = converted[0]
    assert math.isclose(model.logit_scale_a.item(), laion_state["logit_scale_a"].item())
    assert math.isclose(model.logit_scale_t.item(), laion_state["logit_scale_t"].item())
