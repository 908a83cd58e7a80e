"""Label-mixing recipes: mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization",
arXiv:1710.09412) and CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features", arXiv:1905.04899).

Both train on ``lam·CE(f(x̃), y_a) + (1 − lam)·CE(f(x̃), y_b)``; the running accuracy is
measured on the mixed batch against ``y`` (no extra clean forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.training.augment import MixedBatch
from shiftlab.training.losses import mixed_cross_entropy
from shiftlab.training.recipes.base import Recipe, StepContext, StepOutput


@dataclass
class MixingRecipe(Recipe):
    """Base of mixup and CutMix: ``alpha`` for ``lam ~ Beta(alpha, alpha)``; subclasses implement ``mix``."""

    alpha: float = 1.0

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")

    def mix(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixedBatch:
        raise NotImplementedError

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        batch = self.mix(x, y, ctx.generator)
        logits = model(batch.x)
        loss = mixed_cross_entropy(logits, batch.y_a, batch.y_b, batch.lam, ctx.label_smoothing)
        return StepOutput(loss, logits)
