"""Registered training recipes; importing this package registers them all (one file per recipe)."""

from shiftlab.train.recipes import (  # noqa: F401
    advprop,
    augmix,
    cutmix,
    erm,
    fast_at,
    fat,
    gaussian_noise,
    interpolated_at,
    manifold_mixup,
    mixup,
    pgd_at,
    pixmix,
    prime,
    trades,
    yoco,
)
from shiftlab.train.recipes.base import RECIPES, Recipe, RecipeMeta, StepContext, StepOutput, build_recipe

__all__ = ["RECIPES", "Recipe", "RecipeMeta", "StepContext", "StepOutput", "build_recipe"]
