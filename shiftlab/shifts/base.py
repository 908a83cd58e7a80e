"""The shift contract: a registered, pure, seeded, batched ``fn(x, severity, generator, table=None)``.

Every corruption of Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations" (arXiv:1903.12261) is a :class:`Corruption`: ``sample_params`` draws
everything random from the explicit generator into a typed params dataclass, ``apply`` is pure.

Parameter tables: ``"cifar"`` (CIFAR-10-C, 32 px), ``"tiny"`` (Tiny-ImageNet-C, 64 px) and
``"imagenet"`` (ImageNet-C, 224 px). ``table=None`` picks by image size: max(H, W) ≤ 32 → cifar,
≤ 64 → tiny, else imagenet.

Grayscale (C = 1): channel-wise corruptions (noise, blur, fog, contrast, pixelate, jpeg, elastic,
zoom, glass, motion) act on the single channel. Colour-dependent ones (``rgb_only``: brightness,
saturate, frost, spatter) see the RGB-equivalent image (the gray channel repeated three times), are
applied as on RGB, and are converted back to luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601).
For brightness this equals imagecorruptions' gray rule (x + c); for saturate it differs (imagecorruptions
keeps the red channel); snow's gray term is the image itself, as in imagecorruptions.

On CPU, corruptions registered as ``chunked`` (each image corrupted independently, per-image params
leading with the batch) are applied to chunks of a few images (CPU_CHUNK values), so that their chains of
full-size passes stay in cache; this does not change the result (tested).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.identity import TABLES as TABLES  # re-exported by shiftlab.shifts
from shiftlab.core.identity import check_table, table_for_size
from shiftlab.core.registry import Registry

TableName = Literal["cifar", "tiny", "imagenet"]
Family = Literal["noise", "blur", "weather", "digital", "extra"]
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
LUMA = (0.299, 0.587, 0.114)
CPU_CHUNK = 1 << 19  # values per chunk when a chunked corruption runs on CPU (working set stays in cache)


@dataclass(frozen=True, slots=True)
class ShiftMeta:
    """Registry metadata of a shift.

    Args:
        family: "noise", "blur", "weather", "digital" (the 15 benchmark corruptions) or "extra".
        deterministic: True when the output does not depend on the generator.
        rgb_only: colour-dependent; grayscale input goes through the RGB-equivalent and back to luma.
        paper: authors and year; arxiv: the arXiv id.
        severities: the valid severities.
    """

    family: Family
    deterministic: bool = False
    rgb_only: bool = False
    paper: str = "Hendrycks & Dietterich 2019"
    arxiv: str = "1903.12261"
    severities: tuple[int, ...] = SEVERITIES

    @property
    def benchmark(self) -> bool:
        """One of the 15 corruptions that enter the mCE (the four extras do not)."""
        return self.family != "extra"


P = TypeVar("P")
Sampler = Callable[[tuple[int, ...], int, torch.Generator, str], Any]
Applier = Callable[[torch.Tensor, Any], torch.Tensor]
LevelRule = Callable[[torch.Tensor], torch.Tensor]
"""How [0, 1] floats become grey levels: N×C×H×W float -> N×H×W×C uint8 (the exporter's truncate or round)."""
Uint8Applier = Callable[[torch.Tensor, Any, LevelRule], torch.Tensor]


def round_levels(y: torch.Tensor) -> torch.Tensor:
    """The default grey-level rule: ⌊255·y + ½⌋, channels last."""
    return torch.mul(y, 255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def resolve_table(table: str | None, height: int, width: int) -> str:
    """The parameter table for an image size, or the one asked for (validated)."""
    return table_for_size(height, width) if table is None else check_table(table)


def check_severity(severity: int, name: str) -> int:
    if isinstance(severity, bool) or int(severity) != severity or not 1 <= int(severity) <= 5:
        raise UserError(f"severity of {name} must be an integer 1..5, got {severity!r}")
    return int(severity)


def to_luma(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W RGB -> N×1×H×W luma (BT.601)."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


@dataclass(frozen=True)
class Corruption(Generic[P]):
    """A corruption as two phases: ``sample_params`` (all randomness) and a pure ``apply``.

    Calling it composes the two: ``corruption(x, severity, generator, table=None) -> x'``.

    Shape: x is N×C×H×W (C = 1 or 3) float in [0, 1]; the output has the same shape, dtype and device.
    """

    name: str
    sampler: Sampler
    applier: Applier
    rgb_only: bool = False
    chunked: bool = False  # images are corrupted independently: on CPU, apply runs on chunks of images
    in_range: bool = False  # the applier's output is already in [0, 1] (no final clip)
    gray_applier: Applier | None = None  # rgb_only: closed form of luma(applier(gray stacked to RGB))
    uint8_applier: Uint8Applier | None = None  # N×H×W×C uint8 in and out, without the float round trip (apply_uint8)

    def _work_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        n, c, h, w = x.shape
        return (n, 3, h, w) if self.rgb_only and c == 1 else (n, c, h, w)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise UserError(f"{self.name} expects an N×C×H×W tensor with C in (1, 3), got "
                            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not x.is_floating_point():
            raise UserError(f"{self.name} expects float images in [0, 1], got dtype {x.dtype}")

    def sample_params(self, x: torch.Tensor, severity: int, generator: torch.Generator,
                      table: str | None = None) -> P:
        """Draw every random quantity for ``x`` from ``generator`` (nothing else is random)."""
        self._check(x)
        severity = check_severity(severity, self.name)
        tname = resolve_table(table, x.shape[2], x.shape[3])
        return self.sampler(self._work_shape(x), severity, generator, tname)  # type: ignore[no-any-return]

    def apply(self, x: torch.Tensor, params: P) -> torch.Tensor:
        """Pure: the corrupted images for ``params`` (clipped to [0, 1])."""
        self._check(x)
        gray_in = self.rgb_only and x.shape[1] == 1
        direct = gray_in and self.gray_applier is not None  # one channel in, one out: no RGB round trip
        applier = self.gray_applier if direct and self.gray_applier is not None else self.applier
        round_trip = gray_in and not direct  # through the RGB-equivalent and back to luma
        work = x.expand(-1, 3, -1, -1) if round_trip else x
        step = max(1, CPU_CHUNK // max(work[0].numel(), 1))
        if self.chunked and x.device.type == "cpu" and step < len(work):
            # every image is corrupted independently of the others, so chunks of a few images give the
            # same result, each chunk's chain of full-size passes staying in cache
            n = len(work)
            first = self._clipped(applier, work[:step], slice_params(params, n, 0, step), x)
            out = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
            out[:step] = first
            for start in range(step, n, step):
                out[start:start + step] = self._clipped(applier, work[start:start + step],
                                                        slice_params(params, n, start, start + step), x)
        else:
            out = self._clipped(applier, work, params, x)
        if round_trip:
            out = to_luma(out).clamp_(0.0, 1.0)
        return out.to(x.dtype)

    def _clipped(self, applier: Applier, work: torch.Tensor, params: P, x: torch.Tensor) -> torch.Tensor:
        out = applier(work, params)
        if self.in_range:
            return out
        # clip in place when the applier returned fresh memory (saves a full-size copy per call)
        fresh = not out._is_view() and out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
        return out.clamp_(0.0, 1.0) if fresh else out.clamp(0.0, 1.0)

    def __call__(self, x: torch.Tensor, severity: int, generator: torch.Generator,
                 table: str | None = None) -> torch.Tensor:
        return self.apply(x, self.sample_params(x, severity, generator, table))

    def apply_uint8(self, levels: torch.Tensor, params: P, to_levels: LevelRule = round_levels) -> torch.Tensor | None:
        """``apply`` on stored grey levels, for corruptions that can skip the float round trip: N×H×W×C uint8 in
        (channels last, as files store images), the same out, equal to ``to_levels(apply(levels / 255))`` —
        ``to_levels`` being the caller's rule for turning [0, 1] floats into levels (jpeg_compression's
        output is levels already; pixelate quantises its small image, then enlarges it in uint8). None for
        the others."""
        if self.uint8_applier is None:
            return None
        if levels.dtype != torch.uint8 or levels.ndim != 4 or levels.shape[-1] not in (1, 3):
            raise UserError(f"{self.name}.apply_uint8 expects N×H×W×C uint8 grey levels, got {levels.dtype} "
                            f"{tuple(levels.shape)}")
        return self.uint8_applier(levels, params, to_levels)


def slice_params(params: P, n: int, start: int, stop: int) -> P:
    """The params of images start..stop: every tensor field whose first dimension is the batch (n) is sliced.
    Only used for corruptions registered as ``chunked`` (their per-image params all lead with the batch)."""
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}  # type: ignore[arg-type]
    sliced = {k: v[start:stop] for k, v in fields.items() if isinstance(v, torch.Tensor) and v.ndim and len(v) == n}
    return dataclasses.replace(params, **sliced) if sliced else params  # type: ignore[type-var]


SHIFTS: Registry[Corruption[Any], ShiftMeta] = Registry("shift")


def register(name: str, sampler: Sampler, applier: Applier, meta: ShiftMeta, *, chunked: bool | None = None,
             in_range: bool = False, gray: Applier | None = None, uint8: Uint8Applier | None = None) -> Corruption[Any]:
    """Register a corruption under ``name`` (a duplicate raises).

    ``chunked`` (default: ``meta.deterministic``) declares that every image is corrupted independently and
    that per-image params are tensors leading with the batch, so ``apply`` may run on CPU in chunks of
    images; ``in_range`` declares that the applier's output never leaves [0, 1]; ``gray`` (rgb_only
    corruptions) is the closed form of the grayscale rule, luma of the corrupted RGB-equivalent, on
    N×1×H×W (its output is clipped like the applier's); ``uint8`` is the applier on N×H×W×C grey levels
    (``Corruption.apply_uint8``; not for rgb_only ones)."""
    if uint8 is not None and meta.rgb_only:
        raise ValueError(f"{name}: a uint8 applier works on the stored channels; rgb_only corruptions have none")
    corruption: Corruption[Any] = Corruption(name, sampler, applier, meta.rgb_only,
                                             chunked=meta.deterministic if chunked is None else chunked,
                                             in_range=in_range, gray_applier=gray, uint8_applier=uint8)
    SHIFTS.add(name, corruption, meta)
    return corruption


def benchmark_names() -> list[str]:
    """The 15 corruptions of the mCE, in registration order."""
    return [n for n in SHIFTS.names() if SHIFTS.meta(n).benchmark]


def apply_shift(name: str, x: torch.Tensor, severity: int, generator: torch.Generator,
                table: str | None = None) -> torch.Tensor:
    """Apply the registered shift ``name``."""
    return SHIFTS.get(name)(x, severity, generator, table)
