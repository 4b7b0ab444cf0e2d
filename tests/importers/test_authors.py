"""`bisep import authors` on a random checkpoint laid out like the authors' release.

The separator tensors follow ``data/authors_separator_keys.txt`` (every key and shape of their released
``net_sound`` and ``net_synthesizer``, paper configuration); ``net_clap.fc`` is 32 x 512; their LAION-CLAP is the
tiny LAION layout of ``tiny_laion_clap.py`` widened to the 512-d joint space the separator needs. One tiny forward
only: the paper preset is 87.7 M parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

pytest.importorskip("transformers")

from bisep.cli import run  # noqa: E402
from bisep.config import read_yaml  # noqa: E402
from bisep.grounding.base import TextFeatures  # noqa: E402
from bisep.importers.authors import AUTHORS_KEY_MAP, PAPER_SEPARATOR, bisep_key, load_authors_separator  # noqa: E402
from bisep.separator.api import Separator  # noqa: E402
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator  # noqa: E402
from test_laion_clap import write_roberta_tokenizer  # noqa: E402
from tiny_laion_clap import load_reference, random_laion_state  # noqa: E402

KEYS = Path(__file__).parent / "data" / "authors_separator_keys.txt"
ROOT = Path(__file__).resolve().parents[2]


def authors_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in KEYS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            shapes[key] = tuple(int(size) for size in shape.strip("()").split(",") if size.strip())
    shapes["net_clap.fc.weight"], shapes["net_clap.fc.bias"] = (32, 512), (32,)
    return shapes


def random_authors_state(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in authors_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=generator)
    return state


def clap_in_joint_space_512() -> dict[str, torch.Tensor]:
    """The tiny LAION layout with its projections (and training MLPs) widened to a 512-d joint space."""
    shapes = {}
    for key, shape in load_reference()["shapes"].items():
        if key.split(".")[0] in ("text_projection", "audio_projection", "text_transform", "audio_transform"):
            shape = [512 if size == 32 else size for size in shape]
        shapes[key] = shape
    return random_laion_state(shapes, seed=1)


@pytest.fixture(scope="module")
def authors_state():
    return random_authors_state()


@pytest.fixture(scope="module")
def checkpoint(authors_state, tmp_path_factory):
    """Their file's shape: DDP prefix, the whole network (separator, CLAP, STFT modules) and training extras."""
    state = {f"module.{key}": value for key, value in authors_state.items()}
    state.update({f"module.net_clap.model.model.{key}": value for key, value in clap_in_joint_space_512().items()})
    state["module.stft.conv_real.weight"] = torch.zeros(512, 1, 1022)
    path = tmp_path_factory.mktemp("authors") / "model_weights.pth.tar"
    torch.save({"epoch": 200, "best_sdr": np.float64(7.5), "state_dict": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}}, path)
    return path


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return write_roberta_tokenizer(tmp_path_factory.mktemp("roberta"))


