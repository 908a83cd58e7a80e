"""Batched image operations on [0, 1] tensors with per-sample magnitudes (for AugMix, PixMix, PRIME).

Each op is ``op(x, level, generator) -> x'`` with ``level`` an N-vector in [0, 1] (fraction of the
op's largest magnitude) and keeps shape and range. The AugMix set (Hendrycks et al. 2020,
arXiv:1912.02781) leaves out contrast, colour, brightness and sharpness, which overlap with
the ImageNet-C corruptions; magnitudes follow the AugMix reference (rotate ≤ 30°, shear ≤ 0.3,
translate ≤ 1/3 of the side, posterize to 4..0 bits, solarize threshold ≥ 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Op = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def random_sign(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=generator, device=generator.device).float() * 2 - 1


def affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp each image by its 2×3 affine matrix (normalised coordinates), zeros outside, bilinear."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _matrix(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(2, 3, device=device).unsqueeze(0).repeat(n, 1, 1)


def autocontrast(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Stretch each channel of each image to the full [0, 1] range (constant channels unchanged)."""
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    scale = torch.where(hi > lo, 1.0 / (hi - lo).clamp_min(1e-12), torch.ones_like(hi))
    lo = torch.where(hi > lo, lo, torch.zeros_like(lo))
    return ((x - lo) * scale).clamp(0, 1)


def equalize(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Histogram equalisation per channel on 256 levels, with PIL's look-up-table rule."""
    n, c, h, w = x.shape
    q = (x * 255).round().long().clamp(0, 255).view(n * c, h * w)
    hist = torch.zeros(n * c, 256, device=x.device).scatter_add_(1, q, torch.ones_like(q, dtype=torch.float32))
    last_nonzero = 255 - torch.argmax((hist.flip(1) > 0).int(), dim=1)
    last = hist.gather(1, last_nonzero.unsqueeze(1))
    step = torch.div(h * w - last, 255, rounding_mode="floor")
    before = hist.cumsum(1) - hist
    lut = torch.div(before + torch.div(step, 2, rounding_mode="floor"), step.clamp_min(1), rounding_mode="floor")
    lut = torch.where(step > 0, lut.clamp(max=255), torch.arange(256, device=x.device, dtype=lut.dtype).expand_as(lut))
    return (lut.gather(1, q) / 255.0).view(n, c, h, w).to(x.dtype)


def posterize(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Keep the top ``4 - int(4·level)`` bits of each 8-bit value."""
    bits = 4 - (level * 4).long()
    div = (2 ** (8 - bits)).view(-1, 1, 1, 1).to(x.dtype)
    q = (x * 255).round()
    return (torch.floor(q / div) * div / 255.0).clamp(0, 1)


def solarize(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Invert values at or above the threshold ``1 - level``."""
    threshold = (256 - (level * 256).long()).view(-1, 1, 1, 1).to(x.dtype) / 255.0
    return torch.where(x >= threshold, 1.0 - x, x)


def rotate(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate by ±``int(30·level)`` degrees."""
    angle = (level * 30).floor() * random_sign(len(x), generator) * math.pi / 180
    theta = _matrix(len(x), x.device)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return affine(x, theta)


def _shear(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator, axis: int) -> torch.Tensor:
    theta = _matrix(len(x), x.device)
    theta[:, axis, 1 - axis] = level * 0.3 * random_sign(len(x), generator)
    return affine(x, theta)


def shear_x(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal shear by ±0.3·level."""
    return _shear(x, level, generator, 0)


def shear_y(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Vertical shear by ±0.3·level."""
    return _shear(x, level, generator, 1)


def _translate(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator, axis: int) -> torch.Tensor:
    size = x.shape[3 - axis]
    pixels = (level * size / 3).floor() * random_sign(len(x), generator)
    theta = _matrix(len(x), x.device)
    theta[:, axis, 2] = 2 * pixels / size
    return affine(x, theta)


def translate_x(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift horizontally by ±``int(level·W/3)`` pixels."""
    return _translate(x, level, generator, 0)


def translate_y(x: torch.Tensor, level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift vertically by ±``int(level·H/3)`` pixels."""
    return _translate(x, level, generator, 1)


AUGMIX_OPS: tuple[Op, ...] = (
    autocontrast, equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x, translate_y,
)


def apply_random_ops(x: torch.Tensor, ops: tuple[Op, ...], severity: float, active: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """One stage: every active sample gets one op drawn uniformly from ``ops`` at a level drawn from
    U(0.1, severity)/10 (AugMix's rule). The loop runs over op kinds, never over images."""
    n = len(x)
    choice = torch.randint(0, len(ops), (n,), generator=generator, device=generator.device)
    level = (0.1 + (severity - 0.1) * torch.rand(n, generator=generator, device=generator.device)) / 10
    out = x.clone()
    for k, op in enumerate(ops):
        sel = ((choice == k) & active).nonzero().squeeze(1)
        if sel.numel():
            out[sel] = op(x[sel], level[sel], generator).to(x.dtype)
    return out
