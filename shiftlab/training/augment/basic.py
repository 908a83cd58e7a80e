"""Simple batched augmentations: flip + padded random crop, Gaussian noise with a random σ per
sample, and YOCO (Han et al. 2022, "You Only Cut Once: Boosting Data Augmentation with a Single
Cut", arXiv:2201.12078), which applies another augmentation to the two halves of each image
independently.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

BatchAugment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def flip_crop(x: torch.Tensor, generator: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random horizontal flip (p = 0.5) and a random crop of the zero-padded image, per sample."""
    n, _, h, w = x.shape
    dev = generator.device
    flip = (torch.rand(n, generator=generator, device=dev) < 0.5).view(-1, 1, 1, 1)
    x = torch.where(flip.to(x.device), x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * pad)
    cropped = padded.gather(2, rows)
    cols = (dx.view(-1, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
    return cropped.gather(3, cols)


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, sigma_max: float = 0.5) -> torch.Tensor:
    """``x + σ·N(0, 1)`` clipped to [0, 1], with ``σ ~ U(0, sigma_max)`` per sample."""
    dev = generator.device
    sigma = sigma_max * torch.rand((len(x), 1, 1, 1), generator=generator, device=dev)
    noise = torch.randn(x.shape, generator=generator, device=dev)
    return (x + (sigma * noise).to(x.device, x.dtype)).clamp(0, 1)


def yoco(x: torch.Tensor, generator: torch.Generator, inner: BatchAugment) -> torch.Tensor:
    """YOCO: cut the batch in two halves (vertically or horizontally, one draw per batch), augment
    each half with ``inner`` as a batch of its own, and put them back together.

    Deviation: the cut direction is drawn per batch, not per image, to keep it one batched call.
    """
    horizontal_cut = bool(torch.rand((), generator=generator, device=generator.device) < 0.5)
    dim = 2 if horizontal_cut else 3
    first, second = torch.tensor_split(x, 2, dim=dim)
    return torch.cat([inner(first.contiguous(), generator), inner(second.contiguous(), generator)], dim=dim)
