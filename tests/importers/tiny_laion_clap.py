"""A tiny LAION-CLAP (HTSAT + RoBERTa layout) with seeded random weights, shared by the conversion tests and
``benchmarks/laion_clap_equivalence.py``, which builds LAION's own model at this size and stores its embeddings
in ``data/laion_clap_tiny.json`` (key list, shapes, inputs, embeddings).

Weights come from a fixed recipe over the stored key list, so the same tensors are made on any machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from bisep.grounding.clap_features import ClapLogMel, slaney_mel_filters

REFERENCE = Path(__file__).parent / "data" / "laion_clap_tiny.json"
# The tiny source model's sizes (LAION's own class names and arguments).
TINY = dict(
    htsat=dict(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=8),
    roberta=dict(vocab_size=300, hidden_size=768, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=80, layer_norm_eps=1e-5),
    joint=32,
)
TEXT_HEADS = TINY["roberta"]["num_attention_heads"]
# RoBERTa states compared: these positions (real tokens and padding) and the first channels.
HIDDEN_POSITIONS = [0, 3, 10, 76]
HIDDEN_WIDTH = 16


def swin_relative_position_index(window: int) -> torch.Tensor:
    """The index every Swin attention block builds for a ``window`` x ``window`` window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def random_laion_state(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights for the key list: fan-in scaled matrices, small biases, norms near 1, valid buffers and the
    real mel filter bank (the converter checks it)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        size = tuple(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("relative_position_index"):
            state[key] = swin_relative_position_index(math.isqrt(size[0]))
        elif key.endswith("melW"):
            state[key] = slaney_mel_filters(1024, size[1], 50.0, 14000.0, 48000).float()
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(size, generator=generator)
        elif key.startswith("logit_scale"):
            state[key] = torch.tensor(math.log(1 / 0.07)) + 0.1 * torch.randn(size, generator=generator)
        elif len(size) == 1 and ("norm" in key.lower()) and key.endswith("weight"):
            state[key] = 1.0 + 0.1 * torch.randn(size, generator=generator)
        elif len(size) >= 2:
            fan_in = math.prod(size[1:])
            state[key] = torch.randn(size, generator=generator) / math.sqrt(fan_in)
        else:
            state[key] = 0.1 * torch.randn(size, generator=generator)
    return state


def reference_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two 10 s clips at 48 kHz ``(2, 480000)`` and two prompts as RoBERTa ids padded to 77 with their masks."""
    generator = torch.Generator().manual_seed(1)
    time = torch.arange(480000) / 48000
    clips = torch.stack([0.3 * torch.sin(2 * math.pi * 440 * time), 0.2 * torch.sin(2 * math.pi * 3000 * time)])
    clips = clips + 0.05 * torch.randn(clips.shape, generator=generator)
    ids = torch.ones(2, 77, dtype=torch.long)
    mask = torch.zeros(2, 77, dtype=torch.long)
    for row, tokens in enumerate(([0, 17, 250, 42, 9, 2], [0, 88, 120, 2])):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    return clips, ids, mask


def load_reference() -> dict:
    return json.loads(REFERENCE.read_text())


@torch.no_grad()
def converted_outputs(model, clips, ids, mask) -> dict:
    """The converted ClapModel as bisep's ClapGrounding runs it (bisep's front end for audio)."""
    features = ClapLogMel()(clips)
    is_longer = torch.zeros(clips.shape[0], 1, dtype=torch.bool)
    audio = model.audio_projection(model.audio_model(input_features=features, is_longer=is_longer).pooler_output)
    text_output = model.text_model(input_ids=ids, attention_mask=mask)
    text = model.text_projection(text_output.pooler_output)
    return {"audio": torch.nn.functional.normalize(audio, dim=-1), "text": torch.nn.functional.normalize(text, dim=-1),
            "hidden": text_output.last_hidden_state[:, HIDDEN_POSITIONS, :HIDDEN_WIDTH],
            "logit_scale_a": model.logit_scale_a.exp(), "logit_scale_t": model.logit_scale_t.exp()}
