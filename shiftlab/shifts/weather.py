"""Weather corruptions of Hendrycks & Dietterich 2019 (arXiv:1903.12261): snow, frost, fog, and the
extra spatter.

Differences from the references, by design:
- frost: the reference blends random crops of five photographs of frost (files), shrunk for CIFAR-10-C
  (×0.2) and Tiny-ImageNet-C (×0.3). Here the texture is generated procedurally from the generator: a
  diamond-square fractal plus ridge ("crystal") detail, standardised and coloured per image with the
  moments of the crops of one of the five photographs at the parameter table's scale (FROST_PALETTE, per
  table: crop mean, within-crop std, crop-to-crop std, measured from imagecorruptions 1.1.2's frost
  images), with a per-table share of fine grain (FROST_FINE) so that the texture's variance falls off with
  scale as the crops' does. The blend c0·x + c1·frost is the reference's.
- snow: the zoomed snow layer is cropped to H×W before the motion blur (imagecorruptions blurs the
  slightly larger zoomed layer, then crops; the difference is confined to the last rows/columns).
- spatter (mode 0, water): Canny(50, 150) of the thresholded liquid layer is OpenCV's, step by step
  (``canny.py``; equal to cv2.Canny pixel for pixel in the tests); the L2 distance transform is the exact
  Euclidean one instead of OpenCV's 5×5-mask approximation (equal on average over the wet pixels); the
  truncation at 20, box blurs, histogram equalisation and emboss kernel (saturating to uint8) follow the
  reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shiftlab.shifts import ops
from shiftlab.shifts.base import ShiftMeta, register
from shiftlab.shifts.canny import canny
from shiftlab.shifts.tables import params as table_params

# Per parameter table, (mean RGB, within-crop std RGB, crop-to-crop std of the mean RGB) of the crops the
# reference blends in, one row per frost photograph it draws from (frost1.png, frost2.png, frost3.png,
# frost4.jpg, frost5.jpg of imagecorruptions 1.1.2), averaged over every crop position its randint can pick:
# "cifar": the photographs shrunk ×0.2 (cv2.resize, bilinear), 32-px crops (make_cifar_c.py);
# "tiny": shrunk ×0.3, 64-px crops (make_tinyimagenet_c.py); "imagenet": enlarged ×1.1 (bicubic), 224-px
# crops (imagecorruptions). Crop-weighted moments, not the whole photograph's: crops cover the middle of a
# photograph more often than its edges. With these the mean |x' − x| of every table and severity is within
# 1 % of its reference (notes/corruptions.md; tested in test_corruptions_oracle.py).
FrostMoments = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
FROST_PALETTE: dict[str, tuple[FrostMoments, ...]] = {
    "cifar": (
        ((0.301, 0.581, 0.646), (0.085, 0.052, 0.050), (0.068, 0.037, 0.030)),
        ((0.778, 0.796, 0.832), (0.070, 0.072, 0.074), (0.032, 0.035, 0.038)),
        ((0.778, 0.796, 0.832), (0.070, 0.072, 0.074), (0.032, 0.035, 0.038)),
        ((0.563, 0.621, 0.671), (0.102, 0.102, 0.106), (0.039, 0.039, 0.042)),
        ((0.403, 0.447, 0.494), (0.139, 0.137, 0.134), (0.064, 0.062, 0.059)),
    ),
    "tiny": (
        ((0.302, 0.579, 0.644), (0.086, 0.052, 0.049), (0.061, 0.033, 0.025)),
        ((0.777, 0.794, 0.830), (0.070, 0.073, 0.076), (0.023, 0.026, 0.027)),
        ((0.777, 0.794, 0.830), (0.070, 0.073, 0.076), (0.023, 0.026, 0.027)),
        ((0.567, 0.625, 0.676), (0.091, 0.092, 0.097), (0.027, 0.027, 0.029)),
        ((0.397, 0.442, 0.488), (0.130, 0.129, 0.125), (0.050, 0.048, 0.045)),
    ),
    "imagenet": (
        ((0.302, 0.580, 0.644), (0.090, 0.054, 0.051), (0.062, 0.033, 0.026)),
        ((0.776, 0.793, 0.829), (0.074, 0.076, 0.079), (0.025, 0.028, 0.029)),
        ((0.776, 0.793, 0.829), (0.074, 0.076, 0.079), (0.025, 0.028, 0.029)),
        ((0.566, 0.624, 0.674), (0.100, 0.101, 0.106), (0.029, 0.029, 0.031)),
        ((0.397, 0.442, 0.488), (0.139, 0.137, 0.134), (0.052, 0.050, 0.047)),
    ),
}

# Per table, (share of the within-crop variance, Gaussian σ as a fraction of the image side) of the fine
# grain (ice crystals) mixed into the fractal: fitted so that the share of the texture's variance left in
# 2-, 4-, 8- and 16-px block means follows the reference crops' (at 224 px: 0.83, 0.64, 0.49, 0.37 in the
# photographs, 0.85, 0.62, 0.47, 0.39 here; the block means are what a classifier at a coarser scale sees).
# The shrunk photographs of the small tables are grainier: their crops keep half their variance below 2 px.
FROST_FINE: dict[str, tuple[float, float]] = {"cifar": (0.48, 0.3 / 32), "tiny": (0.44, 0.3 / 64),
                                              "imagenet": (0.59, 0.9 / 224)}

# Per photograph, the cubic a + b·z + c·z² + d·z³ of a standard normal z that has its marginal distribution
# (Fleishman's power method, Fleishman 1978): least-squares fit to the quantiles at 0.1 %…99.9 % of its
# 224-px crops' values standardised per crop and channel (the 32- and 64-px tables' quantiles are within
# 0.25 of these). The brightest photographs are skewed (frost2/3: skewness −1, kurtosis 4.5: long dark
# tails under bright plateaus), which changes how much of the frost a bright image clips.
FROST_SHAPE: tuple[tuple[float, float, float, float], ...] = (
    (-0.0518, 0.9905, 0.0526, -0.0015),
    (0.1438, 0.9424, -0.1486, 0.0119),
    (0.1434, 0.9458, -0.1477, 0.0112),
    (0.0259, 0.9320, -0.0275, 0.0280),
    (-0.0632, 1.0016, 0.0611, -0.0040),
)


@dataclass(frozen=True, slots=True)
class FogParams:
    strength: float
    plasma: torch.Tensor  # N×M×M float64, M = next power of two ≥ max(H, W)


def sample_fog(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> FogParams:
    strength, decay = table_params("fog", table, severity)
    size = ops.next_power_of_2(max(shape[2], shape[3]))
    return FogParams(float(strength), ops.plasma_fractal(shape[0], size, float(decay), g))


def apply_fog(x: torch.Tensor, p: FogParams) -> torch.Tensor:
    h, w = x.shape[-2:]
    plasma = p.plasma[:, None, :h, :w].to(device=x.device, dtype=x.dtype)
    max_val = x.amax((1, 2, 3), keepdim=True)
    return (x + p.strength * plasma) * max_val / (max_val + p.strength)


@dataclass(frozen=True, slots=True)
class FrostParams:
    image_weight: float
    frost_weight: float
    texture: torch.Tensor  # N×3×H×W float32 in [0, 1]


def _standardize(t: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit (sample) standard deviation per image of an N×H×W field (two passes: several times
    faster than ``torch.std_mean`` over two dimensions)."""
    centered = t - t.mean((1, 2), keepdim=True)
    std = centered.square().sum((1, 2), keepdim=True).div_(max(t[0].numel() - 1, 1)).sqrt_()
    return centered.div_(std.clamp_min_(1e-6))


