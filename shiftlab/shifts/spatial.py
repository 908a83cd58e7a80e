"""Spatial transforms: rotation, translation, both in one affine warp, and placement on a canvas.

- ``rotate``, ``translate`` and ``spatial`` (rotation × translation) follow Engstrom et al. 2019,
  "Exploring the Landscape of Spatial Robustness" (arXiv:1712.02779): the image is rotated about its
  centre and translated, sampled bilinearly, and pixels that come from outside the image are black
  (their code pads with a constant). One affine map per image, all images in one batched gather.
  Conventions: x to the right, y down, the centre at ((W−1)/2, (H−1)/2); a positive angle turns the
  content counter-clockwise on screen (as PIL and torchvision do); a positive (dx, dy) moves the
  content right and down. Output pixel p shows input point q = c + A⁻¹(p − c − t).
  Rotation by 0 and translation by a whole number of pixels are exact (no interpolation error).
- ``canvas-translate`` follows Azulay & Weiss 2019, "Why do deep convolutional networks generalize so
  poorly to small image transformations?" (arXiv:1805.12177): the image is shrunk by ``scale``
  (antialiased bilinear) and placed on a canvas of the input's size at a whole-pixel offset from the
  centre, the rest of the canvas black (``zero``) or the object's mirror image (``reflect``), so the
  object moves without being resampled again and stays whole while |offset| ≤ (1 − scale)·size / 2.

Example:
    >>> import torch
    >>> from shiftlab.shifts import TRANSFORMS
    >>> from shiftlab.shifts.spatial import TranslateArgs
    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 1, 1] = 1.0
    >>> TRANSFORMS.get("translate")(x, TranslateArgs((1.0, 1.0), (0.0, 0.0)), torch.Generator())[0, 0]
    tensor([[0., 0., 0.],
            [0., 0., 1.],
            [0., 0., 0.]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from shiftlab.core.errors import UserError
from shiftlab.shifts.transforms import TransformMeta, check_range, register, uniform

ENGSTROM = "Engstrom et al. 2019"
ENGSTROM_ARXIV = "1712.02779"
MAX_ROTATION = 30.0
"""Engstrom et al.'s rotation limit (degrees)."""
MAX_TRANSLATION_FRACTION = 3.0 / 32.0
"""Engstrom et al.'s translation limit, 3 px at CIFAR's 32 px, as a fraction of the image side."""

Fill = Literal["zero", "reflect"]
FILLS: tuple[str, ...] = ("zero", "reflect")


# ---------------------------------------------------------------------------------------------
# the affine warp


@dataclass(frozen=True, slots=True)
class AffineParams:
    """One affine map per image: p − c = A (q − c) + t.

    Args:
        matrix: N×2×2 float64, the linear part A acting on (x, y).
        shift: N×2 float64, the translation t = (dx, dy) in pixels.
    """

    matrix: torch.Tensor
    shift: torch.Tensor


def rotation_matrices(degrees: torch.Tensor) -> torch.Tensor:
    """N×2×2 matrices turning content counter-clockwise on screen (y down) by ``degrees``."""
    theta = degrees.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)


def affine_params(degrees: torch.Tensor | None = None, dx: torch.Tensor | None = None, dy: torch.Tensor | None = None,
                  scale: torch.Tensor | None = None, shear: torch.Tensor | None = None) -> AffineParams:
    """Per-image params from rotation angles (degrees), translations (pixels), zoom factors (> 1 enlarges
    the content) and x-shear angles (degrees: a point moves right by tan(shear) times its height above
    the centre); every argument is a length-N tensor or None (identity). The map is
    shear ∘ scale ∘ rotation, then the translation."""
    given = [v for v in (degrees, dx, dy, scale, shear) if v is not None]
    if not given:
        raise ValueError("affine_params needs at least one per-image tensor")
    n, device = len(given[0]), given[0].device
    def f64(v: torch.Tensor) -> torch.Tensor:
        return v.to(device=device, dtype=torch.float64)

    identity = torch.eye(2, dtype=torch.float64, device=device).expand(n, 2, 2)
    matrix = identity.clone()
    if degrees is not None:
        matrix = rotation_matrices(degrees.to(device))
    if scale is not None:
        matrix = matrix * f64(scale).view(n, 1, 1)
    if shear is not None:
        shear_matrix = identity.clone()
        shear_matrix[:, 0, 1] = -torch.tan(f64(shear) * (math.pi / 180.0))
        matrix = shear_matrix @ matrix
    zero = torch.zeros(n, dtype=torch.float64, device=device)
    shift = torch.stack([zero if dx is None else f64(dx), zero if dy is None else f64(dy)], -1)
    return AffineParams(matrix, shift)


