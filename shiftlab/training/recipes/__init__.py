"""Registered training recipes; importing this package registers them all (one file per recipe)."""

from shiftlab.training.recipes import (  # noqa: F401
    advprop,
    augmix,
    cutmix,
    erm,
    fast_at,
    fat,
    fouriermix,
    gaussian_noise,
    gaussian_smoothing,
    interpolated_at,
    manifold_mixup,
    mixup,
    pgd_at,
    pixmix,
    prime,
    smoothadv,
    smoothing_consistency,
    smoothmix,
    trades,
    yoco,
)
from shiftlab.training.recipes.base import RECIPES, Recipe, RecipeMeta, StepContext, StepOutput, build_recipe

__all__ = ["RECIPES", "Recipe", "RecipeMeta", "StepContext", "StepOutput", "build_recipe"]
