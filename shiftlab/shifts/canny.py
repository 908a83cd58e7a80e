"""Canny edge detection as OpenCV's ``cv2.Canny(img, low, high)`` computes it on uint8 images, batched.

J. Canny 1986, "A Computational Approach to Edge Detection" (IEEE TPAMI 8(6)). spatter's water mode
(Hendrycks & Dietterich 2019, arXiv:1903.12261) measures distances from these edges, and where they fall
(on the wet or the dry side of a liquid boundary) sets the strength of the effect, so the detector follows
OpenCV 4 step by step:

1. 3×3 Sobel derivatives with replicated borders, integer arithmetic;
2. L1 magnitude |dx| + |dy| (OpenCV's default, ``L2gradient=False``); magnitudes outside the image are 0;
3. non-maximum suppression along the gradient direction, quantised with OpenCV's fixed-point tangent of
   22.5° (15 fractional bits) and its tie rules (strictly greater than the neighbour before, at least the
   one after; diagonals strictly greater than both);
4. hysteresis: pixels above ``low`` that survive suppression are candidates; those above ``high`` are
   edges, and candidates 8-connected to edges through candidates become edges (repeated dilation until
   nothing changes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)  # OpenCV's CANNY_SHIFT = 15


def sobel(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """dx, dy (int32) of N×1×H×W integer-valued images, 3×3 Sobel, replicated border."""
    p = F.pad(img.to(torch.float32), (1, 1, 1, 1), mode="replicate").to(torch.int32)
    h, w = img.shape[-2:]
    smooth_rows = p[..., 0:h, :] + 2 * p[..., 1:h + 1, :] + p[..., 2:h + 2, :]  # N×1×H×(W+2)
    dx = smooth_rows[..., 2:w + 2] - smooth_rows[..., 0:w]
    smooth_cols = p[..., 0:w] + 2 * p[..., 1:w + 1] + p[..., 2:w + 2]  # N×1×(H+2)×W
    dy = smooth_cols[..., 2:h + 2, :] - smooth_cols[..., 0:h, :]
    return dx, dy


def neighbours(mask: torch.Tensor) -> torch.Tensor:
    """True where some 8-neighbour (not the pixel itself) of an N×1×H×W bool mask is True."""
    h, w = mask.shape[-2:]
    p = F.pad(mask.to(torch.uint8), (1, 1, 1, 1))
    out = torch.zeros_like(mask)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                out |= p[..., dy:dy + h, dx:dx + w].bool()
    return out


def canny(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Edge map (bool) of N×1×H×W images holding integers 0..255, as cv2.Canny(img, low, high)."""
    dx, dy = sobel(img)
    mag = dx.abs() + dy.abs()
    h, w = mag.shape[-2:]
    m = F.pad(mag, (1, 1, 1, 1))  # zero magnitude outside the image

    def at(oy: int, ox: int) -> torch.Tensor:
        return m[..., 1 + oy:1 + oy + h, 1 + ox:1 + ox + w]

    ax, ay = dx.abs(), dy.abs() << 15
    tg22x = ax * TG22
    tg67x = tg22x + (ax << 16)
    horizontal = ay < tg22x
    vertical = ~horizontal & (ay > tg67x)
    diagonal = ~horizontal & ~vertical
    same_sign = (dx ^ dy) >= 0  # s = 1: compare (-1, -1) and (+1, +1); else (-1, +1) and (+1, -1)
    keep_h = (mag > at(0, -1)) & (mag >= at(0, 1))
    keep_v = (mag > at(-1, 0)) & (mag >= at(1, 0))
    keep_d = torch.where(same_sign, (mag > at(-1, -1)) & (mag > at(1, 1)), (mag > at(-1, 1)) & (mag > at(1, -1)))
    maximum = (horizontal & keep_h) | (vertical & keep_v) | (diagonal & keep_d)
    candidate = maximum & (mag > int(low))
    edges = candidate & (mag > int(high))
    while True:
        grown = edges | (candidate & neighbours(edges))
        if torch.equal(grown, edges):
            return edges
        edges = grown
