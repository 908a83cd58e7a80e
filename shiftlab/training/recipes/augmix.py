"""AugMix with Jensen–Shannon consistency (Hendrycks et al. 2020, "AugMix: A Simple Data Processing
Method to Improve Robustness and Uncertainty", arXiv:1912.02781)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import augmix
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.consistency import MixingChainsRecipe


@RECIPES.register("augmix", meta=RecipeMeta("AugMix chains with Jensen-Shannon consistency",
                                            "Hendrycks et al. 2020, arXiv:1912.02781"))
@dataclass
class AugMix(MixingChainsRecipe):
    """AugMix: severity 3, width 3, depth 1–3, alpha 1, JSD weight 12, two augmented views."""

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augmix(x, generator, self.severity, self.width, self.depth, self.alpha)
