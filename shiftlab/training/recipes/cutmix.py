"""CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features", arXiv:1905.04899)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import MixedBatch, cutmix
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.mixing import MixingRecipe


@RECIPES.register("cutmix", meta=RecipeMeta("CutMix: paste a box of another image, mix labels by area",
                                            "Yun et al. 2019, arXiv:1905.04899"))
@dataclass
class CutMix(MixingRecipe):
    """CutMix with box area ``(1 − lam)``, ``lam ~ Beta(alpha, alpha)`` (alpha 1.0), per sample."""

    def mix(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixedBatch:
        return cutmix(x, y, self.alpha, generator)
