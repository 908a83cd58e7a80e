"""Square attack: score-based black-box random search with square-shaped updates.

Andriushchenko, Croce, Flammarion & Hein 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search", arXiv:1912.00049. Minimises the margin z_y − max_{i≠y} z_i
with p_init = 0.8 and the piecewise-constant schedule of the fraction p of pixels changed, rescaled
to the query budget (as fra31/auto-attack does). Linf: vertical-stripe init, then squares of ±2eps
re-projected onto the ball. L2: the paper's pseudo-Gaussian init, then mass moved between two
windows while keeping the perturbation norm at eps.

Args (from ``ThreatModel``): norm, eps, n_queries (default 5000). All randomness comes from the
images' own streams (``ImageStreams``): each image draws its own window position at every query (for
L2 also its own second window and its own transposition of the pseudo-Gaussian block) and its own
signs, so an image's search does not depend on the other images of its batch or on the batch size.
Only points not yet fooled are queried, one forward per query, in inference mode.

Deviation: window positions are per image. The authors' reference Linf code draws them per image
too (in a loop over the images); their L2 code and auto-attack's port (Linf and L2) share one
position, and one transposition of the L2 block, across the batch. The Linf signs are drawn per
image and channel and redrawn for an image whose window they would leave unchanged (as the
reference Linf code does; auto-attack's port shares one sign draw and spends such queries). Here the
windows are applied with per-image gather/scatter and masks, vectorised over the batch.
Shape: N×C×H×W in [0, 1].
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from shiftlab.attacks.base import ATTACKS, AttackMeta, image_streams
from shiftlab.attacks.losses import margin
from shiftlab.attacks.threat import L2Ops, Norm, NormOps, Randomness, ThreatModel, norm_ops
from shiftlab.core.seeding import ImageStreams

P_INIT = 0.8
SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))
CHUNK = 64
"""Queries whose random numbers are drawn in one call (per image: its key, the chunk number and the
position in the chunk; the chunking only saves per-call overhead)."""
SIGN_ATTEMPTS = 9
"""Linf sign draws per query and image before all signs are flipped (see ``_propose_linf``)."""


def p_fraction(i: int, n_queries: int) -> float:
    """Fraction of pixels in the square at iteration ``i`` (schedule defined for 10,000 queries)."""
    it = int(i / n_queries * 10000)
    for bound, div in SCHEDULE:
        if it <= bound:
            return P_INIT / div
    return P_INIT / 512


def _uniform_int(bits: torch.Tensor, high: int) -> torch.Tensor:
    """Integers in [0, high) from uniform 32-bit values (int64 tensor)."""
    return (bits * max(high, 1)) >> 32


def _sign_bit(words: torch.Tensor, bit: int) -> torch.Tensor:
    """±1.0 from bit ``bit`` of uniform 32-bit values."""
    return ((words >> bit) & 1).float() * 2 - 1


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


def _eta(s: int, transpose: torch.Tensor) -> torch.Tensor:
    """``_eta_block`` per image (N×1×s×s), transposed where ``transpose`` (N,) is true."""
    block = _eta_block(s, transpose.device)
    return torch.where(transpose.view(-1, 1, 1, 1), block.t(), block)


def _window(corner: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """Flat pixel indices (N × s²) of each image's s×s window with top-left ``corner`` (N×2: row, col)."""
    offsets = torch.arange(s, device=corner.device)
    rows = corner[:, :1] + offsets  # N × s
    cols = corner[:, 1:] + offsets
    return (rows[:, :, None] * w + cols[:, None, :]).flatten(1)


def _gather(t: torch.Tensor, window: torch.Tensor, s: int) -> torch.Tensor:
    """The windows of N×C×H×W ``t`` as N×C×s×s."""
    n, c = t.shape[:2]
    return t.flatten(2).gather(2, window[:, None].expand(n, c, -1)).view(n, c, s, s)


