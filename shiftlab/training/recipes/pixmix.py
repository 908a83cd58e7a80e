"""PixMix with procedurally generated pictures (Hendrycks et al. 2022, "PixMix: Dreamlike Pictures
Comprehensively Improve Safety Measures", arXiv:2112.05135); see ``train/augment/pixmix.py``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import pixmix
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.consistency import ConsistencyRecipe


@RECIPES.register("pixmix", meta=RecipeMeta("PixMix with procedurally generated pictures",
                                            "Hendrycks et al. 2022, arXiv:2112.05135"))
@dataclass
class PixMix(ConsistencyRecipe):
    """PixMix: up to k=4 mixing rounds, beta=3, AugMix-op severity 3; cross-entropy (jsd_weight 0)."""

    jsd_weight: float = 0.0
    k: int = 4
    beta: float = 3.0
    severity: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 0 or not self.beta > 0:
            raise ValueError(f"k must be >= 0 and beta positive, got k={self.k} beta={self.beta}")

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return pixmix(x, generator, self.k, self.beta, self.severity)
