"""Shared step of the augmentation recipes: cross-entropy on the clean batch plus a Jensen–Shannon
consistency term over ``views`` augmented copies (AugMix's scheme, Hendrycks et al. 2020,
arXiv:1912.02781), or, with ``jsd_weight=0``, plain cross-entropy on one augmented copy.
All views go through the model as one concatenated batch, as in the AugMix reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.training.losses import jensen_shannon
from shiftlab.training.recipes.base import Recipe, StepContext, StepOutput


@dataclass
class ConsistencyRecipe(Recipe):
    """Base: subclasses implement ``augment``; fields ``jsd_weight`` and ``views``."""

    jsd_weight: float = 12.0
    views: int = 2

    def __post_init__(self) -> None:
        if self.jsd_weight < 0:
            raise ValueError(f"jsd_weight must be >= 0, got {self.jsd_weight}")
        if self.views < 1:
            raise ValueError(f"views must be at least 1, got {self.views}")

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        if self.jsd_weight == 0:
            logits = model(self.augment(x, ctx.generator))
            return StepOutput(F.cross_entropy(logits, y, label_smoothing=ctx.label_smoothing), logits)
        batch = torch.cat([x] + [self.augment(x, ctx.generator) for _ in range(self.views)])
        all_logits = model(batch).chunk(self.views + 1)
        loss = F.cross_entropy(all_logits[0], y, label_smoothing=ctx.label_smoothing)
        loss = loss + self.jsd_weight * jensen_shannon(*all_logits)
        return StepOutput(loss, all_logits[0])


@dataclass
class MixingChainsRecipe(ConsistencyRecipe):
    """Base of AugMix and PRIME: the augment-and-mix chain settings (severity 3, width 3, depth 1–3, alpha 1)."""

    severity: float = 3.0
    width: int = 3
    depth: int = -1
    alpha: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.severity <= 10:
            raise ValueError(f"severity must be in (0, 10], got {self.severity}")
        if self.width < 1 or self.depth == 0 or self.depth > 10:
            raise ValueError(f"width must be >= 1 and depth -1 or 1..10, got width={self.width} depth={self.depth}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
