"""Perturbation sequences for prediction stability: Hendrycks & Dietterich 2019, "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations" (arXiv:1903.12261), ImageNet-P / CIFAR-10-P.

A sequence turns one image into frames x_0 … x_{n−1}; the stability suite counts how often the
prediction flips. Noise sequences (``noise=True``) are i.i.d. noisy copies compared with the clean
frame x_0; the others change a parameter step by step and are compared frame to consecutive frame.
The schedules are those of the CIFAR-10-P generator (github.com/hendrycks/robustness,
``ImageNet-P/create_p/make_cifar_p.py``, difficulty 1), with pixel quantities scaled from 32 px to
the image size:

- gaussian_noise: x + N(0, 0.02²), 30 noisy frames after the clean one;
- shot_noise: Poisson(700·x)/700, 30 frames after the clean one;
- speckle_noise: x + x·N(0, 0.05²), 30 frames after the clean one;
- gaussian_blur: σ = 0.3 + 0.015·k, k = 0..30 (σ in pixels at 32 px; truncated at 7σ, edge padding);
- brightness: V + (k − 15)·0.015 in HSV (hue and saturation kept), k = 0..30;
- translate: a whole-pixel shift dx = k − m, k = 0..2m+1, m = round(7·W/32) (at least 4: 10 frames);
- rotate: (k − 15)°, k = 0..30; scale: zoom (70 + 2k)/100 about the centre, k = 0..30;
- shear: an x-shear of (k − 15)°, k = 0..30 (geometric frames: bilinear, black fill).

ImageNet-P's tilt, motion blur, zoom blur, snow and spatter sequences are not included. Every frame
is a pure function of (x, k, generator): the caller seeds one generator per frame.

Example:
    >>> import torch
    >>> from shiftlab.shifts.sequences import SEQUENCES
    >>> seq = SEQUENCES.get("rotate")
    >>> seq.count(28, 28), seq.noise
    (31, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shiftlab.core.registry import Registry
from shiftlab.shifts.spatial import affine_params, apply_affine

FrameFn = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class PerturbationSequence:
    """A perturbation sequence: ``count(H, W)`` frames, frame k = ``frame(x, k, generator)`` in [0, 1].

    Args:
        name: registry name.
        noise: frames are i.i.d. draws, each compared with the clean frame 0 (not with the previous one).
        count: the number of frames for an image size.
        frame: the k-th frame of every image of a batch (N×C×H×W in, the same out).
    """

    name: str
    noise: bool
    count: Callable[[int, int], int]
    frame: FrameFn

    def frames(self, x: torch.Tensor, generators: list[torch.Generator]) -> list[torch.Tensor]:
        """Every frame of the images ``x``, frame k drawn from ``generators[k]``."""
        return [self.frame(x, k, g).clamp(0.0, 1.0).to(x.dtype) for k, g in enumerate(generators)]


@dataclass(frozen=True, slots=True)
class SequenceMeta:
    """Registry metadata of a perturbation sequence."""

    description: str
    paper: str = "Hendrycks & Dietterich 2019"
    arxiv: str = "1903.12261"


SEQUENCES: Registry[PerturbationSequence, SequenceMeta] = Registry("perturbation sequence")
FRAMES = 31
"""Frames of the CIFAR-10-P sequences (the clean image and 30 perturbed ones, or 31 steps)."""


def thirty_one(height: int, width: int) -> int:
    return FRAMES


def gaussian_noise_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    if k == 0:
        return x
    return x + 0.02 * torch.randn(x.shape, generator=g, device=g.device, dtype=torch.float32).to(x.device, x.dtype)


def shot_noise_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    if k == 0:
        return x
    return torch.poisson((x * 700.0).to(g.device), generator=g).to(x.device, x.dtype) / 700.0


def speckle_noise_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    if k == 0:
        return x
    noise = torch.randn(x.shape, generator=g, device=g.device, dtype=torch.float32).to(x.device, x.dtype)
    return x + x * (0.05 * noise)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 7.0) -> torch.Tensor:
    """Separable Gaussian blur with edge padding, kernel radius int(truncate·σ + 0.5) (scipy.ndimage's)."""
    radius = int(truncate * sigma + 0.5)
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-t.square() / (2.0 * sigma * sigma))
    kernel = (kernel / kernel.sum()).to(device=x.device, dtype=x.dtype)
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernel.view(1, 1, -1, 1))
    y = F.conv2d(y, kernel.view(1, 1, 1, -1))
    return y.reshape(n, c, h, w)


def gaussian_blur_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    sigma = (0.3 + 0.015 * k) * max(x.shape[2], x.shape[3]) / 32.0
    return gaussian_blur(x, sigma)


