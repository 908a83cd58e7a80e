"""Model modifiers used by recipes.

``auxiliary_batch_norm(model)``: run a block with every batch-norm layer normalising by the
current batch's statistics without touching the running statistics — the "auxiliary BN" of
AdvProp (Xie et al. 2020, "Adversarial Examples Improve Image Recognition", arXiv:1911.09665),
so adversarial and clean batches are normalised separately and the running statistics (the
ones used at test time and saved in the checkpoint) come from clean images only.

Deviation from the paper: the auxiliary BNs share the affine weight and bias with the main
BNs; only the normalisation statistics are separate. Since auxiliary running statistics are
never used at test time, nothing extra is stored and the checkpoint is the standard
architecture.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norms(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


@contextlib.contextmanager
def auxiliary_batch_norm(model: nn.Module) -> Iterator[None]:
    """Train-mode forward with batch statistics only; model mode and BN flags restored on exit."""
    layers = batch_norms(model)
    tracked = [bn.track_running_stats for bn in layers]
    modes = [m.training for m in model.modules()]
    try:
        model.train()
        for bn in layers:
            bn.track_running_stats = False
        yield
    finally:
        for bn, flag in zip(layers, tracked, strict=True):
            bn.track_running_stats = flag
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; every submodule's mode restored on exit."""
    modes = [m.training for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode
