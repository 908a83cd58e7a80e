"""SmoothMix (Jeong et al. 2021, "SmoothMix: Training Confidence-calibrated Smoothed Classifiers for
Certified Robustness", arXiv:2111.09277): mixup between x and an adversarial point of the smoothed
classifier, with a label that fades to uniform.

Per step, with ``copies`` noise draws δ_i fixed per image: x̃ = ``steps`` unbounded normalised-gradient
L2 steps of length ``step_size`` on −log Ĝ(x)_y (Ĝ: the soft smoothed classifier on the same draws);
λ ~ U(0, ½) per image; x_mix = (1 − λ)·x + λ·x̃ with the soft label (1 − λ)·Ĝ(x) + λ·uniform.
Loss = mean CE over the noisy copies of x + ``eta``·mean over noisy copies of x_mix of
KL(label ‖ softmax f(x_mix + δ_i)), counted only for images Ĝ(x) classifies correctly. As in the
authors' code the soft label is not detached.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.losses import soft_target_kl
from shiftlab.training.maximizers import maximize_smoothed
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput
from shiftlab.training.recipes.smoothing import SmoothingRecipe, noisy_batch


@RECIPES.register("smoothmix", meta=RecipeMeta("mixup towards adversarial points of the smoothed classifier with "
                                               "labels fading to uniform", "Jeong et al. 2021, arXiv:2111.09277"))
@dataclass
class SmoothMix(SmoothingRecipe):
    """``copies`` m = 2, ``steps`` T = 2 of ``step_size`` 0.5, ``eta`` 5 (the paper's CIFAR-10 runs use
    m ∈ {2, 4}, T ∈ {2, 4, 8}, η ∈ {1, 5, 10})."""

    copies: int = 2
    steps: int = 2
    step_size: float = 0.5
    eta: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.copies < 1 or self.steps < 1 or not self.step_size > 0 or self.eta < 0:
            raise ValueError(f"copies and steps must be at least 1, step_size positive, eta >= 0; got "
                             f"copies={self.copies} steps={self.steps} step_size={self.step_size} eta={self.eta}")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        m = self.copies
        noise = self.noise(x, m, ctx.generator)
        x_adv = maximize_smoothed(model, x, y, noise, None, self.step_size, self.steps)
        logits = model(noisy_batch(x, noise))
        loss = F.cross_entropy(logits, y.repeat(m), label_smoothing=ctx.label_smoothing)
        smoothed = torch.stack([F.softmax(z, dim=1) for z in logits.chunk(m)]).mean(0)
        lam = 0.5 * torch.rand(len(x), generator=ctx.generator, device=ctx.generator.device).to(x.device, x.dtype)
        x_mix = (1 - lam).view(-1, 1, 1, 1) * x + lam.view(-1, 1, 1, 1) * x_adv
        target = (1 - lam).view(-1, 1) * smoothed + lam.view(-1, 1) / logits.shape[1]
        mix_logits = model(noisy_batch(x_mix, noise))
        correct = (smoothed.argmax(1) == y).to(x.dtype).repeat(m)
        mix_loss = (correct * soft_target_kl(mix_logits, target.repeat(m, 1))).mean()
        return StepOutput(loss + self.eta * mix_loss, logits.chunk(m)[0])
