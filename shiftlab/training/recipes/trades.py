"""TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and Accuracy",
arXiv:1901.08573): ``CE(f(x), y) + beta·KL(f(x) ‖ f(x'))`` with x' maximising the KL from a small
Gaussian start."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.losses import trades_kl
from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.recipes.adversarial import AdversarialRecipe
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput


@RECIPES.register("trades", meta=RecipeMeta("clean CE + beta * KL to adversarial prediction",
                                            "Zhang et al. 2019, arXiv:1901.08573"))
@dataclass
class TRADES(AdversarialRecipe):
    """TRADES: eps 0.1, 7 KL steps of eps/4, beta 6."""

    beta: float = 6.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    def inner_max(self) -> InnerMax:
        return InnerMax(eps=self.eps, alpha=self.alpha, steps=self.steps, start="gaussian", loss="kl")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        x_adv = maximize(model, x, y, self.inner_max(), ctx.generator).x_adv
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=ctx.label_smoothing)
        return StepOutput(loss + self.beta * trades_kl(model(x_adv), logits), logits)
