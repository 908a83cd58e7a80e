"""BN adaptation: Schneider et al. 2020, "Improving robustness against common corruptions by covariate
shift adaptation" (arXiv:2006.16971).

Every BatchNorm layer normalises the test batch with its source statistics mixed with the batch's
own: with n test images and prior strength N, mean = N/(N+n)·μ_source + n/(N+n)·μ_batch (likewise
the variance). No parameter changes and no state is kept between batches, so it is episodic by
nature; its numbers depend on the batch (its size and its images).

Args:
    prior: N ≥ 0 (default 0: the test batch's statistics alone, the "BN" column of TENT's table).

Shape: N×C×H×W in [0, 1] -> N×K logits.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from shiftlab.adapt import adapter_args
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3)).eval()
    >>> adapter = adapter_args("bn-adapt", {"prior": "16"}).prepare(net)
    >>> adapter.step(torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([8, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.adapt.base import ADAPTERS, AdapterArgs, AdapterMeta, Mode, arg, model_copy
from shiftlab.adapt.norm import with_prior_batchnorm
from shiftlab.core.errors import UserError
from shiftlab.core.seeding import ImageStreams


@ADAPTERS.register("bn-adapt", meta=AdapterMeta(
    "re-estimate BatchNorm statistics on the test batch, mixed with the source statistics (prior strength N)",
    "Schneider et al. 2020", "2006.16971", modes=(Mode.EPISODIC,)))
@dataclass(frozen=True)
class BNAdaptArgs(AdapterArgs):
    """The arguments of BN adaptation."""

    prior: float = arg(0.0, low=0.0, help="prior strength N: the source statistics count as N test images")

    def prepare(self, model: nn.Module) -> BNAdapter:
        return BNAdapter(model, self)


class BNAdapter:
    """BN adaptation on a copy of the model."""

    def __init__(self, model: nn.Module, args: BNAdaptArgs) -> None:
        self.model = model_copy(model)
        if not with_prior_batchnorm(self.model, args.prior):
            raise UserError("bn-adapt re-estimates BatchNorm statistics, and this model has no BatchNorm layer")

    def step(self, x: torch.Tensor, streams: ImageStreams | None = None) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(x)

    def reset(self) -> None:
        """Nothing to reset: no state is kept between batches."""
