"""Empirical risk minimisation: plain cross-entropy on clean images (Vapnik 1992)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.recipes.base import RECIPES, Recipe, RecipeMeta, StepContext, StepOutput


@RECIPES.register("erm", meta=RecipeMeta("cross-entropy on clean images", "Vapnik 1992"))
@dataclass
class ERM(Recipe):
    """Cross-entropy on the clean batch (with the loop's label smoothing)."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        logits = model(x)
        return StepOutput(F.cross_entropy(logits, y, label_smoothing=ctx.label_smoothing), logits)