def _scatter(t: torch.Tensor, window: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` with each image's window replaced by ``values`` (N×C×s×s)."""
    n, c = t.shape[:2]
    return t.flatten(2).scatter(2, window[:, None].expand(n, c, -1), values.flatten(2)).view_as(t)


def _inside(window: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Boolean N×1×H×W mask of each image's window."""
    mask = torch.zeros(len(window), 1, h * w, dtype=torch.bool, device=window.device)
    return mask.scatter(2, window[:, None], True).view(-1, 1, h, w)


def _init(x: torch.Tensor, ops: NormOps, rng: ImageStreams) -> torch.Tensor:
    """The starting point: Linf vertical stripes of ±eps; L2 a grid of ±pseudo-Gaussian blocks."""
    n, c, h, w = x.shape
    if ops.norm is Norm.LINF:
        signs = _sign_bit(rng.bits(("square", "init"), (c, 1, w), x.device), 0)
        return ops.project(x + ops.eps * signs.to(x.dtype), x)
    s = max(h // 5, 1)
    tiles = [(vh, vw) for vh in range(0, h - s + 1, s) for vw in range(0, w - s + 1, s)]
    draws = rng.bits(("square", "init"), (len(tiles), 1 + c), x.device)  # transpose bit, then c signs
    delta = torch.zeros_like(x)
    for t, (vh, vw) in enumerate(tiles):
        block = _eta(s, (draws[:, t, 0] & 1).bool()) * _sign_bit(draws[:, t, 1:], 0).view(n, c, 1, 1)
        delta[:, :, vh:vh + s, vw:vw + s] = block.to(x.dtype)
    assert isinstance(ops, L2Ops)
    return ops.project(x + ops.eps * ops._unit(delta), x)


def _side(i: int, n_queries: int, h: int, w: int, norm: Norm) -> int:
    """Side of the square at iteration ``i`` (odd and at least 3 for L2, as in the paper)."""
    s = max(int(round(math.sqrt(p_fraction(i, n_queries) * h * w))), 1 if norm is Norm.LINF else 3)
    s = min(s, h, w)
    if norm is Norm.L2 and s % 2 == 0:
        s = s + 1 if s + 1 <= min(h, w) else s - 1
    return s


def _propose_linf(x: torch.Tensor, x_best: torch.Tensor, s: int, corner: torch.Tensor, sign_words: torch.Tensor,
                  ops: NormOps) -> torch.Tensor:
    """Each image's window of side ``s`` at its ``corner`` (N×2) set to x ± eps per channel, the rest kept.

    ``sign_words`` (N×C, uniform 32-bit values): bit k holds the signs of draw k. Signs that would
    leave an image's window unchanged are redrawn for that image (the authors' reference
    implementation does the same: such a query cannot improve the loss); with one channel the only
    other choice is the opposite sign, and after ``SIGN_ATTEMPTS`` draws all signs are flipped.
    """
    n, c, h, w = x.shape
    inside = _inside(_window(corner, s, h, w), h, w)
    signs = _sign_bit(sign_words, 0).to(x.dtype).view(n, c, 1, 1)
    cand = ops.project(x + 2 * ops.eps * signs, x)
    for attempt in range(1, SIGN_ATTEMPTS + 1):
        change = torch.where(inside, (cand - x_best).abs(), torch.zeros_like(x))
        same = change.flatten(1).amax(1) < 1e-7
        if not bool(same.any()):
            break
        flip = c == 1 or attempt == SIGN_ATTEMPTS
        redraw = -signs if flip else _sign_bit(sign_words, attempt).to(x.dtype).view(n, c, 1, 1)
        signs = torch.where(same.view(-1, 1, 1, 1), redraw, signs)
        cand = ops.project(x + 2 * ops.eps * signs, x)
    return torch.where(inside, cand, x_best)


def _propose_l2(x: torch.Tensor, x_best: torch.Tensor, s: int, corner: torch.Tensor, corner2: torch.Tensor,
                transpose: torch.Tensor, sign_words: torch.Tensor, ops: NormOps) -> torch.Tensor:
    """Per image: the mass of a second window (at ``corner2``) moved into the window at ``corner``,
    plus a ±pseudo-Gaussian block (transposed where ``transpose``), the perturbation norm kept at eps."""
    n, c, h, w = x.shape
    assert isinstance(ops, L2Ops)
    delta = x_best - x
    first, second = _window(corner, s, h, w), _window(corner2, s, h, w)
    in_second = _inside(second, h, w)
    win1 = _gather(delta, first, s)
    norm_image = ops.norm_of(delta).view(-1, 1, 1, 1)
    norm_windows = ops.norm_of(torch.where(_inside(first, h, w) | in_second, delta, 0.0)).view(-1, 1, 1, 1)
    norm_win1 = win1.pow(2).sum((-2, -1), keepdim=True).sqrt()
    new = _eta(s, transpose).to(x.dtype) * _sign_bit(sign_words, 0).to(x.dtype).view(n, c, 1, 1)
    new = new + win1 / (norm_win1 + 1e-12)
    budget = ((ops.eps ** 2 - norm_image ** 2).clamp_min(0) / c + norm_windows ** 2).sqrt()
    new = new / (new.pow(2).sum((-2, -1), keepdim=True).sqrt() + 1e-12) * budget
    delta = _scatter(torch.where(in_second, 0.0, delta), first, new)
    return ops.project(x + ops.eps * ops._unit(delta), x)


@ATTACKS.register("square", meta=AttackMeta("black-box random search with square updates",
                                            "Andriushchenko et al. 2020", "1912.00049", black_box=True))
def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
           rng: Randomness) -> tuple[torch.Tensor, torch.Tensor]:
    streams = image_streams(rng, len(x))
    with torch.inference_mode():
        x_best, fooled = _square(model, x, y, threat, streams)
    return x_best.clone(), fooled.clone()  # ordinary tensors for the caller


def _square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
            rng: ImageStreams) -> tuple[torch.Tensor, torch.Tensor]:
    """The search: one forward per query, on the points not yet fooled only.

    Query i of image j uses the 32-bit values ``rng.bits(("square", "queries", i // CHUNK))[j, i % CHUNK]``:
    the window corner (2 values), for L2 the second corner (2) and the transposition (1), then one
    sign word per channel.
    """
    ops = norm_ops(threat)
    c, h, w = x.shape[1:]
    linf = ops.norm is Norm.LINF
    x_best = _init(x, ops, rng)
    best_margin = margin(model(x_best), y)
    steps = threat.n_queries - 1
    idx = (best_margin > 0).nonzero().flatten()
    xs, ys, xb, mb, streams = x[idx], y[idx], x_best[idx], best_margin[idx], rng.subset(idx)
    draws = torch.empty(0)
    for i in range(steps):
        if len(idx) == 0:
            break
        if i % CHUNK == 0:
            draws = streams.bits(("square", "queries", i // CHUNK), (CHUNK, (2 if linf else 5) + c), x.device)
        d = draws[:, i % CHUNK]
        s = _side(i, threat.n_queries, h, w, ops.norm)
        corner = torch.stack([_uniform_int(d[:, 0], h - s + 1), _uniform_int(d[:, 1], w - s + 1)], 1)
        if linf:
            x_new = _propose_linf(xs, xb, s, corner, d[:, 2:], ops)
        else:
            corner2 = torch.stack([_uniform_int(d[:, 2], h - s + 1), _uniform_int(d[:, 3], w - s + 1)], 1)
            x_new = _propose_l2(xs, xb, s, corner, corner2, (d[:, 4] & 1).bool(), d[:, 5:], ops)
        m = margin(model(x_new), ys)
        better = m < mb
        mb = torch.where(better, m, mb)
        xb = torch.where(better.view(-1, 1, 1, 1), x_new, xb)
        done = m <= 0
        if bool(done.any()):
            x_best[idx[done]], best_margin[idx[done]] = xb[done], mb[done]
            keep = ~done
            idx, xs, ys, xb, mb, draws = idx[keep], xs[keep], ys[keep], xb[keep], mb[keep], draws[keep]
            streams = streams.subset(keep)
    x_best[idx], best_margin[idx] = xb, mb
    return x_best, best_margin <= 0
