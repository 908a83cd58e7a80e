"""Interpolated adversarial training (Lamb et al. 2019, "Interpolated Adversarial Training:
Achieving Robust Neural Networks without Sacrificing Too Much Accuracy", arXiv:1906.06784):
the mean of a mixup loss on clean images and a mixup loss on PGD examples."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.training.augment import mixup
from shiftlab.training.losses import mixed_cross_entropy
from shiftlab.training.maximizers import maximize
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("interpolated-at", meta=RecipeMeta("mixup on clean and on PGD examples",
                                                     "Lamb et al. 2019, arXiv:1906.06784"))
@dataclass
class InterpolatedAT(AdversarialRecipe):
    """IAT: eps 0.1, 7 PGD steps, mixup alpha 1.0 (drawn separately for the clean and adversarial halves)."""

    mix_alpha: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.mix_alpha > 0:
            raise ValueError(f"mix_alpha must be positive, got {self.mix_alpha}")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        adv = maximize(model, x, y, self.inner_max(), ctx.generator)
        clean = mixup(x, y, self.mix_alpha, ctx.generator)
        attacked = mixup(adv.x_adv, y, self.mix_alpha, ctx.generator)
        losses = [mixed_cross_entropy(model(b.x), b.y_a, b.y_b, b.lam, ctx.label_smoothing) for b in (clean, attacked)]
        return StepOutput(0.5 * (losses[0] + losses[1]), adv.clean_logits)
