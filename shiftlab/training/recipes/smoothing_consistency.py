"""Consistency regularisation of smoothed classifiers (Jeong & Shin 2020, "Consistency Regularization
for Certified Robustness of Smoothed Classifiers", arXiv:2006.04062): cross-entropy on ``copies``
noisy copies of each image plus ``lam``·mean KL of each copy's prediction to their mean and
``eta``·the mean's entropy. All copies go through the model as one batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.losses import noise_consistency
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput
from shiftlab.training.recipes.smoothing import SmoothingRecipe, noisy_batch


@RECIPES.register("smoothing-consistency", meta=RecipeMeta("Gaussian noise at σ with consistency over noisy copies",
                                                           "Jeong & Shin 2020, arXiv:2006.04062"))
@dataclass
class SmoothingConsistency(SmoothingRecipe):
    """m = ``copies`` (2) noisy copies, ``lam`` 10, ``eta`` 0.5 (the paper's CIFAR-10 settings are λ ∈ {10, 20},
    η = 0.5, m = 2)."""

    copies: int = 2
    lam: float = 10.0
    eta: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.copies < 2:
            raise ValueError(f"consistency needs at least 2 noisy copies, got {self.copies}")
        if self.lam < 0 or self.eta < 0:
            raise ValueError(f"lam and eta must be >= 0, got lam={self.lam} eta={self.eta}")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        logits = model(noisy_batch(x, self.noise(x, self.copies, ctx.generator)))
        per_copy = logits.chunk(self.copies)
        loss = F.cross_entropy(logits, y.repeat(self.copies), label_smoothing=ctx.label_smoothing)
        return StepOutput(loss + noise_consistency(per_copy, self.lam, self.eta), per_copy[0])