@pytest.fixture(scope="module")
def imported(checkpoint, tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "authors-model"
    assert run(["import", "authors", str(checkpoint), "--out", str(out), "--tokenizer", str(tokenizer)]) == 0
    return out


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bisep: error: "), lines
    return lines[0]


def test_every_listed_key_has_a_place_in_the_paper_preset():
    ours = TextQueriedSeparator(PAPER_SEPARATOR).state_dict()
    theirs = {bisep_key(key): shape for key, shape in authors_shapes().items()}
    assert None not in theirs
    assert set(theirs) == set(ours)
    assert all(tuple(ours[key].shape) == shape for key, shape in theirs.items())
    weights = [value for key, value in ours.items() if "running" not in key and "tracked" not in key]
    assert sum(value.numel() for value in weights) == 87_697_699  # the paper preset's 87.7 M


def test_paper_separator_is_the_paper_preset():
    for name in ("audiocaps", "vggsound", "music"):
        preset = read_yaml(ROOT / "configs" / "paper" / f"{name}.yaml")["model"]
        assert SeparatorConfig(**preset) == PAPER_SEPARATOR, name


def test_import_writes_a_folder_with_provenance(imported, checkpoint, authors_state):
    meta = json.loads((imported / "config.json").read_text())
    provenance = meta["provenance"]
    assert provenance["checkpoint_sha256"] and provenance["training_data"].startswith("not stated")
    assert provenance["keys"]["key_mapping"] == {f"module.{a}": b for a, b in AUTHORS_KEY_MAP.items()}
    assert provenance["keys"]["left_out"] == ["stft.conv_real.weight"]
    assert provenance["grounding_folder"] == "clap" and (imported / "clap" / "model.safetensors").is_file()
    model, _, _ = load_authors_separator(checkpoint)
    assert torch.equal(model.state_dict()["unet.bn0.running_var"], authors_state["net_sound.bn0.running_var"])
    assert torch.equal(model.text_projection.weight, authors_state["net_clap.fc.weight"])


def test_imported_model_separates_through_the_cli(imported, tmp_path):
    """The one forward pass of the full-size network: a quarter second through `bisep separate`."""
    soundfile.write(tmp_path / "mix.wav", 0.1 * np.random.default_rng(0).standard_normal(4000), 16000)
    out = tmp_path / "out"
    assert run(["separate", str(tmp_path / "mix.wav"), "-q", "a dog barking", "-o", str(out), "--model",
                str(imported), "--residual", "--device", "cpu"]) == 0
    estimate, rate = soundfile.read(out / "mix" / "a-dog-barking.wav")
    assert rate == 16000 and estimate.shape == (4000,) and np.isfinite(estimate).all()


def test_imported_model_text_path_is_the_authors(imported):
    separator = Separator.from_pretrained(imported, device="cpu")
    text = separator.grounding.encode_text(["a dog barking", "rain"])
    assert text.tokens.shape == (2, 77, 768) and separator.model.config.attend_padding
    masks = separator.model.masks(torch.rand(1, 128, 128), TextFeatures(text.embedding[:1], text.tokens[:1],
                                                                         text.mask[:1]), 1)
    assert masks.shape == (1, 1, 128, 128) and torch.isfinite(masks).all()


def test_pickled_object_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "args": Path("/etc/passwd")}, path)
    assert run(["import", "authors", str(path), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "pickled pathlib" in line and "weights_only=True" in line
    assert not (tmp_path / "o").exists()


def test_truncated_file_is_refused(checkpoint, tmp_path, capsys):
    path = tmp_path / "truncated.pth.tar"
    with open(checkpoint, "rb") as source:
        path.write_bytes(source.read(100_000))
    assert run(["import", "authors", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "truncated or corrupt" in one_error_line(capsys)


def test_wrong_shape_is_refused_with_the_key_named(authors_state, tmp_path, capsys):
    state = {f"module.{key}": value.half() for key, value in authors_state.items()}
    state["module.net_synthesizer.scale"] = torch.zeros(16)
    path = tmp_path / "wrong.pth.tar"
    torch.save({"state_dict": state}, path)
    assert run(["import", "authors", str(path), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "module.net_synthesizer.scale has shape (16,), expected (32,)" in line


def test_conversion_without_tokenizer_names_the_files(checkpoint, tmp_path, capsys):
    assert run(["import", "authors", str(checkpoint), "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "vocab.json and merges.txt" in line and "roberta-base" in line and "--tokenizer" in line
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(imported, checkpoint, tokenizer, capsys):
    assert run(["import", "authors", str(checkpoint), "--out", str(imported), "--tokenizer", str(tokenizer)]) == 2
    assert "--overwrite" in one_error_line(capsys)


@pytest.mark.slow
def test_clap_given_as_laion_file_or_transformers_folder(authors_state, tokenizer, tmp_path):
    """``--clap LAION.pt`` converts that file; ``--clap FOLDER`` references a transformers folder by its path."""
    checkpoint = tmp_path / "separator-only.pth.tar"
    torch.save({"state_dict": {f"module.{key}": value for key, value in authors_state.items()}}, checkpoint)
    laion_file = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    torch.save({"epoch": 15, "state_dict": {f"module.{k}": v for k, v in clap_in_joint_space_512().items()}},
               laion_file)
    converted = tmp_path / "from-file"
    assert run(["import", "authors", str(checkpoint), "--clap", str(laion_file), "--tokenizer", str(tokenizer),
                "--out", str(converted)]) == 0
    source = json.loads((converted / "config.json").read_text())["provenance"]["grounding_source"]
    assert source["file"] == str(laion_file.resolve()) and source["sha256"]
    referenced = tmp_path / "from-folder"
    assert run(["import", "authors", str(checkpoint), "--clap", str(converted / "clap"), "--out", str(referenced)]) == 0
    provenance = json.loads((referenced / "config.json").read_text())["provenance"]
    assert provenance["grounding"] == f"clap:{(converted / 'clap').resolve()}" and not (referenced / "clap").exists()
    assert Separator.from_pretrained(referenced, device="cpu").grounding.pad_to_context
