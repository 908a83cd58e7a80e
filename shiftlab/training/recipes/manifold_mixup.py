"""Manifold mixup (Verma et al. 2019, "Manifold Mixup: Better Representations by Interpolating
Hidden States", arXiv:1806.05236): mixup applied at a layer drawn uniformly per batch from the
input and the outputs of the feature stages (``model.model.features``, which small-cnn and the
zoo ResNets expose). The mix is done by a forward hook, so any such architecture works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.training.augment.mixing import pair_permutation
from shiftlab.training.distributed import unwrap
from shiftlab.training.losses import mixed_cross_entropy
from shiftlab.training.recipes.base import RECIPES, Recipe, RecipeMeta, StepContext, StepOutput
from shiftlab.training.sampling import sample_beta


def feature_stages(model: nn.Module) -> nn.Sequential:
    """The feature stages of ``model`` (looked up inside a DistributedDataParallel wrapper)."""
    model = unwrap(model)
    stages = getattr(getattr(model, "model", None), "features", None)
    if not isinstance(stages, nn.Sequential):
        raise UserError(f"manifold-mixup needs a model with a `features` stage list; {type(model).__name__} has none")
    return stages


@RECIPES.register("manifold-mixup", meta=RecipeMeta("mixup of hidden states at a random feature stage",
                                                    "Verma et al. 2019, arXiv:1806.05236"))
@dataclass
class ManifoldMixup(Recipe):
    """Args: alpha (2.0, the paper's value) for ``lam ~ Beta(alpha, alpha)``; max_stage (-1 = all stages)."""

    alpha: float = 2.0
    max_stage: int = -1

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")

    def setup(self, model: nn.Module) -> None:
        feature_stages(model)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        stages = feature_stages(model)
        top = len(stages) if self.max_stage < 0 else min(self.max_stage, len(stages))
        layer = int(torch.randint(0, top + 1, (), generator=ctx.generator, device=ctx.generator.device))
        perm = pair_permutation(len(x), ctx.generator)
        lam = sample_beta((1,), self.alpha, self.alpha, ctx.generator).to(x.dtype)

        def mix(h: torch.Tensor) -> torch.Tensor:
            return lam * h + (1 - lam) * h[perm]

        if layer == 0:
            logits = model(mix(x))
        else:
            handle = stages[layer - 1].register_forward_hook(lambda _m, _i, out: mix(out))
            try:
                logits = model(x)
            finally:
                handle.remove()
        loss = mixed_cross_entropy(logits, y, y[perm], lam.expand(len(x)), ctx.label_smoothing)
        return StepOutput(loss, logits)
