"""Fast adversarial training (Wong et al. 2020, "Fast is better than free: Revisiting adversarial
training", arXiv:2001.03994): FGSM from a uniform random start with step 1.25·eps."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("fast-at", meta=RecipeMeta("FGSM with random start", "Wong et al. 2020, arXiv:2001.03994"))
@dataclass
class FastAT(AdversarialRecipe):
    """FGSM-RS: eps 0.1, one step of ``alpha`` (None → 1.25·eps)."""

    steps: int = 1

    def inner_max(self) -> InnerMax:
        return InnerMax(eps=self.eps, alpha=self.alpha if self.alpha is not None else 1.25 * self.eps,
                        steps=self.steps, start="uniform")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        adv = maximize(model, x, y, self.inner_max(), ctx.generator)
        loss = F.cross_entropy(model(adv.x_adv), y, label_smoothing=ctx.label_smoothing)
        return StepOutput(loss, adv.clean_logits)
