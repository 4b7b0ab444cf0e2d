import pytest
import torch

from bisep.grounding.base import TextFeatures
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator
from bisep.separator.unet import ConditionalUNet

SMALL = SeparatorConfig(num_downs=5, base_channels=8, out_channels=8, token_dim=12, embedding_dim=10, heads=2,
                        conditioned_levels=2)


def random_text(count: int, config: SeparatorConfig = SMALL, length: int = 5, seed: int = 0) -> TextFeatures:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(count, length, dtype=torch.bool)
    mask[0, -2:] = False
    embedding = torch.nn.functional.normalize(torch.randn(count, config.embedding_dim, generator=generator), dim=-1)
    return TextFeatures(embedding, torch.randn(count, length, config.token_dim, generator=generator), mask)


def authors_layout() -> dict[str, tuple[int, ...]]:
    from pathlib import Path

    layout = {}
    for line in (Path(__file__).parents[2].parent / "shared" / "authors_separator_keys.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            layout[key] = tuple(int(n) for n in shape.strip("() ").split(",") if n.strip())
    return layout


def test_paper_preset_matches_the_authors_key_layout():
    path_ok = (__import__("pathlib").Path(__file__).parents[2].parent / "shared" / "authors_separator_keys.txt")
    if not path_ok.is_file():
        pytest.skip("shared/authors_separator_keys.txt is not beside the checkout")
    model = TextQueriedSeparator(SeparatorConfig())
    renamed = {}
    for key, value in model.state_dict().items():
        prefix, rest = key.split(".", 1)
        target = {"unet": "net_sound", "synthesizer": "net_synthesizer", "text_projection": "net_clap.fc"}[prefix]
        renamed[f"{target}.{rest}"] = tuple(value.shape)
    expected = authors_layout()
    expected.update({"net_clap.fc.weight": (32, 512), "net_clap.fc.bias": (32,)})
    assert renamed == expected
    assert 85e6 < sum(p.numel() for p in model.parameters()) < 90e6


@pytest.mark.parametrize("conditioning,decoder_film", [
    ("ca", False), ("sa", False), ("sca", False), ("cat", False), ("sca_cat", False), ("identity", False),
    ("sca", True), ("identity", True)])
def test_shared_encoder_equals_per_prompt_computation(conditioning, decoder_film):
    torch.manual_seed(0)
    config = SeparatorConfig(**{**SMALL.__dict__, "conditioning": conditioning, "decoder_film": decoder_film})
    model = TextQueriedSeparator(config).eval()
    for name, parameter in model.named_parameters():
        if ".film." in name:  # zero at initialisation: give the prompt a visible effect
            torch.nn.init.normal_(parameter, 0.0, 0.5)
    mixtures = torch.randn(2, 4000) * 0.1
    text = random_text(6, config)
    with torch.no_grad():
        shared = model(mixtures, text)["masks"]
        naive = torch.stack([
            model(mixtures[i // 3:i // 3 + 1], TextFeatures(text.embedding[i:i + 1], text.tokens[i:i + 1],
                                                             text.mask[i:i + 1]))["masks"][0, 0]
            for i in range(6)
        ]).view_as(shared)
    assert torch.allclose(shared, naive, atol=1e-5)


def test_outputs_have_documented_shapes_for_any_length():
    model = TextQueriedSeparator(SMALL).eval()
    for samples in (255, 4000, 7777):
        out = model(torch.randn(1, samples) * 0.1, random_text(3))
        frames = samples // SMALL.hop_length + 1
        assert out["masks"].shape == (1, 3, SMALL.n_fft // 2 + 1, frames)
        assert out["waveforms"].shape == (1, 3, samples)
        assert ((out["masks"] >= 0) & (out["masks"] <= 1)).all()


def test_gradients_reach_the_weights_and_the_text():
    model = TextQueriedSeparator(SMALL).train()
    text = random_text(4)
    text.tokens.requires_grad_(True)
    out = model(torch.randn(2, 3000) * 0.1, text)
    out["waveforms"].pow(2).mean().backward()
    assert text.tokens.grad is not None and torch.isfinite(text.tokens.grad).all()
    assert model.unet.unet_block.downconv.weight.grad.abs().sum() > 0


def test_binary_mask_option_and_refusals():
    model = TextQueriedSeparator(SeparatorConfig(**{**SMALL.__dict__, "mask": "binary"})).eval()
    masks = model(torch.randn(1, 3000) * 0.1, random_text(2))["masks"]
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="do not divide"):
        model(torch.randn(2, 3000), random_text(3))
    with pytest.raises(ValueError, match="unknown conditioning"):
        ConditionalUNet(conditioning="film")


def test_decoder_film_makes_every_inner_decoder_level_depend_on_the_prompt():
    torch.manual_seed(0)
    config = SeparatorConfig(**{**SMALL.__dict__, "conditioning": "identity", "decoder_film": True})
    model = TextQueriedSeparator(config).eval()
    films = [level.film for level in model.unet.levels()]
    assert films[0] is None and all(film is not None for film in films[1:])
    mixtures = torch.randn(1, 4000) * 0.1
    with torch.no_grad():
        same = model(mixtures.repeat(2, 1), random_text(2, config))["masks"]
        # zero-initialised FiLM and identity blocks: only the (near-constant at start) mask head sees the prompt
        assert torch.allclose(same[0], same[1], atol=1e-3)
        for film in films[1:]:
            torch.nn.init.normal_(film.weight, 0.0, 0.5)
        differs = model(mixtures, random_text(2, config))["masks"]
    assert not torch.allclose(differs[0, 0], differs[0, 1], atol=1e-4)
