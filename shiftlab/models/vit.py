"""vit-tiny: a Vision Transformer sized for 28–32 px images.

Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", arXiv:2010.11929: non-overlapping patches linearly embedded, a class token and learned
position embeddings, pre-norm transformer blocks (multi-head self-attention and a GELU MLP), the
class token's final LayerNorm output as the features. Here: 4×4 patches (49 tokens at 28 px, 64 at
32 px), width 64, 6 blocks of 4 heads, MLP ratio 2 (about 0.2 M parameters), so it trains in minutes
on a CPU. The position embeddings fix the input size to the configured ``image_size``.

Options (``--model-option``): ``patch`` (4), ``dim`` (64), ``depth`` (6), ``heads`` (4), ``mlp_ratio`` (2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.models.base import MODELS, ModelConfig, ModelMeta


class PatchEmbedding(nn.Module):
    """N×C×H×W -> N×(1 + H·W/p²)×D: patches projected by a stride-p convolution, a class token
    prepended, position embeddings added."""

    def __init__(self, in_channels: int, image_size: tuple[int, int], patch: int, dim: int) -> None:
        super().__init__()
        h, w = image_size
        if h % patch or w % patch:
            raise UserError(f"vision transformer/mixer: image size {h}×{w} is not a multiple of the patch size {patch}")
        self.grid = (h // patch, w // patch)
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos


class Attention(nn.Module):
    """Multi-head self-attention (scaled dot product)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise UserError(f"vit: width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patch embedding and transformer blocks (``features``, the stage list manifold mixup hooks),
    a final LayerNorm, the class token as features and a linear ``classifier``."""

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int], patch: int = 4,
                 dim: int = 64, depth: int = 6, heads: int = 4, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(PatchEmbedding(in_channels, image_size, patch, dim),
                                      *(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The class token after the final LayerNorm, N×dim."""
        return self.norm(self.features(x)[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def int_option(config: ModelConfig, name: str, default: int) -> int:
    """An integer architecture option (``--model-option name=value``); a bad value is a user error."""
    raw = config.options.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UserError(f"model option {name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise UserError(f"model option {name} must be positive, got {value}")
    return value


@MODELS.register("vit-tiny", meta=ModelMeta("Vision Transformer, 4×4 patches, width 64, 6 blocks (~0.2 M parameters)",
                                            "Dosovitskiy et al. 2021, arXiv:2010.11929"))
def vit_tiny(config: ModelConfig) -> nn.Module:
    return VisionTransformer(config.in_channels, config.num_classes, config.image_size,
                             patch=int_option(config, "patch", 4), dim=int_option(config, "dim", 64),
                             depth=int_option(config, "depth", 6), heads=int_option(config, "heads", 4),
                             mlp_ratio=int_option(config, "mlp_ratio", 2))
