"""YOCO (Han et al. 2022, "You Only Cut Once: Boosting Data Augmentation with a Single Cut",
arXiv:2201.12078) over another registered augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.training.augment import AUGMENTATIONS, yoco
from shiftlab.training.recipes.base import RECIPES, RecipeMeta
from shiftlab.training.recipes.consistency import ConsistencyRecipe


@RECIPES.register("yoco", meta=RecipeMeta("You Only Cut Once: augment the two halves independently",
                                          "Han et al. 2022, arXiv:2201.12078"))
@dataclass
class Yoco(ConsistencyRecipe):
    """YOCO over ``inner`` (a name in ``AUGMENTATIONS``, default flip-crop); cross-entropy (jsd_weight 0)."""

    jsd_weight: float = 0.0
    inner: str = "flip-crop"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner not in AUGMENTATIONS:
            raise ValueError(f"inner must be one of {', '.join(AUGMENTATIONS.names())}, got {self.inner!r}")

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return yoco(x, generator, AUGMENTATIONS.get(self.inner))
