"""The conditional U-Net of the method, evaluated level by level so prompt-independent work is shared.

Levels are nested modules (``unet_block.submodule.submodule...``) because that is the layout of the authors'
released weights; the forward pass walks them as a list. Level ``i`` (0 = outermost) has inner width
``base_channels * min(2**i, 8)``. Down: stride-2 4x4 conv, BatchNorm, LeakyReLU(0.2), residual block, and in
the last ``conditioned_levels`` levels the text-conditioning blocks. Up: bilinear x2, residual block, 3x3 conv,
BatchNorm, ReLU (the outermost level ends at its conv), then concatenation with the level's input (skip).
With ``decoder_film`` (not in the method; the CPU presets' addition) every inner level's up output is also
scaled and shifted per channel by the prompt's joint text embedding (FiLM, as AudioSep conditions on CLAP's
text embedding), so the prompt reaches the decoder at every resolution rather than only through the
bottleneck, by the grounding model's class-aware embedding rather than raw token features.

Everything above the first conditioned level depends only on the mixture, so :meth:`ConditionalUNet.forward`
runs it once per mixture. On the way up, those levels' skips are prompt-independent too: an up level's first
convolution is split by input channels, and the skip's share of it (with the skip's upsampling) is computed once
per mixture, the decoded features' share once per prompt. The sum is the same convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from bisep.separator.conditioning import CONDITIONING_BLOCKS


class ResidualBlock(nn.Module):
    """``layers`` x (3x3 conv, BatchNorm, LeakyReLU except after the last), added to the input, LeakyReLU."""

    def __init__(self, channels: int, layers: int):
        super().__init__()
        stages = []
        for index in range(layers):
            stage = [nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)]
            if index < layers - 1:
                stage.append(nn.LeakyReLU(0.2, inplace=True))
            stages.append(nn.Sequential(*stage))
        self.res_layers = nn.Sequential(*stages) if layers else nn.Identity()
        self.layers = layers

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.layers:
            return features
        return nn.functional.leaky_relu(features + self.res_layers(features), 0.2)

    def leading_channels_response(self, shared: torch.Tensor) -> torch.Tensor | None:
        """The first convolution's response to the leading ``shared.shape[1]`` input channels, bias included."""
        if not self.layers:
            return None
        conv = self.res_layers[0][0]
        return nn.functional.conv2d(shared, conv.weight[:, : shared.shape[1]], conv.bias, padding=conv.padding)

    def forward_split(self, shared: torch.Tensor, shared_response: torch.Tensor | None, rest: torch.Tensor,
                      repeats: int) -> torch.Tensor:
        """``forward(cat([shared, rest]))`` when ``shared`` ``(B, Cs, H, W)`` (with its
        :meth:`leading_channels_response`) is the same for ``repeats`` consecutive items of ``rest``
        ``(B * repeats, C - Cs, H, W)``. Sums are taken in place, so the concatenated input is never built."""
        if not self.layers:
            return torch.cat([shared.repeat_interleave(repeats, dim=0), rest], dim=1)
        channels = shared.shape[1]
        first_stage = self.res_layers[0]
        response = nn.functional.conv2d(rest, first_stage[0].weight[:, channels:], None,
                                        padding=first_stage[0].padding)
        response.unflatten(0, (-1, repeats)).add_(shared_response[:, None])
        residual = self.res_layers[1:](first_stage[1:](response))
        residual[:, :channels].unflatten(0, (-1, repeats)).add_(shared[:, None])
        residual[:, channels:].add_(rest)
        return nn.functional.leaky_relu_(residual, 0.2)


