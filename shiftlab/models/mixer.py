"""mlp-mixer-tiny: an MLP-Mixer sized for 28–32 px images.

Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP Architecture for Vision", arXiv:2105.01601:
non-overlapping patches linearly embedded, then blocks that alternate a token-mixing MLP (across
patches, per channel) and a channel-mixing MLP (per patch), each pre-norm with a skip connection;
global average pooling and a linear head. Here: 4×4 patches, width 64, 6 blocks, token MLP width 64,
channel MLP width 128 (about 0.15 M parameters). The token MLP fixes the input size to the
configured ``image_size``.

Options (``--model-option``): ``patch`` (4), ``dim`` (64), ``depth`` (6), ``token_hidden`` (64),
``channel_hidden`` (128).
"""

from __future__ import annotations

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.models.base import MODELS, ModelConfig, ModelMeta
from shiftlab.models.vit import int_option


class Patches(nn.Module):
    """N×C×H×W -> N×(H·W/p²)×D by a stride-p convolution (no class token, no position embedding)."""

    def __init__(self, in_channels: int, image_size: tuple[int, int], patch: int, dim: int) -> None:
        super().__init__()
        h, w = image_size
        if h % patch or w % patch:
            raise UserError(f"mlp-mixer: image size {h}×{w} is not a multiple of the patch size {patch}")
        self.tokens = (h // patch) * (w // patch)
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def mlp(width: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class MixerBlock(nn.Module):
    """x + TokenMLP(LN(x)ᵀ)ᵀ, then x + ChannelMLP(LN(x))."""

    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = mlp(tokens, token_hidden)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = mlp(dim, channel_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MLPMixer(nn.Module):
    """Patch embedding and mixer blocks (``features``), a final LayerNorm, mean over patches, a linear
    ``classifier``."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int], patch: int = 4,
                 dim: int = 64, depth: int = 6, token_hidden: int = 64, channel_hidden: int = 128) -> None:
        super().__init__()
        embed = Patches(in_channels, image_size, patch, dim)
        self.features = nn.Sequential(embed, *(MixerBlock(embed.tokens, dim, token_hidden, channel_hidden)
                                               for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The mean over patches of the final LayerNorm output, N×dim."""
        return self.norm(self.features(x)).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@MODELS.register("mlp-mixer-tiny", meta=ModelMeta("MLP-Mixer, 4×4 patches, width 64, 6 blocks (~0.15 M parameters)",
                                                  "Tolstikhin et al. 2021, arXiv:2105.01601"))
def mlp_mixer_tiny(config: ModelConfig) -> nn.Module:
    return MLPMixer(config.in_channels, config.num_classes, config.image_size,
                    patch=int_option(config, "patch", 4), dim=int_option(config, "dim", 64),
                    depth=int_option(config, "depth", 6), token_hidden=int_option(config, "token_hidden", 64),
                    channel_hidden=int_option(config, "channel_hidden", 128))
