"""Does bisep's paper preset compute what the authors' network computes? Same random weights (moved through
bisep's key mapping, as `bisep import authors` moves them), same input spectrogram, same token features and
joint text embedding; compares the masks.

    python benchmarks/authors_equivalence.py AUTHORS_CHECKOUT [--prompts 3] [--seed 0] [--double]

AUTHORS_CHECKOUT is your checkout of microsoft/BiModalAudioSeparation. Its ``models/cond_unet_attn.py`` (the
conditional U-Net) and ``models/synthesizer_net.py`` (the mask head) are imported from there at run time; their
``utils`` module (which needs OpenCV and moviepy, unused by the network) is stood in for when it cannot be
imported. Their forward pass is the one of their ``demo.py``: ``sigmoid(fc(text embedding))`` as the mask head's
condition, ``net_sound(log1p(|STFT|), RoBERTa hidden states)`` (all 77 positions) and ``sigmoid(InnerProd)``,
one prompt per call. bisep runs all prompts in one call with its shared prompt-independent encoder. When
``torchlibrosa`` (their demo's STFT) is installed, the spectrogram and the inverse STFT are compared too.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import types
from pathlib import Path

import torch
from torch import nn

from bisep.grounding.base import TextFeatures
from bisep.importers.authors import PAPER_SEPARATOR, split_authors_state
from bisep.separator.model import TextQueriedSeparator

SECONDS_SAMPLES = 131070  # their demo's segment: 8.19 s at 16 kHz
CONTEXT = 77


def import_authors_module(checkout: Path, relative: str, name: str):
    try:
        spec = importlib.util.spec_from_file_location("utils", checkout / "utils.py")
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
    except Exception:  # their utils needs cv2/moviepy/librosa; the network does not use it
        utils = types.ModuleType("utils")
    sys.modules.setdefault("utils", utils)
    spec = importlib.util.spec_from_file_location(name, checkout / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_authors_network(checkout: Path) -> dict[str, nn.Module]:
    """Their three modules with the released model's settings (their README's demo command)."""
    unet = import_authors_module(checkout, "models/cond_unet_attn.py", "authors_cond_unet_attn")
    synthesizer = import_authors_module(checkout, "models/synthesizer_net.py", "authors_synthesizer_net")
    return {
        "net_sound": unet.CondAttUNet(out_dim=32, cond_dim=768, num_downs=7, num_cond_blocks=1, num_res_layers=1,
                                      num_head=8, cond_layer="sca"),
        "net_synthesizer": synthesizer.InnerProd(fc_dim=32),
        "net_clap.fc": nn.Linear(512, 32),
    }


def randomize(modules: dict[str, nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """Fan-in scaled random weights and random BatchNorm statistics (their own init is near zero, which would
    make any two networks agree); returns the checkpoint-style state dict with the DDP prefix."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, module in modules.items():
        for key, value in module.state_dict().items():
            if key.endswith("num_batches_tracked"):
                new = value
            elif key.endswith("running_var"):
                new = 0.5 + torch.rand(value.shape, generator=generator)
            elif key.endswith("running_mean"):
                new = 0.1 * torch.randn(value.shape, generator=generator)
            elif value.dim() >= 2:
                new = torch.randn(value.shape, generator=generator) / math.sqrt(value[0].numel())
            else:
                new = (1.0 if key.endswith("weight") else 0.0) + 0.1 * torch.randn(value.shape, generator=generator)
            state[f"module.{prefix}.{key}"] = new
        module.load_state_dict({k[len(f"module.{prefix}."):]: v for k, v in state.items()
                                if k.startswith(f"module.{prefix}.")})
        module.eval()
    return state


@torch.no_grad()
def authors_masks(modules, magnitude: torch.Tensor, tokens: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Their demo.py's forward, one prompt per call: ``(F, T)`` magnitude -> ``(P, F, T)`` masks."""
    log_magnitude = torch.log1p(magnitude)[None, None]
    masks = []
    for prompt in range(tokens.shape[0]):
        condition = torch.sigmoid(modules["net_clap.fc"](embedding[prompt:prompt + 1]))
        sound = modules["net_sound"](log_magnitude, tokens[prompt:prompt + 1])
        masks.append(torch.sigmoid(modules["net_synthesizer"](condition, sound))[0, 0])
    return torch.stack(masks)


def compare_with_torchlibrosa(ours: TextQueriedSeparator, mixture: torch.Tensor) -> None:
    """Their demo's STFT (torchlibrosa, magnitude transposed to frequency x time) against bisep's."""
    try:
        from torchlibrosa.stft import ISTFT, STFT, magphase
    except ImportError:
        print("torchlibrosa is not installed: STFT not compared")
        return
    real, imag = STFT(n_fft=1022, hop_length=256, freeze_parameters=True)(mixture)
    theirs = magphase(real, imag)[0].transpose(-1, -2)[0, 0]
    mine = ours.stft(mixture).abs()[0]
    inverse = ISTFT(n_fft=1022, hop_length=256, freeze_parameters=True)(real, imag, mixture.shape[-1])
    mine_inverse = ours.istft(ours.stft(mixture), mixture.shape[-1])
    print(f"STFT magnitude max abs difference {(theirs - mine).abs().max().item():.3g} "
          f"(peak {theirs.max().item():.3g}); inverse STFT {(inverse - mine_inverse).abs().max().item():.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="your checkout of microsoft/BiModalAudioSeparation")
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--double", action="store_true", help="also compare in float64")
    args = parser.parse_args()
    modules = build_authors_network(args.checkout.resolve())
    checkpoint_state = randomize(modules, args.seed)
    separator_state, _, _ = split_authors_state({k[len("module."):]: v for k, v in checkpoint_state.items()})
    ours = TextQueriedSeparator(PAPER_SEPARATOR)
    ours.load_state_dict(separator_state, strict=True)
    ours.eval()

    generator = torch.Generator().manual_seed(args.seed + 1)
    mixture = 0.1 * torch.randn(1, SECONDS_SAMPLES, generator=generator)
    magnitude = ours.stft(mixture).abs()[0]
    tokens = torch.randn(args.prompts, CONTEXT, PAPER_SEPARATOR.token_dim, generator=generator)
    embedding = nn.functional.normalize(torch.randn(args.prompts, PAPER_SEPARATOR.embedding_dim,
                                                    generator=generator), dim=-1)
    text = TextFeatures(embedding, tokens, torch.ones(args.prompts, CONTEXT, dtype=torch.bool))
    print(f"authors' code: {args.checkout}; spectrogram {tuple(magnitude.shape)}, {args.prompts} prompts x "
          f"{CONTEXT} tokens; {len(separator_state)} tensors through bisep's key mapping")
    compare_with_torchlibrosa(ours, mixture)
    for dtype in (torch.float32, torch.float64) if args.double else (torch.float32,):
        for module in (*modules.values(), ours):
            module.to(dtype)
        theirs = authors_masks(modules, magnitude.to(dtype), tokens.to(dtype), embedding.to(dtype))
        typed_text = TextFeatures(text.embedding.to(dtype), text.tokens.to(dtype), text.mask)
        with torch.inference_mode():
            mine = ours.masks(magnitude[None].to(dtype), typed_text, args.prompts)[0]
        difference = (theirs - mine).abs().max().item()
        spread = theirs.std().item()
        print(f"{str(dtype):14s} masks max abs difference {difference:.3g} (mask std {spread:.3g}, "
              f"range {theirs.min().item():.3f}..{theirs.max().item():.3f})")


if __name__ == "__main__":
    main()
