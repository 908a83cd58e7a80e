"""Gaussian-noise training with a random σ per sample (Lopes et al. 2019, "Improving Robustness
Without Sacrificing Accuracy with Patch Gaussian Augmentation", arXiv:1906.02611, for noise
training; the optional clean/noisy JSD term follows AugMix, Hendrycks et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import gaussian_noise
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.consistency import ConsistencyRecipe


@RECIPES.register("gaussian-noise", meta=RecipeMeta("Gaussian noise with a random σ per sample",
                                                    "Lopes et al. 2019, arXiv:1906.02611"))
@dataclass
class GaussianNoise(ConsistencyRecipe):
    """Noise σ ~ U(0, sigma_max=0.5); ``jsd_weight`` > 0 adds a clean/noisy JSD term over one noisy view."""

    jsd_weight: float = 0.0
    views: int = 1
    sigma_max: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sigma_max > 0:
            raise ValueError(f"sigma_max must be positive, got {self.sigma_max}")

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return gaussian_noise(x, generator, self.sigma_max)