def bilinear_zero_fill(x: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """x sampled at source points (sx, sy) (N×H'×W' float64 pixel coordinates), bilinearly, with black
    outside the image. A point on the pixel grid returns that pixel exactly."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1)).reshape(n, c, (h + 2) * (w + 2))  # a black border to clamp onto
    x0, y0 = torch.floor(sx), torch.floor(sy)
    fx, fy = (sx - x0).to(x.dtype).unsqueeze(1), (sy - y0).to(x.dtype).unsqueeze(1)
    out_shape = (n, c, *sx.shape[1:])

    def at(iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        index = (iy.clamp(0, h + 1).long() * (w + 2) + ix.clamp(0, w + 1).long()).view(n, 1, -1)
        return padded.gather(2, index.expand(n, c, index.shape[-1])).view(out_shape)

    top = at(y0 + 1, x0 + 1) * (1 - fx) + at(y0 + 1, x0 + 2) * fx
    bottom = at(y0 + 2, x0 + 1) * (1 - fx) + at(y0 + 2, x0 + 2) * fx
    return top * (1 - fy) + bottom * fy


def source_points(params: AffineParams, height: int, width: int, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sx, sy), N×H×W float64: where each output pixel reads the input (q = c + A⁻¹(p − c − t))."""
    inverse = torch.linalg.inv(params.matrix.to(device))
    shift = params.shift.to(device)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    py, px = torch.meshgrid(torch.arange(height, dtype=torch.float64, device=device),
                            torch.arange(width, dtype=torch.float64, device=device), indexing="ij")
    u = (px - cx).unsqueeze(0) - shift[:, 0].view(-1, 1, 1)
    v = (py - cy).unsqueeze(0) - shift[:, 1].view(-1, 1, 1)
    a, b = inverse[:, 0, 0].view(-1, 1, 1), inverse[:, 0, 1].view(-1, 1, 1)
    d, e = inverse[:, 1, 0].view(-1, 1, 1), inverse[:, 1, 1].view(-1, 1, 1)
    return cx + (a * u + b * v), cy + (d * u + e * v)


def apply_affine(x: torch.Tensor, params: AffineParams) -> torch.Tensor:
    """Every image warped by its own affine map (bilinear, black outside)."""
    if params.matrix.shape[0] != len(x):
        raise UserError(f"affine params are for {params.matrix.shape[0]} images, got {len(x)}")
    sx, sy = source_points(params, x.shape[2], x.shape[3], x.device)
    return bilinear_zero_fill(x, sx, sy)


# ---------------------------------------------------------------------------------------------
# rotate, translate, spatial


@dataclass(frozen=True, slots=True)
class RotateArgs:
    """A rotation angle drawn uniformly from ``degrees`` = (low, high) per image (low == high: fixed)."""

    degrees: tuple[float, float] = (-MAX_ROTATION, MAX_ROTATION)

    def __post_init__(self) -> None:
        check_range(self.degrees, "rotate degrees")


@dataclass(frozen=True, slots=True)
class TranslateArgs:
    """A translation drawn uniformly per image: dx from ``dx`` and dy from ``dy`` (pixels, (low, high))."""

    dx: tuple[float, float] = (-3.0, 3.0)
    dy: tuple[float, float] = (-3.0, 3.0)

    def __post_init__(self) -> None:
        check_range(self.dx, "translate dx")
        check_range(self.dy, "translate dy")


@dataclass(frozen=True, slots=True)
class SpatialArgs:
    """Rotation and translation together (Engstrom et al. 2019): angle, dx and dy drawn uniformly per image."""

    degrees: tuple[float, float] = (-MAX_ROTATION, MAX_ROTATION)
    dx: tuple[float, float] = (-3.0, 3.0)
    dy: tuple[float, float] = (-3.0, 3.0)

    def __post_init__(self) -> None:
        check_range(self.degrees, "spatial degrees")
        check_range(self.dx, "spatial dx")
        check_range(self.dy, "spatial dy")


def sample_rotate(shape: tuple[int, ...], args: RotateArgs, g: torch.Generator) -> AffineParams:
    return affine_params(degrees=uniform((shape[0],), args.degrees, g))


def sample_translate(shape: tuple[int, ...], args: TranslateArgs, g: torch.Generator) -> AffineParams:
    dx = uniform((shape[0],), args.dx, g)
    return affine_params(dx=dx, dy=uniform((shape[0],), args.dy, g))


def sample_spatial(shape: tuple[int, ...], args: SpatialArgs, g: torch.Generator) -> AffineParams:
    degrees = uniform((shape[0],), args.degrees, g)
    dx = uniform((shape[0],), args.dx, g)
    return affine_params(degrees=degrees, dx=dx, dy=uniform((shape[0],), args.dy, g))


def engstrom_limits(height: int, width: int) -> tuple[float, float, float]:
    """(max rotation in degrees, max dx, max dy in pixels): ±30° and ±3 px at 32 px, scaled to the image."""
    return MAX_ROTATION, MAX_TRANSLATION_FRACTION * width, MAX_TRANSLATION_FRACTION * height


def linspace_values(limit: float, count: int) -> list[float]:
    """``numpy.linspace(-limit, limit, count)`` as floats (Engstrom et al.'s grid axis; count 1 gives [−limit]
    as numpy does, so a one-point axis is asked for as limit 0)."""
    if count < 1:
        raise UserError(f"a grid axis needs at least one value, got {count}")
    if count == 1:
        return [-float(limit)]
    step = 2.0 * limit / (count - 1)
    return [-limit + i * step if i < count - 1 else float(limit) for i in range(count)]


def engstrom_grid(max_rotation: float, max_dx: float, max_dy: float, rotations: int = 5,
                  translations: int = 5) -> list[tuple[float, float, float]]:
    """The exhaustive grid of Engstrom et al.'s code: every (angle, dx, dy) of ``rotations`` angles and
    ``translations`` × ``translations`` shifts, each axis ``linspace(-limit, limit, count)`` (their
    ``grid_granularity``; the released configuration uses 31 angles, the issue's default 5)."""
    angles = linspace_values(max_rotation, rotations)
    xs, ys = linspace_values(max_dx, translations), linspace_values(max_dy, translations)
    return [(a, dx, dy) for a in angles for dx in xs for dy in ys]


# ---------------------------------------------------------------------------------------------
# canvas-translate


@dataclass(frozen=True, slots=True)
class CanvasArgs:
    """The image shrunk by ``scale`` and placed at a whole-pixel offset (dx, dy) from the centre, each drawn
    uniformly from the integers of its (low, high) range; ``fill`` is "zero" or "reflect"."""

    scale: float = 0.75
    dx: tuple[int, int] = (-3, 3)
    dy: tuple[int, int] = (-3, 3)
    fill: str = "zero"

    def __post_init__(self) -> None:
        if not 0.0 < float(self.scale) <= 1.0:
            raise UserError(f"canvas scale must be in (0, 1], got {self.scale!r}")
        for what, (low, high) in (("dx", self.dx), ("dy", self.dy)):
            if int(low) != low or int(high) != high or low > high:
                raise UserError(f"canvas {what} must be an integer range (low, high), got {(low, high)!r}")
        if self.fill not in FILLS:
            raise UserError(f"canvas fill must be one of {', '.join(FILLS)}, got {self.fill!r}")


@dataclass(frozen=True, slots=True)
class CanvasParams:
    """Per-image whole-pixel offsets (N×2 int64, (dx, dy)) of the shrunk image on the canvas."""

    offset: torch.Tensor
    scale: float
    fill: str


def sample_canvas(shape: tuple[int, ...], args: CanvasArgs, g: torch.Generator) -> CanvasParams:
    n = shape[0]
    parts = []
    for low, high in (args.dx, args.dy):
        if low == high:
            parts.append(torch.full((n,), int(low), dtype=torch.int64, device=g.device))
        else:
            parts.append(torch.randint(int(low), int(high) + 1, (n,), generator=g, device=g.device))
    return CanvasParams(torch.stack(parts, -1), float(args.scale), args.fill)


def object_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The shrunk image's size on the canvas: round(scale · side), at least 1."""
    return max(1, round(scale * height)), max(1, round(scale * width))


def shrink(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The images resized to ``object_size`` (antialiased bilinear; unchanged at scale 1)."""
    h, w = object_size(x.shape[2], x.shape[3], scale)
    if (h, w) == tuple(x.shape[2:]):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices folded into [0, size) by mirroring without repeating the edge (numpy's "reflect")."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    folded = torch.remainder(index, period)
    return torch.where(folded < size, folded, period - folded)


def apply_canvas(x: torch.Tensor, params: CanvasParams) -> torch.Tensor:
    """Every image shrunk and placed at its own offset on a canvas of the input's size."""
    n, c, height, width = x.shape
    if params.offset.shape[0] != n:
        raise UserError(f"canvas params are for {params.offset.shape[0]} images, got {n}")
    obj = shrink(x, params.scale)
    h, w = obj.shape[2], obj.shape[3]
    offset = params.offset.to(x.device)
    top = (height - h) // 2 + offset[:, 1]
    left = (width - w) // 2 + offset[:, 0]
    rows = torch.arange(height, device=x.device).view(1, -1) - top.view(-1, 1)  # N×H object rows
    cols = torch.arange(width, device=x.device).view(1, -1) - left.view(-1, 1)  # N×W object columns
    if params.fill == "reflect":
        inside_rows, inside_cols = torch.ones_like(rows, dtype=torch.bool), torch.ones_like(cols, dtype=torch.bool)
        rows, cols = reflect_index(rows, h), reflect_index(cols, w)
    else:
        inside_rows, inside_cols = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    picked = obj[torch.arange(n, device=x.device).view(n, 1, 1), :, rows.view(n, height, 1), cols.view(n, 1, width)]
    mask = (inside_rows.view(n, height, 1) & inside_cols.view(n, 1, width)).unsqueeze(-1)
    return (picked * mask.to(x.dtype)).permute(0, 3, 1, 2).contiguous()


def canvas_reach(height: int, width: int, scale: float) -> tuple[int, int]:
    """The largest whole-pixel offsets (dx, dy) that keep the whole shrunk image on the canvas."""
    h, w = object_size(height, width, scale)
    return (width - w) // 2, (height - h) // 2


register("rotate", RotateArgs, sample_rotate, apply_affine,
         TransformMeta("spatial", "rotation about the centre by a uniform angle (bilinear, black fill)", ENGSTROM,
                       ENGSTROM_ARXIV, RotateArgs()))
register("translate", TranslateArgs, sample_translate, apply_affine,
         TransformMeta("spatial", "translation by uniform (dx, dy) pixels (bilinear, black fill)", ENGSTROM,
                       ENGSTROM_ARXIV, TranslateArgs()))
register("spatial", SpatialArgs, sample_spatial, apply_affine,
         TransformMeta("spatial", "rotation × translation in one affine warp (Engstrom et al.'s attack space)",
                       ENGSTROM, ENGSTROM_ARXIV, SpatialArgs()))
register("canvas-translate", CanvasArgs, sample_canvas, apply_canvas,
         TransformMeta("spatial", "the image shrunk and placed at a whole-pixel offset on a canvas (zero or reflect fill)",
                       "Azulay & Weiss 2019", "1805.12177", CanvasArgs()))
