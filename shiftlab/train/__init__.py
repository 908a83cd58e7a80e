"""Training: the loop, registered recipes and their composable pieces."""

from shiftlab.train.loop import TrainConfig, TrainResult, train
from shiftlab.train.recipes import RECIPES, Recipe, StepContext, StepOutput, build_recipe

__all__ = ["RECIPES", "Recipe", "StepContext", "StepOutput", "TrainConfig", "TrainResult", "build_recipe", "train"]
