"""The tiny random-weight separator registered as ``unittest`` (see :mod:`bisep.pretrained`): seeded, so tests
drive the whole CLI in seconds through the same loading code as a shipped model."""

from __future__ import annotations

from pathlib import Path

import torch

from bisep.grounding.builtin import BuiltinGrounding, BuiltinGroundingConfig
from bisep.model_folder import write_model_folder
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator


def write_unittest_separator(folder: Path) -> Path:
    """A tiny separator with seeded random weights and a tiny random grounding model in its ``grounding``
    sub-folder; the global torch RNG is left as it was."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    grounding = BuiltinGrounding(BuiltinGroundingConfig(embedding_dim=16, channels=[4, 4, 4, 4]))
    config = SeparatorConfig(n_fft=254, hop_length=64, num_downs=4, base_channels=4, out_channels=4, heads=1,
                             token_dim=grounding.token_dim, embedding_dim=16)
    model = TextQueriedSeparator(config)
    torch.set_rng_state(generator_state)
    return write_model_folder(folder, model, config, {"grounding_folder": "grounding"},
                              extra=lambda staging: grounding.save(staging / "grounding"))
