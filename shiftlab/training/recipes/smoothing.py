"""Shared field of the randomized-smoothing recipes: the noise level ``sigma`` they train for, and the
noise itself. The base classifier is trained on x + δ, δ ~ N(0, sigma² I), *not* clipped to [0, 1]:
that is the distribution the smoothed classifier evaluates it on (Cohen et al. 2019,
"Certified Adversarial Robustness via Randomized Smoothing", arXiv:1902.02918)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from shiftlab.certify.soft import gaussian_draws
from shiftlab.training.recipes.base import Recipe


@dataclass
class SmoothingRecipe(Recipe):
    """Base: ``sigma`` (0.25), the smoothing noise the model will be certified with."""

    sigma: float = 0.25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be positive, got {self.sigma}")

    def noise(self, x: torch.Tensor, copies: int, generator: torch.Generator) -> torch.Tensor:
        """``copies`` independent draws of sigma·N(0, I) per image: N×copies×C×H×W, on x's device."""
        draws = gaussian_draws((len(x), copies, *x.shape[1:]), self.sigma, generator)
        return draws.to(x.device, x.dtype)


def noisy_batch(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Copy-major batch of the noisy images: (copies·N)×C×H×W, copy i of every image in block i."""
    return (x.unsqueeze(1) + noise).transpose(0, 1).flatten(0, 1)
