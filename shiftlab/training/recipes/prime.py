"""PRIME with Jensen–Shannon consistency (Modas et al. 2022, "PRIME: A Few Primitives Can Boost
Robustness to Common Corruptions", arXiv:2112.13547)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import prime
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.consistency import MixingChainsRecipe


@RECIPES.register("prime", meta=RecipeMeta("PRIME spectral/spatial/colour primitives with JSD",
                                           "Modas et al. 2022, arXiv:2112.13547"))
@dataclass
class Prime(MixingChainsRecipe):
    """PRIME mixed as AugMix, JSD weight 12 (the paper's default for CIFAR)."""

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return prime(x, generator, self.severity, self.width, self.depth, self.alpha)