def photograph_marginals(field: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """Give a standardised N×H×W field (about normal) photograph ``pick``'s marginal distribution through
    its FROST_SHAPE cubic (monotone over the field's range, so the spatial structure is kept)."""
    a, b, c, d = torch.tensor(FROST_SHAPE, dtype=field.dtype, device=field.device)[pick.to(field.device)].T
    a, b, c, d = (v[:, None, None] for v in (a, b, c, d))
    return torch.addcmul(c, d, field).mul_(field).add_(b).mul_(field).add_(a)


def frost_texture(n: int, h: int, w: int, g: torch.Generator, table: str = "imagenet",
                  pick: torch.Tensor | None = None) -> torch.Tensor:
    """Procedural frost (N×3×H×W in [0, 1]): fractal + crystal ridges, coloured like a crop of one of the
    five reference photographs at the scale ``table`` uses (FROST_PALETTE): per image one photograph's
    crop-weighted mean, shifted by a crop-to-crop offset (one normal draw shared by the channels: crop means
    of a photograph move together, correlation ≥ 0.9 in G/B), plus the within-crop standard deviation times
    the field. ``pick`` (N palette rows) replaces the uniform draw of the photograph, e.g. to stratify."""
    size = ops.next_power_of_2(max(h, w))
    base = ops.plasma_fractal(n, size, 2.0, g)[:, :h, :w]
    ridge = 1 - (2 * ops.plasma_fractal(n, size, 1.6, g)[:, :h, :w] - 1).abs()
    field = base + ridge.square().square_()
    field = _standardize(field)
    # the photographs' fine grain: seeded Gaussian-smoothed noise with the table's share of the variance
    share, sigma = FROST_FINE[table]
    fine = torch.randn(field.shape, generator=g, device=g.device, dtype=field.dtype)
    fine = ops.gaussian_blur(fine[:, None], sigma * max(h, w))[:, 0]
    fine = _standardize(fine)
    field = (1 - share) ** 0.5 * field + share**0.5 * fine
    palette = FROST_PALETTE[table]
    if pick is None:
        pick = torch.randint(0, len(palette), (n,), generator=g, device=g.device)
    field = _standardize(photograph_marginals(field, pick))
    moments = torch.tensor(palette, dtype=torch.float32, device=g.device)[pick.to(g.device)]  # N×3 moments×3 channels
    offset = torch.randn((n, 1), generator=g, device=g.device, dtype=torch.float32)
    mean = torch.addcmul(moments[:, 0], moments[:, 2], offset)[:, :, None, None]
    return torch.addcmul(mean, moments[:, 1, :, None, None], field[:, None].float()).clamp_(0, 1)


def sample_frost(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> FrostParams:
    wi, wf = table_params("frost", table, severity)
    return FrostParams(float(wi), float(wf), frost_texture(shape[0], shape[2], shape[3], g, table))


def apply_frost(x: torch.Tensor, p: FrostParams) -> torch.Tensor:
    return torch.mul(x, p.image_weight).add_(p.texture.to(device=x.device, dtype=x.dtype), alpha=p.frost_weight)


@dataclass(frozen=True, slots=True)
class SnowParams:
    zoom: float
    threshold: float
    radius: int
    sigma: float
    blend: float
    center_trim: bool
    layer: torch.Tensor  # N×H×W float32 ~ Normal(loc, scale)
    angle: torch.Tensor  # N degrees, uniform(-135, -45)


def sample_snow(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> SnowParams:
    loc, scale, zoom, thr, radius, sigma, blend = table_params("snow", table, severity)
    n, _, h, w = shape
    layer = ops.normal((n, h, w), loc, scale, g)
    angle = ops.uniform((n,), -135, -45, g)
    return SnowParams(float(zoom), float(thr), int(radius), float(sigma), float(blend), table != "imagenet",
                      layer, angle)


def snow_layer(p: SnowParams, device: torch.device) -> torch.Tensor:
    layer = ops.clipped_zoom(p.layer.to(device)[:, None].float(), p.zoom, p.center_trim)
    layer = torch.where(layer < p.threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    layer = ops.motion_blur(layer, p.radius, p.sigma, p.angle)
    return torch.round(layer * 255) / 255


def apply_snow(x: torch.Tensor, p: SnowParams) -> torch.Tensor:
    layer = snow_layer(p, x.device).to(x.dtype)
    gray = x if x.shape[1] == 1 else (x * torch.tensor((0.299, 0.587, 0.114), dtype=x.dtype,
                                                        device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = p.blend * x + (1 - p.blend) * torch.maximum(x, gray * 1.5 + 0.5)
    return x + layer + torch.rot90(layer, 2, (2, 3))


@dataclass(frozen=True, slots=True)
class SpatterParams:
    sigma: float
    threshold: float
    intensity: float
    mud: bool
    liquid: torch.Tensor  # N×H×W float32 ~ Normal(loc, scale)


def sample_spatter(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> SpatterParams:
    loc, scale, sigma, thr, intensity, mode = table_params("spatter", table, severity)
    liquid = ops.normal((shape[0], shape[2], shape[3]), loc, scale, g)
    return SpatterParams(float(sigma), float(thr), float(intensity), bool(mode), liquid)


def truncated_distance(edges: torch.Tensor, cap: int) -> torch.Tensor:
    """Exact Euclidean distance to the nearest True pixel of N×1×H×W ``edges``, truncated at ``cap``.

    Separable squared distance (Felzenszwalb & Huttenlocher 2012): along rows the nearest edge pixel on each
    side comes from two running maxima of edge indices; along columns a min-plus pass over offsets
    |k| ≤ cap in int16 (squared distances ≤ 2·cap² + 1 fit), reusing two buffers."""
    w = edges.shape[-1]
    idx = torch.arange(w, device=edges.device, dtype=torch.int32)
    far = 4 * cap + 4  # any index gap beyond the cap
    left = torch.where(edges, idx, torch.full((), -far, dtype=torch.int32, device=edges.device)).cummax(-1).values
    right = torch.where(edges, idx, torch.full((), w + far, dtype=torch.int32, device=edges.device))
    right = right.flip(-1).cummin(-1).values.flip(-1)
    gap = torch.minimum(idx - left, right - idx).clamp_(max=cap + 1)
    big = 2 * cap * cap + 1  # larger than any kept squared distance (≤ cap²)
    f = torch.where(gap <= cap, gap * gap, torch.full((), big, dtype=torch.int32, device=edges.device)).to(torch.int16)
    h = f.shape[-2]
    padded = F.pad(f, (0, 0, cap, cap), value=big)
    best = f.clone()
    tmp = torch.empty_like(f)
    for k in range(1, cap + 1):
        for shifted in (padded[..., cap + k:cap + k + h, :], padded[..., cap - k:cap - k + h, :]):
            torch.add(shifted, k * k, out=tmp)
            torch.minimum(best, tmp, out=best)
    return best.float().sqrt_().clamp_(max=float(cap))


def box3(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(x, (3, 3)) with BORDER_REFLECT_101."""
    k = torch.full((3,), 1 / 3, dtype=x.dtype, device=x.device)
    return ops.separable_filter(x, k, k, "reflect101")


def equalize_hist(u8: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist per image on integer-valued N×1×H×W floats in 0..255."""
    n = u8.shape[0]
    flat = u8.reshape(n, -1).long()
    hist = torch.zeros(n, 256, dtype=torch.float64, device=u8.device).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float64))
    total = float(flat.shape[1])
    first = (hist > 0).long().argmax(1, keepdim=True)
    h0 = hist.gather(1, first)
    cum = hist.cumsum(1)
    scale = 255.0 / (total - h0).clamp_min(1)
    lut = torch.round((cum - h0) * scale).clamp(0, 255)
    lut = torch.where(torch.arange(256, device=u8.device)[None] < first, torch.zeros_like(lut), lut)
    lut = torch.where(h0 == total, first.double().expand_as(lut), lut)
    return lut.gather(1, flat).reshape(u8.shape).to(u8.dtype)


def apply_spatter(x: torch.Tensor, p: SpatterParams) -> torch.Tensor:
    liquid = ops.gaussian_blur(p.liquid.to(x.device)[:, None].float(), p.sigma)
    liquid = torch.where(liquid < p.threshold, torch.zeros_like(liquid), liquid)
    if p.mud:
        m = ops.gaussian_blur((liquid > p.threshold).float(), p.intensity)
        m = torch.where(m < 0.8, torch.zeros_like(m), m).to(x.dtype)
        color = torch.tensor((63 / 255, 42 / 255, 20 / 255), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return x * (1 - m) + color * m
    u8 = torch.floor(liquid * 255).clamp(0, 255)
    dist = truncated_distance(canny(u8, 50, 150), 20)
    dist = torch.floor(box3(dist))
    dist = equalize_hist(dist)
    emboss = torch.tensor([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=torch.float32, device=x.device)
    dist = torch.round(ops.filter2d(dist, emboss)).clamp(0, 255)
    dist = box3(dist)
    m = liquid * dist
    m = m / m.amax((1, 2, 3), keepdim=True).clamp_min(1e-12) * p.intensity
    color = torch.tensor((175 / 255, 238 / 255, 238 / 255), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x + m.to(x.dtype) * color


register("snow", sample_snow, apply_snow, ShiftMeta("weather"), chunked=True)
register("frost", sample_frost, apply_frost, ShiftMeta("weather", rgb_only=True), chunked=True)
register("fog", sample_fog, apply_fog, ShiftMeta("weather"), chunked=True)
register("spatter", sample_spatter, apply_spatter, ShiftMeta("extra", rgb_only=True), chunked=True)
