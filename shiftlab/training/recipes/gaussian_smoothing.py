"""Gaussian data augmentation at the certification noise level (Cohen, Rosenfeld & Kolter 2019,
"Certified Adversarial Robustness via Randomized Smoothing", arXiv:1902.02918): cross-entropy on
x + δ, δ ~ N(0, sigma² I), one draw per image and step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput
from shiftlab.training.recipes.smoothing import SmoothingRecipe, noisy_batch


@RECIPES.register("gaussian-smoothing", meta=RecipeMeta("cross-entropy under Gaussian noise at a fixed σ (for "
                                                        "randomized smoothing)", "Cohen et al. 2019, arXiv:1902.02918"))
@dataclass
class GaussianSmoothing(SmoothingRecipe):
    """Noise at ``sigma`` (0.25), not clipped; plain cross-entropy."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        logits = model(noisy_batch(x, self.noise(x, 1, ctx.generator)))
        return StepOutput(F.cross_entropy(logits, y, label_smoothing=ctx.label_smoothing), logits)
