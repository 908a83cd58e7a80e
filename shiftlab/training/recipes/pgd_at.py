"""PGD adversarial training (Madry et al. 2018, "Towards Deep Learning Models Resistant to
Adversarial Attacks", arXiv:1706.06083): minimise cross-entropy on L∞ PGD examples (random start).
The attack runs with the model in eval mode (as TRADES' reference does), so batch-norm statistics
are updated by the training forward only."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.maximizers import maximize
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("pgd-at", meta=RecipeMeta("cross-entropy on L-inf PGD examples", "Madry et al. 2018, arXiv:1706.06083"))
@dataclass
class PGDAT(AdversarialRecipe):
    """PGD-AT: eps 0.1, 7 steps of eps/4, uniform start."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        adv = maximize(model, x, y, self.inner_max(), ctx.generator)
        loss = F.cross_entropy(model(adv.x_adv), y, label_smoothing=ctx.label_smoothing)
        return StepOutput(loss, adv.clean_logits)
