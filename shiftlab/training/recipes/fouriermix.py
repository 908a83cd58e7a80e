"""FourierMix with hierarchical consistency (Sun et al. 2021, "Certified Adversarial Defenses Meet
Out-of-Distribution Corruptions: Benchmarking Robustness and Simple Baselines", arXiv:2112.00659).

Three views of each image (the image and two FourierMix augmentations, ``training/augment/fourier.py``),
each with two noise draws at ``sigma``, all in one forward pass. Loss, following the authors' code:
mean CE on the two noisy copies of the image, plus the mean over views of ``lam_noise``·the KL
consistency of a view's two noisy predictions (Jeong & Shin 2020's term without entropy), plus
``lam_views``·the Jensen–Shannon divergence of the three views' noise-averaged predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.augment.fourier import fouriermix
from shiftlab.training.losses import jensen_shannon_probs, noise_consistency
from shiftlab.training.recipes.base import RECIPES, RecipeMeta, StepContext, StepOutput
from shiftlab.training.recipes.smoothing import SmoothingRecipe, noisy_batch

VIEWS = 3
COPIES = 2


@RECIPES.register("fouriermix", meta=RecipeMeta("FourierMix spectral augmentation under Gaussian noise with "
                                                "hierarchical consistency", "Sun et al. 2021, arXiv:2112.00659"))
@dataclass
class FourierMix(SmoothingRecipe):
    """``lam_noise`` 10 and ``lam_views`` 10 (the authors' defaults), ``width`` 3 FourierMix chains."""

    lam_noise: float = 10.0
    lam_views: float = 10.0
    width: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lam_noise < 0 or self.lam_views < 0 or self.width < 1:
            raise ValueError(f"lam_noise and lam_views must be >= 0 and width >= 1; got lam_noise={self.lam_noise} "
                             f"lam_views={self.lam_views} width={self.width}")

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        views = [x] + [fouriermix(x, ctx.generator, self.width) for _ in range(VIEWS - 1)]
        batch = torch.cat([noisy_batch(v, self.noise(v, COPIES, ctx.generator)) for v in views])
        chunks = model(batch).chunk(VIEWS * COPIES)
        pairs = [chunks[COPIES * v:COPIES * (v + 1)] for v in range(VIEWS)]
        loss = sum(F.cross_entropy(z, y, label_smoothing=ctx.label_smoothing) for z in pairs[0]) / COPIES
        loss = loss + sum(noise_consistency(pair, self.lam_noise) for pair in pairs) / VIEWS
        averaged = [torch.stack([F.softmax(z, dim=1) for z in pair]).mean(0) for pair in pairs]
        loss = loss + self.lam_views * jensen_shannon_probs(averaged)
        return StepOutput(loss, chunks[0])
