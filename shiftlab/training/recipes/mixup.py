"""mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization", arXiv:1710.09412)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import MixedBatch, mixup
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.mixing import MixingRecipe


@RECIPES.register("mixup", meta=RecipeMeta("mixup: convex combinations of image pairs and their labels",
                                           "Zhang et al. 2018, arXiv:1710.09412"))
@dataclass
class Mixup(MixingRecipe):
    """mixup with ``lam ~ Beta(alpha, alpha)`` (alpha 1.0) per batch."""

    def mix(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixedBatch:
        return mixup(x, y, self.alpha, generator)
