"""Normalisation layers at test time: BatchNorm with test statistics mixed with the source ones, the
affine parameters TENT adapts, and the entropies the gradient-based adapters minimise.

Statistics: Schneider et al. 2020, "Improving robustness against common corruptions by covariate
shift adaptation" (arXiv:2006.16971): with n test images and a prior strength N (the source
statistics count as N images), mean = N/(N+n)·μ_source + n/(N+n)·μ_test and likewise for the
variance; N = 0 normalises with the test batch alone (TENT's choice).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BATCH_NORMS: tuple[type[nn.Module], ...] = (_BatchNorm,)
"""BatchNorm of any dimension (1d, 2d, 3d, synchronised, lazy), found by type."""


class PriorBatchNorm(nn.Module):
    """A BatchNorm layer that normalises with its source statistics mixed with the current batch's.

    Args:
        bn: the layer it replaces (its affine parameters and running statistics are taken over, so
            the state-dict keys are unchanged).
        prior: prior strength N ≥ 0; the source statistics weigh N/(N+n) with n test images.
        count: the n of the mixing weight when it is not the batch's own number of images (MEMO's
            single-point rule counts every batch as one image); None: the batch's.

    ``groups`` (set through :func:`grouped`) splits the batch into that many equal consecutive groups
    with statistics of their own (SITA: one group per test image and its augmented copies).
    """

    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    weight: nn.Parameter | None
    bias: nn.Parameter | None

    def __init__(self, bn: _BatchNorm, prior: float, count: int | None = None) -> None:
        super().__init__()
        self.num_features = int(bn.num_features)
        self.eps = float(bn.eps)
        self.weight = bn.weight
        self.bias = bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)
        self.prior = float(prior)
        self.count = count
        self.groups = 1

    def source_weight(self, n: int) -> float:
        """N / (N + n): how much the source statistics count for a batch of n images."""
        if self.running_mean is None or self.prior == 0:
            return 0.0
        return self.prior / (self.prior + (self.count if self.count is not None else n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.groups
        if x.shape[0] % g:
            raise ValueError(f"a batch of {x.shape[0]} cannot be split into {g} equal groups")
        xs = x.reshape(g, x.shape[0] // g, *x.shape[1:])
        dims = [1, *range(3, xs.dim())]
        var, mean = torch.var_mean(xs, dim=dims, correction=0)  # g×C
        w = self.source_weight(xs.shape[1])
        if w > 0 and self.running_mean is not None and self.running_var is not None:
            mean = w * self.running_mean + (1 - w) * mean
            var = w * self.running_var + (1 - w) * var
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        shift = -mean * scale
        if self.bias is not None:
            shift = shift + self.bias
        shape = (g, 1, self.num_features) + (1,) * (x.dim() - 2)
        return torch.addcmul(shift.view(shape), xs, scale.view(shape)).reshape(x.shape)


def with_prior_batchnorm(model: nn.Module, prior: float, count: int | None = None) -> list[PriorBatchNorm]:
    """Replace every BatchNorm layer of ``model`` (a copy: this edits it in place) by a
    :class:`PriorBatchNorm`; returns the new layers (empty when the model has no BatchNorm)."""
    layers = []
    for name, module in list(model.named_modules()):
        if not name or not isinstance(module, _BatchNorm):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = PriorBatchNorm(module, prior, count)
        setattr(parent, child, layer)
        layers.append(layer)
    return layers


@contextmanager
def grouped(layers: list[PriorBatchNorm], groups: int) -> Iterator[None]:
    """Within the block, every layer normalises ``groups`` consecutive equal groups of the batch apart."""
    for layer in layers:
        layer.groups = groups
    try:
        yield
    finally:
        for layer in layers:
            layer.groups = 1


AFFINE_NORMS: tuple[type[nn.Module], ...] = (PriorBatchNorm, *BATCH_NORMS, nn.LayerNorm, nn.GroupNorm)


def norm_affine_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The scale and shift parameters of every BatchNorm, LayerNorm and GroupNorm layer (TENT's
    parameters), found by type; layers without affine parameters are skipped."""
    out: list[nn.Parameter] = []
    for module in model.modules():
        if isinstance(module, AFFINE_NORMS):
            out += [p for p in (getattr(module, "weight", None), getattr(module, "bias", None))
                    if isinstance(p, nn.Parameter)]
    return out


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row's softmax, N."""
    logp = logits.log_softmax(1)
    return -(logp.exp() * logp).sum(1)


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean softmax over the rows (MEMO's marginal over augmented copies), a scalar."""
    logp = logits.log_softmax(1)
    mean_logp = torch.logsumexp(logp, 0) - math.log(logits.shape[0])
    return -(mean_logp.exp() * mean_logp).sum()
