"""TENT: Wang et al. 2021, "Tent: Fully Test-time Adaptation by Entropy Minimization" (arXiv:2006.10726).

BatchNorm layers normalise with the test batch's statistics, and the affine (scale and shift)
parameters of every normalisation layer — BatchNorm of any dimension, LayerNorm and GroupNorm, so
transformers and MLP-Mixers adapt too — take ``steps`` Adam steps per batch on the mean softmax
entropy of the batch's predictions; every other parameter is frozen. The returned logits are those
of the forward pass that computed the loss (before that batch's update), as in the authors' code,
so with ``lr = 0`` TENT is exactly BN adaptation with N = 0.

Online (the default): the adapted parameters and Adam's state carry over to the next batch, in the
order the batches come (the evaluation feeds a cell's images in ascending test-set index and resets
at the start of every cell). Episodic: reset before every batch. Unlike the authors' code, Dropout
stays in eval mode (BatchNorm uses batch statistics by construction), so a step is deterministic.

Args:
    lr: Adam learning rate (default 1e-3, the paper's CIFAR setting; betas 0.9/0.999, no weight decay).
    steps: optimisation steps per batch (default 1).

Shape: N×C×H×W in [0, 1] -> N×K logits.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from shiftlab.adapt import adapter_args
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3)).eval()
    >>> adapter = adapter_args("tent", {"lr": "0.01"}).prepare(net)
    >>> adapter.step(torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))).shape
    torch.Size([8, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.adapt.base import ADAPTERS, AdapterArgs, AdapterMeta, Mode, Snapshot, arg, model_copy
from shiftlab.adapt.norm import norm_affine_parameters, softmax_entropy, with_prior_batchnorm
from shiftlab.core.errors import UserError
from shiftlab.core.seeding import ImageStreams


@ADAPTERS.register("tent", meta=AdapterMeta(
    "entropy minimisation of the normalisation layers' affine parameters, with test-batch BatchNorm statistics",
    "Wang et al. 2021", "2006.10726", modes=(Mode.ONLINE, Mode.EPISODIC), needs_grad=True))
@dataclass(frozen=True)
class TentArgs(AdapterArgs):
    """The arguments of TENT."""

    lr: float = arg(1e-3, low=0.0, help="Adam learning rate")
    steps: int = arg(1, low=1, high=100, help="optimisation steps per batch")

    def prepare(self, model: nn.Module) -> TentAdapter:
        return TentAdapter(model, self)


class TentAdapter:
    """TENT on a copy of the model."""

    def __init__(self, model: nn.Module, args: TentArgs) -> None:
        self.args = args
        self.model = model_copy(model)
        with_prior_batchnorm(self.model, prior=0.0)
        self.params = norm_affine_parameters(self.model)
        if not self.params:
            raise UserError("tent adapts the affine parameters of BatchNorm, LayerNorm and GroupNorm layers, "
                            "and this model has none")
        for p in self.params:
            p.requires_grad_(True)
        self.snapshot = Snapshot(self.model)
        self.optimizer = self._optimizer()

    def _optimizer(self) -> torch.optim.Adam:
        return torch.optim.Adam(self.params, lr=self.args.lr, betas=(0.9, 0.999), weight_decay=0.0)

    def step(self, x: torch.Tensor, streams: ImageStreams | None = None) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone()
            logits = x.new_empty(0)
            for _ in range(self.args.steps):
                logits = self.model(x)
                loss = softmax_entropy(logits).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        return logits.detach()

    def reset(self) -> None:
        self.snapshot.restore()
        self.optimizer = self._optimizer()
