"""Shared fields of the adversarial-training recipes: the L∞ radius, step size and steps of the
inner maximiser (``train/maximizers.py``). Defaults suit Fashion-MNIST (eps 0.1, 7 steps, eps/4)."""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.training.maximizers import InnerMax
from shiftlab.training.recipes.base import Recipe


@dataclass
class AdversarialRecipe(Recipe):
    """Base: ``eps`` (0.1), ``alpha`` (None → eps/4), ``steps`` (7); subclasses set the maximiser's other knobs."""

    eps: float = 0.1
    alpha: float | None = None
    steps: int = 7

    def __post_init__(self) -> None:
        self.inner_max()

    def inner_max(self) -> InnerMax:
        return InnerMax(eps=self.eps, alpha=self.alpha, steps=self.steps)
