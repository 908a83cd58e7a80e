"""Square attack: score-based black-box random search with square-shaped updates.

Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search", arXiv:1912.00049. Minimises the margin z_y − max_{i≠y} z_i
with p_init = 0.8 and the piecewise-constant schedule of the fraction p of pixels changed, rescaled
to the query budget (as fra31/auto-attack does). Linf: vertical-stripe init, then squares of ±2eps
re-projected onto the ball. L2: the paper's pseudo-Gaussian init, then mass moved between two
windows while keeping the perturbation norm at eps.

Args (from ``ThreatModel``): norm, eps, n_queries (default 5000). All randomness comes from the
generator. Only points not yet fooled are queried, one forward per query, in inference mode.
Deviation: window positions are shared by the batch (as in auto-attack); the Linf signs are drawn
per image and redrawn for an image whose window they would leave unchanged (as the authors'
reference code does per image; auto-attack's port shares one sign draw and spends such queries).
Shape: N×C×H×W in [0, 1].
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


def _side(i: int, n_queries: int, h: int, w: int, norm: Norm) -> int:
    """Side of the square at iteration ``i`` (odd and at least 3 for L2, as in the paper)."""
    s = max(int(round(math.sqrt(p_fraction(i, n_queries) * h * w))), 1 if norm is Norm.LINF else 3)
    s = min(s, h, w)
    if norm is Norm.L2 and s % 2 == 0:
        s = s + 1 if s + 1 <= min(h, w) else s - 1
    return s


def _propose_linf(x: torch.Tensor, x_best: torch.Tensor, s: int, vh: int, vw: int, ops: NormOps,
                  generator: torch.Generator) -> torch.Tensor:
    """A window of side ``s`` at (vh, vw) set to x ± eps per image and channel, the rest kept.

    Signs that would leave an image's window unchanged are redrawn for that image (the authors'
    reference implementation does the same: such a query cannot improve the loss).
    """
    n, c = x.shape[:2]
    x_win = x[:, :, vh:vh + s, vw:vw + s]
    best_win = x_best[:, :, vh:vh + s, vw:vw + s]
    signs = _signs((n, c, 1, 1), generator, x.device)
    win = ops.project(x_win + 2 * ops.eps * signs, x_win)
    for attempt in range(9):
        same = (win - best_win).abs().flatten(1).amax(1) < 1e-7
        if not bool(same.any()):
            break
        # c = 1 has only the opposite sign left; with more channels, redraw (finally flip all)
        redraw = -signs if c == 1 or attempt == 8 else _signs((n, c, 1, 1), generator, x.device)
        signs = torch.where(same.view(-1, 1, 1, 1), redraw, signs)
        win = ops.project(x_win + 2 * ops.eps * signs, x_win)
    x_new = x_best.clone()
    x_new[:, :, vh:vh + s, vw:vw + s] = win
    return x_new


def _propose_l2(x: torch.Tensor, x_best: torch.Tensor, s: int, vh: int, vw: int, ops: NormOps,
                generator: torch.Generator) -> torch.Tensor:
    """Mass of a second window (random position) moved into the window at (vh, vw), norm kept at eps."""
    n, c, h, w = x.shape
    assert isinstance(ops, L2Ops)
    delta = x_best - x
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
def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        x_best, fooled = _square(model, x, y, threat, generator)
    return x_best.clone(), fooled.clone()  # ordinary tensors for the caller


def _square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The search: one forward per query, on the points not yet fooled only."""
    ops = norm_ops(threat)
    h, w = x.shape[-2:]
    x_best = _init(x, ops, generator)
    best_margin = margin(model(x_best), y)
    propose = _propose_linf if ops.norm is Norm.LINF else _propose_l2
    steps = threat.n_queries - 1
    sides = [_side(i, threat.n_queries, h, w, ops.norm) for i in range(steps)]
    room = torch.tensor([[h - s + 1, w - s + 1] for s in sides] or [[1, 1]], device=x.device)
    corners = (torch.rand(room.shape, generator=generator, device=x.device) * room).long().tolist()
    idx = (best_margin > 0).nonzero().flatten()
    xs, ys, xb, mb = x[idx], y[idx], x_best[idx], best_margin[idx]
    for i in range(steps):
        if len(idx) == 0:
            break
        x_new = propose(xs, xb, sides[i], corners[i][0], corners[i][1], ops, generator)
        m = margin(model(x_new), ys)
        better = m < mb
        mb = torch.where(better, m, mb)
        xb = torch.where(better.view(-1, 1, 1, 1), x_new, xb)
        done = m <= 0
        if bool(done.any()):
            x_best[idx[done]], best_margin[idx[done]] = xb[done], mb[done]
            keep = ~done
            idx, xs, ys, xb, mb = idx[keep], xs[keep], ys[keep], xb[keep], mb[keep]
    x_best[idx], best_margin[idx] = xb, mb
    return x_best, best_margin <= 0
