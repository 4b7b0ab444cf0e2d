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


def concatenated_walk(unet: ConditionalUNet, log_magnitude, tokens, mask, prompts: int) -> torch.Tensor:
    """The U-Net as the authors' nested blocks run it: every prompt through every level, skips concatenated."""
    features = unet.bn0(log_magnitude).repeat_interleave(prompts, dim=0)
    inputs = []
    for level in unet.levels():
        inputs.append(features)
        features = level.down(features, tokens, mask) if level.conditioned else level.down(features)
    for index in range(len(inputs) - 1, -1, -1):
        features = unet.levels()[index].up(features)
        if index > 0:
            features = torch.cat([inputs[index], features], dim=1)
    return features


@pytest.mark.parametrize("res_layers, conditioned_levels", [(1, 2), (2, 1), (0, 3)])
@pytest.mark.parametrize("training", [False, True])
def test_split_up_path_equals_the_concatenated_one(res_layers, conditioned_levels, training):
    torch.manual_seed(0)
    unet = ConditionalUNet(num_downs=5, base_channels=4, out_channels=4, conditioning="sca",
                           conditioned_levels=conditioned_levels, res_layers=res_layers, heads=1, token_dim=6)
    unet.train(training).double()  # float64: the two orders of summation then agree to round-off
    for module in unet.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 1.5)
    log_magnitude = torch.rand(2, 1, 64, 32, dtype=torch.float64)
    tokens = torch.randn(6, 3, 6, dtype=torch.float64, requires_grad=True)
    split = unet(log_magnitude, tokens, None, 3)
    reference = concatenated_walk(unet, log_magnitude, tokens, None, 3)
    assert split.shape == (6, 4, 64, 32)
    assert torch.allclose(split, reference, atol=1e-10)
    weights = torch.randn_like(split)
    inputs = [tokens, *(parameter for parameter in unet.parameters() if parameter.requires_grad)]
    split_gradients = torch.autograd.grad((split * weights).sum(), inputs, allow_unused=True)
    reference_gradients = torch.autograd.grad((reference * weights).sum(), inputs, allow_unused=True)
    for mine, expected in zip(split_gradients, reference_gradients):
        assert (mine is None) == (expected is None)
        assert mine is None or torch.allclose(mine, expected, atol=1e-9)


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
