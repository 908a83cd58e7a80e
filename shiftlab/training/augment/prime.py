"""PRIME (Modas et al. 2022, "PRIME: A Few Primitives Can Boost Robustness to Common Corruptions",
arXiv:2112.13547): maximum-entropy random spectral, spatial and colour transforms, mixed as in AugMix.

Our parameterisation (magnitudes chosen for 28–32 px images; the paper tunes them per dataset):
- spectral: convolve with ``δ + ω``, ω a random 5×5 filter with N(0, (0.5·level)²) taps;
- spatial: a random smooth diffeomorphism (Petrini et al. 2021) ``u = Σ_{i,j≤5} C_ij sin(iπx) sin(jπy)``,
  ``C_ij ~ N(0, T / (i² + j²))`` with temperature ``T = 8·level`` (pixels²);
- colour: ``x_c + Σ_{k≤5} β_ck sin(kπ x_c)``, ``β ~ N(0, (0.5·level)²)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from shiftlab.training.augment.augmix import augment_and_mix
from shiftlab.training.augment.ops import Op

_KERNEL = 5
_CUTOFF = 5
_COLOUR_TERMS = 5


def spectral(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random filter per image and channel (grouped convolution)."""
    n, c, h, w = x.shape
    taps = torch.randn((n * c, 1, _KERNEL, _KERNEL), generator=generator, device=generator.device).to(x.device)
    sigma = (0.5 * level).repeat_interleave(c).view(-1, 1, 1, 1).to(x.device)
    kernel = taps * sigma
    kernel[:, :, _KERNEL // 2, _KERNEL // 2] += 1.0
    out = F.conv2d(x.reshape(1, n * c, h, w), kernel.to(x.dtype), padding=_KERNEL // 2, groups=n * c)
    return out.view(n, c, h, w).clamp(0, 1)


def spatial(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random smooth displacement field, applied with bilinear sampling."""
    n, _, h, w = x.shape
    dev = generator.device
    k = torch.arange(1, _CUTOFF + 1, device=dev, dtype=torch.float32)
    var = (8.0 * level).view(-1, 1, 1) / (k.view(1, -1, 1) ** 2 + k.view(1, 1, -1) ** 2)
    coeff = torch.randn((2, n, _CUTOFF, _CUTOFF), generator=generator, device=dev) * var.sqrt()
    ys = torch.linspace(0, 1, h, device=dev)
    xs = torch.linspace(0, 1, w, device=dev)
    sin_y = torch.sin(math.pi * k.view(-1, 1) * ys)  # K×H
    sin_x = torch.sin(math.pi * k.view(-1, 1) * xs)  # K×W
    field = torch.einsum("dnij,ih,jw->dnhw", coeff, sin_y, sin_x)  # displacement in pixels
    base_y, base_x = torch.meshgrid(torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev),
                                    indexing="ij")
    grid = torch.stack([base_x + 2 * field[0] / w, base_y + 2 * field[1] / h], dim=-1)
    return F.grid_sample(x, grid.to(x.device, x.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def colour(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random smooth per-channel intensity curve."""
    n, c = x.shape[:2]
    beta = torch.randn((n, c, _COLOUR_TERMS), generator=generator, device=generator.device).to(x.device)
    beta = beta * (0.5 * level).view(-1, 1, 1).to(x.device)
    k = torch.arange(1, _COLOUR_TERMS + 1, device=x.device, dtype=x.dtype)
    waves = torch.sin(math.pi * k.view(1, 1, -1, 1, 1) * x.unsqueeze(2))  # N×C×K×H×W
    return (x + (beta.to(x.dtype).view(n, c, -1, 1, 1) * waves).sum(2)).clamp(0, 1)


PRIME_OPS: tuple[Op, ...] = (spectral, spatial, colour)


def prime(x: torch.Tensor, generator: torch.Generator, severity: float = 3.0, width: int = 3, depth: int = -1,
          alpha: float = 1.0) -> torch.Tensor:
    """PRIME: chains of spectral/spatial/colour primitives mixed as in AugMix. N×C×H×W in [0, 1] → same."""
    return augment_and_mix(x, PRIME_OPS, generator, severity, width, depth, alpha)
