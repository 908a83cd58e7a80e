"""SmoothAdv (Salman et al. 2019, "Provably Robust Deep Learning via Adversarially Trained Smoothed
Classifiers", arXiv:1906.04584): adversarial training of the *smoothed* classifier. With ``copies``
noise draws δ_i fixed per image, an L2 PGD of ``steps`` steps (length 2·eps/steps, no random start)
maximises the soft smoothed classifier's loss −log (1/m) Σ_i softmax(f(x' + δ_i))_y inside the
eps-ball; the base classifier then takes cross-entropy on x' + δ_i with the same draws."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.maximizers import maximize_smoothed
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput
from shiftlab.training.recipes.smoothing import SmoothingRecipe, noisy_batch


@RECIPES.register("smoothadv", meta=RecipeMeta("PGD on the soft smoothed classifier with few noise draws, then "
                                               "noisy cross-entropy", "Salman et al. 2019, arXiv:1906.04584"))
@dataclass
class SmoothAdv(SmoothingRecipe):
    """L2 ``eps`` 0.5, ``steps`` 2, ``copies`` m = 2 (the paper sweeps ε ∈ {0.25, …, 2}, T ∈ {1, …, 10},
    m ∈ {1, 2, 4, 8}; these suit one epoch on 28 px images)."""

    eps: float = 0.5
    steps: int = 2
    copies: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.eps > 0 or self.steps < 1 or self.copies < 1:
            raise ValueError(f"eps must be positive, steps and copies at least 1; got eps={self.eps} "
                             f"steps={self.steps} copies={self.copies}")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        noise = self.noise(x, self.copies, ctx.generator)
        x_adv = maximize_smoothed(model, x, y, noise, self.eps, 2 * self.eps / self.steps, self.steps)
        logits = model(noisy_batch(x_adv, noise))
        loss = F.cross_entropy(logits, y.repeat(self.copies), label_smoothing=ctx.label_smoothing)
        return StepOutput(loss, logits.chunk(self.copies)[0])
