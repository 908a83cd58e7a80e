"""Training: the loop, registered recipes and their composable pieces."""

from shiftlab.training.config import TrainConfig
from shiftlab.training.loop import TrainResult, train
from shiftlab.training.recipes import RECIPES, Recipe, StepContext, StepOutput, build_recipe

__all__ = ["RECIPES", "Recipe", "StepContext", "StepOutput", "TrainConfig", "TrainResult", "build_recipe", "train"]