def brightness_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """V ← clip(V + c) in HSV with hue and saturation kept: every channel scales by V'/V (V = max channel);
    a black pixel (V = 0, no hue) becomes grey V'. On one channel this is clip(x + c)."""
    c = (k - 15) * 0.015
    if x.shape[1] == 1:
        return x + c
    value = x.amax(1, keepdim=True)
    target = (value + c).clamp(0.0, 1.0)
    ratio = torch.where(value > 0, target / value.clamp_min(1e-12), torch.zeros_like(value))
    return torch.where(value > 0, x * ratio, target.expand_as(x))


def translate_steps(height: int, width: int) -> int:
    """m of the translate sequence: round(7·W/32), at least 4 (so 2m + 2 ≥ 10 frames)."""
    return max(4, round(7 * width / 32))


def translate_count(height: int, width: int) -> int:
    return 2 * translate_steps(height, width) + 2


def per_image(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((len(x),), float(value), dtype=torch.float64, device=x.device)


def translate_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    dx = k - translate_steps(x.shape[2], x.shape[3])
    return apply_affine(x, affine_params(dx=per_image(x, dx)))


def rotate_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    return apply_affine(x, affine_params(degrees=per_image(x, k - 15)))


def scale_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    return apply_affine(x, affine_params(scale=per_image(x, (70 + 2 * k) / 100.0)))


def shear_frame(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    return apply_affine(x, affine_params(shear=per_image(x, k - 15)))


for _name, _noise, _count, _frame, _what in (
    ("gaussian_noise", True, thirty_one, gaussian_noise_frame, "30 i.i.d. Gaussian-noise frames (sigma 0.02)"),
    ("shot_noise", True, thirty_one, shot_noise_frame, "30 i.i.d. Poisson-noise frames (rate 700)"),
    ("speckle_noise", True, thirty_one, speckle_noise_frame, "30 i.i.d. speckle-noise frames (sigma 0.05)"),
    ("gaussian_blur", False, thirty_one, gaussian_blur_frame, "blur sigma 0.3 -> 0.75 px (at 32 px) in 31 steps"),
    ("brightness", False, thirty_one, brightness_frame, "HSV value shift -0.225 -> +0.225 in 31 steps"),
    ("translate", False, translate_count, translate_frame, "whole-pixel shifts -7 -> +8 px (at 32 px), 1 px a frame"),
    ("rotate", False, thirty_one, rotate_frame, "rotation -15 -> +15 degrees, 1 degree a frame"),
    ("scale", False, thirty_one, scale_frame, "zoom 0.70 -> 1.30 about the centre in 31 steps"),
    ("shear", False, thirty_one, shear_frame, "x-shear -15 -> +15 degrees, 1 degree a frame"),
):
    SEQUENCES.add(_name, PerturbationSequence(_name, _noise, _count, _frame), SequenceMeta(_what))


def flip_probability_noise(predictions: torch.Tensor) -> torch.Tensor:
    """Per image, the share of noisy frames 1..n−1 whose prediction differs from frame 0's (F×N in, N out)."""
    return (predictions[1:] != predictions[:1]).to(torch.float64).mean(0)


def flip_probability_steps(predictions: torch.Tensor) -> torch.Tensor:
    """Per image, the share of consecutive frame pairs whose predictions differ (F×N in, N out)."""
    return (predictions[1:] != predictions[:-1]).to(torch.float64).mean(0)


def top5_distance(reference: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Hendrycks & Dietterich's top-5 distance between two frames' rankings, per image (N×K logits each, K ≥ 5):
    Σ_{r=0..4} |r − min(rank′(c_r), 5)|, c_r the class ranked r by ``reference`` and rank′ its 0-based rank
    under ``current`` (ties broken by class index, as ``scipy.stats.rankdata(method="ordinal")``)."""
    k = reference.shape[1]
    if k < 5:
        raise ValueError(f"the top-5 distance needs at least 5 classes, got {k}")
    top = torch.sort(reference, dim=1, descending=True, stable=True).indices[:, :5]
    order = torch.sort(current, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(k, device=order.device).expand_as(order))
    moved = rank.gather(1, top).clamp(max=5)
    return (torch.arange(5, device=moved.device) - moved).abs().sum(1).to(torch.float64)


def rank_distance(logits: torch.Tensor, noise: bool) -> torch.Tensor:
    """Per image, the mean top-5 distance over the sequence's frame pairs (F×N×K logits in, N out)."""
    if noise:
        pairs = [top5_distance(logits[0], logits[f]) for f in range(1, len(logits))]
    else:
        pairs = [top5_distance(logits[f - 1], logits[f]) for f in range(1, len(logits))]
    return torch.stack(pairs).mean(0)

