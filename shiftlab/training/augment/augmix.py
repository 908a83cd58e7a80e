"""AugMix (Hendrycks et al. 2020, "AugMix: A Simple Data Processing Method to Improve Robustness
and Uncertainty", arXiv:1912.02781): ``width`` chains of 1–3 random ops, mixed with Dirichlet
weights, then mixed with the original by ``m ~ Beta(alpha, alpha)``. Batched: per-sample chains,
depths, weights and levels, all from one generator.
"""

from __future__ import annotations

import torch

from shiftlab.training.augment.ops import AUGMIX_OPS, Op, apply_random_ops
from shiftlab.training.sampling import sample_beta, sample_dirichlet


def augment_and_mix(x: torch.Tensor, ops: tuple[Op, ...], generator: torch.Generator, severity: float = 3.0,
                    width: int = 3, depth: int = -1, alpha: float = 1.0) -> torch.Tensor:
    """The AugMix mixing scheme over any op set (also used by PRIME).

    Args:
        x: N×C×H×W in [0, 1].
        ops: the ops a chain draws from.
        severity: op level upper bound, in AugMix's 1..10 scale (default 3).
        width: number of chains (3); depth: ops per chain, -1 draws 1..3 per sample.
        alpha: Dirichlet and Beta concentration (1).
    """
    n = len(x)
    weights = sample_dirichlet(n, width, alpha, generator).to(x.dtype)
    m = sample_beta((n,), alpha, alpha, generator).to(x.dtype).view(-1, 1, 1, 1)
    max_depth = depth if depth > 0 else 3
    mix = torch.zeros_like(x)
    for i in range(width):
        if depth > 0:
            chain_depth = torch.full((n,), depth, device=generator.device)
        else:
            chain_depth = torch.randint(1, 4, (n,), generator=generator, device=generator.device)
        chain = x
        for stage in range(max_depth):
            chain = apply_random_ops(chain, ops, severity, stage < chain_depth, generator)
        mix = mix + weights[:, i].view(-1, 1, 1, 1) * chain
    return ((1 - m) * x + m * mix).clamp(0, 1)


def augmix(x: torch.Tensor, generator: torch.Generator, severity: float = 3.0, width: int = 3, depth: int = -1,
           alpha: float = 1.0) -> torch.Tensor:
    """AugMix with its own op set (see ``ops.AUGMIX_OPS``). Shape: N×C×H×W in [0, 1] → same."""
    return augment_and_mix(x, AUGMIX_OPS, generator, severity, width, depth, alpha)