class UNetLevel(nn.Module):
    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, up_channels: int,
                 outermost: bool, res_layers: int, conditioning: str | None, condition_blocks: int,
                 token_dim: int, heads: int, decoder_film: bool = False, embedding_dim: int = 0):
        super().__init__()
        self.outermost = outermost
        self.downconv = nn.Conv2d(in_channels, inner_channels, 4, stride=2, padding=1, bias=False)
        self.downnorm = nn.BatchNorm2d(inner_channels)
        self.downresblock = ResidualBlock(inner_channels, res_layers)
        self.conditioned = conditioning is not None
        if self.conditioned:
            block = CONDITIONING_BLOCKS[conditioning]
            self.ca_blocks = nn.ModuleList(block(inner_channels, token_dim, heads) for _ in range(condition_blocks))
        self.upresblock = ResidualBlock(up_channels, res_layers)
        self.upconv = nn.Conv2d(up_channels, out_channels, 3, padding=1, bias=outermost)
        if not outermost:
            self.upnorm = nn.BatchNorm2d(out_channels)
        self.film = None
        if decoder_film and not outermost:
            self.film = nn.Linear(embedding_dim, 2 * out_channels)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.submodule: UNetLevel | None = None

    def down(self, features: torch.Tensor, tokens=None, mask=None) -> torch.Tensor:
        features = nn.functional.leaky_relu(self.downnorm(self.downconv(features)), 0.2)
        features = self.downresblock(features)
        if self.conditioned:
            for block in self.ca_blocks:
                features = block(features, tokens, mask)
        return features

    def up(self, features: torch.Tensor, text_embedding: torch.Tensor | None = None) -> torch.Tensor:
        return self._finish_up(self.upresblock(_upsample(features)), text_embedding)

    def shared_skip(self, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prompt-independent part of :meth:`up_after_skip` for one mixture's skip ``(B, Cs, H, W)``."""
        upsampled = _upsample(skip)
        return upsampled, self.upresblock.leading_channels_response(upsampled)

    def up_after_skip(self, shared_skip: tuple[torch.Tensor, torch.Tensor | None], features: torch.Tensor,
                      repeats: int, text_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """``up(cat([skip, features]))`` with the skip's share precomputed by :meth:`shared_skip`."""
        upsampled, response = shared_skip
        return self._finish_up(self.upresblock.forward_split(upsampled, response, _upsample(features), repeats),
                               text_embedding)

    def _finish_up(self, features: torch.Tensor, text_embedding: torch.Tensor | None) -> torch.Tensor:
        features = self.upconv(features)
        if self.outermost:
            return features
        features = nn.functional.relu(self.upnorm(features))
        if self.film is not None:
            scale, shift = self.film(text_embedding)[:, :, None, None].chunk(2, dim=1)
            features = features * (1 + scale) + shift
        return features


def _upsample(features: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(features, scale_factor=2, mode="bilinear", align_corners=True)


class ConditionalUNet(nn.Module):
    """Log-magnitude ``(B, 1, F, T)`` + text tokens -> sound features ``(B * P, out_channels, F, T)``.

    ``F`` and ``T`` must be multiples of ``2 ** num_downs`` (the separator pads them).
    """

    def __init__(self, num_downs: int = 7, base_channels: int = 64, out_channels: int = 32,
                 conditioning: str = "sca", conditioned_levels: int | None = None, condition_blocks: int = 1,
                 res_layers: int = 1, heads: int = 8, token_dim: int = 768, in_channels: int = 1,
                 decoder_film: bool = False, embedding_dim: int = 0):
        super().__init__()
        if conditioning not in CONDITIONING_BLOCKS:
            raise ValueError(f"unknown conditioning '{conditioning}' (known: {', '.join(CONDITIONING_BLOCKS)})")
        conditioned_levels = max(1, num_downs - 4) if conditioned_levels is None else conditioned_levels
        if not 1 <= conditioned_levels <= num_downs - 1:
            raise ValueError(f"conditioned_levels must be 1..{num_downs - 1}, got {conditioned_levels}")
        self.num_downs = num_downs
        # identity blocks use no text, so with them the whole encoder is shared by a mixture's prompts
        self.first_conditioned = num_downs if conditioning == "identity" else num_downs - conditioned_levels
        widths = [base_channels * min(2**i, 8) for i in range(num_downs)]
        levels = []
        for i in range(num_downs):
            innermost = i == num_downs - 1
            levels.append(UNetLevel(
                in_channels=in_channels if i == 0 else widths[i - 1],
                inner_channels=widths[i],
                out_channels=out_channels if i == 0 else widths[i - 1],
                up_channels=widths[i] if innermost else 2 * widths[i],
                outermost=i == 0,
                res_layers=res_layers,
                conditioning=conditioning if i >= self.first_conditioned else None,
                condition_blocks=condition_blocks,
                token_dim=token_dim,
                heads=heads,
                decoder_film=decoder_film,
                embedding_dim=embedding_dim,
            ))
        for outer, inner in zip(levels, levels[1:]):
            outer.submodule = inner
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.unet_block = levels[0]

    def levels(self) -> list[UNetLevel]:
        result, level = [], self.unet_block
        while level is not None:
            result.append(level)
            level = level.submodule
        return result

    def encode(self, log_magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The prompt-independent part: ``bn0`` and the down path above the first conditioned level."""
        features, skips = self.bn0(log_magnitude), []
        for level in self.levels()[: self.first_conditioned]:
            skips.append(features)
            features = level.down(features)
        return features, skips

    def decode(self, features: torch.Tensor, skips: list[torch.Tensor], tokens: torch.Tensor,
               mask: torch.Tensor | None, prompts_per_mixture: int,
               text_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The prompt-dependent part, for ``B * P`` prompts (mixture-major) on the ``B`` encoded mixtures
        (``text_embedding`` ``(B * P, embedding_dim)`` is needed with ``decoder_film``).

        Level ``i``'s up path starts from ``cat([skip of level i + 1, features from below])``; the skips of the
        levels up to the first conditioned one are prompt-independent (``skips`` and the encoder's output), and
        with several prompts their share of the up path is computed once per mixture."""
        levels = self.levels()
        shared_skips = [*skips[1:], features]
        features = features.repeat_interleave(prompts_per_mixture, dim=0)
        inner_skips = []
        for level in levels[self.first_conditioned:]:
            inner_skips.append(features)
            features = level.down(features, tokens, mask)
        features = levels[-1].up(features, text_embedding)
        for index in range(len(levels) - 2, -1, -1):
            if index < self.first_conditioned and prompts_per_mixture > 1:
                shared = levels[index].shared_skip(shared_skips[index])
                features = levels[index].up_after_skip(shared, features, prompts_per_mixture, text_embedding)
            else:
                skip = (shared_skips[index] if index < self.first_conditioned
                        else inner_skips[index + 1 - self.first_conditioned])
                features = levels[index].up(torch.cat([skip, features], 1), text_embedding)
        return features

    def forward(self, log_magnitude: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                prompts_per_mixture: int = 1, text_embedding: torch.Tensor | None = None) -> torch.Tensor:
        features, skips = self.encode(log_magnitude)
        return self.decode(features, skips, tokens, mask, prompts_per_mixture, text_embedding)

