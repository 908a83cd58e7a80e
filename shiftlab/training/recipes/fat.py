"""Friendly adversarial training (Zhang et al. 2020, "Attacks Which Do Not Kill Training Make
Adversarial Learning Stronger", arXiv:2002.11242): cross-entropy on early-stopped PGD examples,
each sample's attack stopping ``tau`` steps after it is first misclassified (PGD-K-τ)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("fat", meta=RecipeMeta("friendly AT with early-stopped PGD", "Zhang et al. 2020, arXiv:2002.11242"))
@dataclass
class FAT(AdversarialRecipe):
    """FAT: eps 0.1, 10 steps of eps/4, tau 0 (stop as soon as misclassified)."""

    steps: int = 10
    tau: int = 0

    def inner_max(self) -> InnerMax:
        return InnerMax(eps=self.eps, alpha=self.alpha, steps=self.steps, early_stop=self.tau)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        adv = maximize(model, x, y, self.inner_max(), ctx.generator)
        loss = F.cross_entropy(model(adv.x_adv), y, label_smoothing=ctx.label_smoothing)
        return StepOutput(loss, adv.clean_logits)
