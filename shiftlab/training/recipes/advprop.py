"""AdvProp (Xie et al. 2020, "Adversarial Examples Improve Image Recognition", arXiv:1911.09665):
``CE(clean, main BN) + CE(adversarial, auxiliary BN)``, the adversarial examples generated
through the auxiliary BN too. See ``train/modifiers.py``: the auxiliary BN normalises by the
adversarial batch's own statistics and leaves the running (test-time) statistics alone, so the
saved checkpoint is the standard architecture with clean-image BN statistics."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.modifiers import auxiliary_batch_norm
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("advprop", meta=RecipeMeta("clean + adversarial CE with auxiliary batch norm",
                                             "Xie et al. 2020, arXiv:1911.09665"))
@dataclass
class AdvProp(AdversarialRecipe):
    """AdvProp: a weak attacker (eps 0.05, 2 steps of eps/2) as in the paper's small-eps setting."""

    eps: float = 0.05
    steps: int = 2

    def inner_max(self) -> InnerMax:
        return InnerMax(eps=self.eps, alpha=self.alpha if self.alpha is not None else self.eps / 2,
                        steps=self.steps, bn="batch")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        x_adv = maximize(model, x, y, self.inner_max(), ctx.generator).x_adv
        logits = model(x)
        with auxiliary_batch_norm(model):
            adv_loss = F.cross_entropy(model(x_adv), y, label_smoothing=ctx.label_smoothing)
        return StepOutput(F.cross_entropy(logits, y, label_smoothing=ctx.label_smoothing) + adv_loss, logits)
