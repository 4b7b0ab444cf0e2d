"""Text-conditioning blocks placed in the U-Net's bottom levels.

Each block maps a feature map ``(B, C, H, W)`` and the text tokens ``(B, L, token_dim)`` (with an optional mask
``(B, L)``, True for real tokens) to a feature map of the same shape. Transformer blocks are pre-LayerNorm with
an MLP of ratio 2 and GELU, over the ``H * W`` time-frequency positions. Parameter names follow the authors'
released separator so their weights load without renaming (see ``docs/models.md``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def _tokens_first(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H * W, C)``."""
    return features.flatten(2).transpose(1, 2)


def _map_back(sequence: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return sequence.transpose(1, 2).reshape(like.shape)


class FeedForward(nn.Module):
    def __init__(self, width: int, ratio: float = 2.0):
        super().__init__()
        self.fc1 = nn.Linear(width, int(width * ratio))
        self.fc2 = nn.Linear(int(width * ratio), width)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return self.fc2(functional.gelu(self.fc1(sequence)))


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        batch, length, width = sequence.shape
        query, key, value = self.qkv(sequence).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = functional.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, width))


class CrossAttention(nn.Module):
    """Queries from time-frequency positions, keys and values from the text tokens."""

    def __init__(self, width: int, token_dim: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(token_dim, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, sequence: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = sequence.shape
        query = self.q(sequence).view(batch, length, self.heads, -1).transpose(1, 2)
        key, value = self.kv(tokens).view(batch, tokens.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention_mask = None if mask is None else mask[:, None, None, :]
        attended = functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, width))


class SelfAttentionBlock(nn.Module):
    def __init__(self, width: int, token_dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = FeedForward(width)

    def forward(self, features, tokens=None, mask=None):
        sequence = _tokens_first(features)
        sequence = sequence + self.attn(self.norm1(sequence))
        sequence = sequence + self.mlp(self.norm2(sequence))
        return _map_back(sequence, features)


class CrossAttentionBlock(nn.Module):
    def __init__(self, width: int, token_dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = CrossAttention(width, token_dim, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = FeedForward(width)

    def forward(self, features, tokens, mask=None):
        sequence = _tokens_first(features)
        sequence = sequence + self.attn(self.norm1(sequence), tokens, mask)
        sequence = sequence + self.mlp(self.norm2(sequence))
        return _map_back(sequence, features)


class ConcatenationBlock(nn.Module):
    """The pooled text vector, projected and broadcast over positions, concatenated and fused by a conv,
    with a residual connection."""

    def __init__(self, width: int, token_dim: int, heads: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.lin = nn.Linear(token_dim, width)
        self.conv2 = nn.Conv2d(2 * width, width, 3, padding=1)

    def forward(self, features, tokens, mask=None):
        if mask is None:
            pooled = tokens.mean(1)
        else:
            pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        text = self.lin(pooled)[:, :, None, None].expand(-1, -1, *features.shape[2:])
        return features + self.conv2(torch.cat([self.conv1(features), text], dim=1))


class SelfCrossAttentionBlock(nn.Module):
    """Self-attention over positions, then cross-attention to the text (the paper's ``sca``).

    ``norm1`` is never applied (and takes no gradient, so DistributedDataParallel does not wait for one); it
    exists because the authors' released weights hold it.
    """

    def __init__(self, width: int, token_dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width).requires_grad_(False)
        self.sa_block = SelfAttentionBlock(width, token_dim, heads)
        self.ca_block = CrossAttentionBlock(width, token_dim, heads)

    def forward(self, features, tokens, mask=None):
        return self.ca_block(self.sa_block(features), tokens, mask)


class SelfConcatCrossBlock(SelfCrossAttentionBlock):
    """``sca_cat``: self-attention, concatenation of the pooled text, then cross-attention."""

    def __init__(self, width: int, token_dim: int, heads: int):
        super().__init__(width, token_dim, heads)
        self.cat_block = ConcatenationBlock(width, token_dim)

    def forward(self, features, tokens, mask=None):
        return self.ca_block(self.cat_block(self.sa_block(features), tokens, mask), tokens, mask)


class IdentityBlock(nn.Module):
    """No conditioning in the U-Net (the text then acts only through the mask synthesizer)."""

    def __init__(self, width: int = 0, token_dim: int = 0, heads: int | None = None):
        super().__init__()

    def forward(self, features, tokens=None, mask=None):
        return features


CONDITIONING_BLOCKS = {
    "ca": CrossAttentionBlock,
    "sa": SelfAttentionBlock,
    "sca": SelfCrossAttentionBlock,
    "cat": ConcatenationBlock,
    "sca_cat": SelfConcatCrossBlock,
    "identity": IdentityBlock,
}
