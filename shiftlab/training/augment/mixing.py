"""Label-mixing augmentations: mixup (Zhang et al. 2018, arXiv:1710.09412) and CutMix
(Yun et al. 2019, arXiv:1905.04899).

Both pair each image with another of the batch (a seeded permutation) and return a
``MixedBatch``; the loss is ``lam·CE(y_a) + (1 - lam)·CE(y_b)`` (``losses.mixed_cross_entropy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.sampling import sample_beta


@dataclass
class MixedBatch:
    """Mixed images and the two label sets with per-sample weight ``lam`` (N) on ``y_a``."""

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: torch.Tensor
    permutation: torch.Tensor


def pair_permutation(n: int, generator: torch.Generator) -> torch.Tensor:
    """The partner of each sample: a seeded permutation of 0..n-1."""
    return torch.randperm(n, generator=generator, device=generator.device)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator) -> MixedBatch:
    """mixup: ``lam·x + (1 - lam)·x[perm]`` with one ``lam ~ Beta(alpha, alpha)`` per batch, as in the paper.

    Shape: x N×C×H×W in [0, 1] → same; y N int64.
    """
    perm = pair_permutation(len(x), generator)
    lam = sample_beta((1,), alpha, alpha, generator).expand(len(x)).to(x.dtype)
    mixed = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[perm]
    return MixedBatch(mixed, y, y[perm], lam.clone(), perm)


def cutmix_boxes(n: int, height: int, width: int, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """Per-sample boxes (N×4: top, bottom, left, right) of area ``(1 - lam)·H·W``, ``lam ~ Beta(alpha, alpha)``,
    centred uniformly and clipped to the image (so the realised area can be smaller)."""
    lam = sample_beta((n,), alpha, alpha, generator)
    ratio = torch.sqrt(1.0 - lam)
    cut_h, cut_w = (height * ratio).long(), (width * ratio).long()
    cy = torch.randint(0, height, (n,), generator=generator, device=generator.device)
    cx = torch.randint(0, width, (n,), generator=generator, device=generator.device)
    top, bottom = (cy - cut_h // 2).clamp(0, height), (cy + cut_h // 2).clamp(0, height)
    left, right = (cx - cut_w // 2).clamp(0, width), (cx + cut_w // 2).clamp(0, width)
    return torch.stack([top, bottom, left, right], 1)


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """N×1×H×W masks, 1 inside each sample's box."""
    rows = torch.arange(height, device=boxes.device).view(1, -1, 1)
    cols = torch.arange(width, device=boxes.device).view(1, 1, -1)
    top, bottom, left, right = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return ((rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)).unsqueeze(1)


def cutmix(x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator) -> MixedBatch:
    """CutMix: paste a box of the partner image; ``lam`` = 1 − (box area / image area), per sample.

    Deviation: one box per sample (vectorised) instead of one per batch.
    """
    n, _, h, w = x.shape
    perm = pair_permutation(n, generator)
    mask = box_masks(cutmix_boxes(n, h, w, alpha, generator), h, w)
    mixed = torch.where(mask, x[perm], x)
    lam = 1.0 - mask.flatten(1).float().mean(1)
    return MixedBatch(mixed, y, y[perm], lam.to(x.dtype), perm)
