"""Square attack: score-based black-box random search with square-shaped updates.

Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search", arXiv:1912.00049. Minimises the margin z_y − max_{i≠y} z_i
with p_init = 0.8 and the piecewise-constant schedule of the fraction p of pixels changed, rescaled
to the query budget (as fra31/auto-attack does). Linf: vertical-stripe init, then squares of ±2eps
re-projected onto the ball. L2: the paper's pseudo-Gaussian init, then mass moved between two
windows while keeping the perturbation norm at eps.

Args (from ``ThreatModel``): norm, eps, n_queries (default 5000). All randomness comes from the
generator. Deviation: window positions are shared by the batch (as in auto-attack), the signs are
drawn per image. Shape: N×C×H×W in [0, 1].
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta
from shiftlab.attacks.losses import margin
from shiftlab.attacks.threat import L2Ops, Norm, NormOps, ThreatModel, norm_ops

P_INIT = 0.8
SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))


def p_fraction(i: int, n_queries: int) -> float:
    """Fraction of pixels in the square at iteration ``i`` (schedule defined for 10,000 queries)."""
    it = int(i / n_queries * 10000)
    for bound, div in SCHEDULE:
        if it <= bound:
            return P_INIT / div
    return P_INIT / 512


def _signs(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator, device=device).float() * 2 - 1


def _randint(high: int, generator: torch.Generator, device: torch.device) -> int:
    return int(torch.randint(0, max(high, 1), (1,), generator=generator, device=device))


@functools.lru_cache(maxsize=64)
def _eta_block(s: int, device: torch.device) -> torch.Tensor:
    """The paper's s×s pseudo-Gaussian block: two halves of opposite sign, nested rectangles ∝ 1/r²."""

    def rect(h: int, w: int) -> torch.Tensor:
        d = torch.zeros(h, w, device=device)
        ch, cw = h // 2, w // 2
        for r in range(max(ch, cw) + 1):
            d[max(ch - r, 0):min(ch + r + 1, h), max(cw - r, 0):min(cw + r + 1, w)] += 1.0 / (r + 1) ** 2
        return d / d.norm()

    block = torch.cat([rect(s // 2, s), -rect(s - s // 2, s)]) if s > 1 else torch.ones(1, 1, device=device)
    return block / block.norm()


def _eta(s: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``_eta_block``, transposed with probability 1/2."""
    block = _eta_block(s, device)
    if _randint(2, generator, device) == 1:
        block = block.t()
    return block


def _init(x: torch.Tensor, ops: NormOps, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    if ops.norm is Norm.LINF:
        return ops.project(x + ops.eps * _signs((n, c, 1, w), generator, x.device), x)
    delta = torch.zeros_like(x)
    s = max(h // 5, 1)
    for vh in range(0, h - s + 1, s):
        for vw in range(0, w - s + 1, s):
            delta[:, :, vh:vh + s, vw:vw + s] = _eta(s, generator, x.device) * _signs((n, c, 1, 1), generator, x.device)
    assert isinstance(ops, L2Ops)
    return ops.project(x + ops.eps * ops._unit(delta), x)


def _propose_linf(x: torch.Tensor, x_best: torch.Tensor, s: int, ops: NormOps, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    vh, vw = _randint(h - s + 1, generator, x.device), _randint(w - s + 1, generator, x.device)
    x_new = x_best.clone()
    x_new[:, :, vh:vh + s, vw:vw + s] = x[:, :, vh:vh + s, vw:vw + s] + \
        2 * ops.eps * _signs((n, c, 1, 1), generator, x.device)
    return ops.project(x_new, x)


def _propose_l2(x: torch.Tensor, x_best: torch.Tensor, s: int, ops: NormOps, generator: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    assert isinstance(ops, L2Ops)
    delta = x_best - x
    vh, vw = _randint(h - s + 1, generator, x.device), _randint(w - s + 1, generator, x.device)
    vh2, vw2 = _randint(h - s + 1, generator, x.device), _randint(w - s + 1, generator, x.device)
    win1 = delta[:, :, vh:vh + s, vw:vw + s]
    mask = torch.zeros_like(x[:1])
    mask[:, :, vh:vh + s, vw:vw + s] = 1
    mask[:, :, vh2:vh2 + s, vw2:vw2 + s] = 1
    norm_image = ops.norm_of(delta).view(-1, 1, 1, 1)
    norm_windows = ops.norm_of(delta * mask).view(-1, 1, 1, 1)
    norm_win1 = win1.pow(2).sum((-2, -1), keepdim=True).sqrt()
    new = _eta(s, generator, x.device).view(1, 1, s, s) * _signs((n, c, 1, 1), generator, x.device)
    new = new + win1 / (norm_win1 + 1e-12)
    budget = ((ops.eps ** 2 - norm_image ** 2).clamp_min(0) / c + norm_windows ** 2).sqrt()
    new = new / (new.pow(2).sum((-2, -1), keepdim=True).sqrt() + 1e-12) * budget
    delta = delta.clone()
    delta[:, :, vh2:vh2 + s, vw2:vw2 + s] = 0
    delta[:, :, vh:vh + s, vw:vw + s] = new
    return ops.project(x + ops.eps * ops._unit(delta), x)


@ATTACKS.register("square", meta=AttackMeta("black-box random search with square updates",
                                            "Andriushchenko et al. 2020", "1912.00049", black_box=True))
@torch.no_grad()
def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ops = norm_ops(threat)
    n, c, h, w = x.shape
    n_features = c * h * w
    x_best = _init(x, ops, generator)
    best_margin = margin(model(x_best), y)
    propose = _propose_linf if ops.norm is Norm.LINF else _propose_l2
    min_side = 1 if ops.norm is Norm.LINF else 3
    for i in range(threat.n_queries - 1):
        todo = (best_margin > 0).nonzero().flatten()
        if len(todo) == 0:
            break
        s = max(int(round(math.sqrt(p_fraction(i, threat.n_queries) * n_features / c))), min_side)
        s = min(s, h, w)
        if ops.norm is Norm.L2 and s % 2 == 0:
            s = s + 1 if s + 1 <= min(h, w) else s - 1
        x_new = propose(x[todo], x_best[todo], s, ops, generator)
        m = margin(model(x_new), y[todo])
        better = m < best_margin[todo]
        best_margin[todo[better]] = m[better]
        x_best[todo[better]] = x_new[better]
    return x_best, best_margin <= 0
