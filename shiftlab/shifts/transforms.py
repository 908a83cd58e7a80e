"""Parametric shifts: the contract of the spatial and frequency transforms (rotation, translation,
canvas placement, Fourier-basis noise).

These keep design contract 2 (pure, seeded, batched, [0, 1] in and out, no loop over images, CPU and
GPU) and the two phases of the corruptions (``sample_params`` draws everything random from an explicit
generator into a typed params dataclass, ``apply`` is pure), but they live in their own registry,
``TRANSFORMS``, not in ``SHIFTS``: a corruption is named by a severity 1..5 and a parameter table per
image scale, and every consumer of ``SHIFTS`` (the corruption grid, ``--corruptions``, near-OOD sets,
mCE, ``shiftlab corrupt``) iterates it as such. A transform is named by physical quantities instead
(degrees, pixels, a spatial frequency and an L2 norm): its arguments are a typed dataclass (``args``),
from which ``sample_params`` draws per-image params, and params built directly (a grid of rotations,
a set of basis frequencies) are applied the same way, so a suite can batch many transforms of one
image in one call.

Papers: Engstrom et al. 2019, "Exploring the Landscape of Spatial Robustness" (arXiv:1712.02779);
Azulay & Weiss 2019, "Why do deep convolutional networks generalize so poorly to small image
transformations?" (arXiv:1805.12177); Yin et al. 2019, "A Fourier Perspective on Model Robustness in
Computer Vision" (arXiv:1906.08988).

Example:
    >>> import torch
    >>> from shiftlab.shifts import TRANSFORMS
    >>> from shiftlab.shifts.spatial import RotateArgs
    >>> x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.equal(TRANSFORMS.get("rotate")(x, RotateArgs((0.0, 0.0)), torch.Generator()), x))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.registry import Registry

TransformFamily = Literal["spatial", "frequency"]
ArgsT = TypeVar("ArgsT")
ParamsT = TypeVar("ParamsT")


@dataclass(frozen=True, slots=True)
class TransformMeta:
    """Registry metadata of a transform.

    Args:
        family: "spatial" (the image is resampled) or "frequency" (a Fourier component is added).
        description: one line for listings.
        paper: authors and year; arxiv: the arXiv id.
        example: an args value the registry-parametrised contract tests run the transform with.
        deterministic: the output does not depend on the generator for ``example``.
    """

    family: TransformFamily
    description: str
    paper: str
    arxiv: str
    example: Any
    deterministic: bool = False


@dataclass(frozen=True)
class Transform(Generic[ArgsT, ParamsT]):
    """A transform as two phases: ``sample_params(x, args, generator)`` and a pure ``apply(x, params)``.

    Calling it composes the two: ``transform(x, args, generator) -> x'``.

    Shape: x is N×C×H×W float in [0, 1]; the output has the same shape, dtype and device, in [0, 1].
    Params are dataclasses of tensors leading with the batch (one transform per image).
    """

    name: str
    args_type: type
    sampler: Callable[[tuple[int, ...], Any, torch.Generator], Any]
    applier: Callable[[torch.Tensor, Any], torch.Tensor]

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise UserError(f"{self.name} expects an N×C×H×W tensor, got "
                            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if not x.is_floating_point():
            raise UserError(f"{self.name} expects float images in [0, 1], got dtype {x.dtype}")

    def sample_params(self, x: torch.Tensor, args: ArgsT, generator: torch.Generator) -> ParamsT:
        """Draw every random quantity for the images ``x`` from ``generator`` (nothing else is random)."""
        self._check(x)
        if not isinstance(args, self.args_type):
            raise UserError(f"{self.name} takes {self.args_type.__name__} arguments, got {type(args).__name__}")
        return self.sampler(tuple(x.shape), args, generator)  # type: ignore[no-any-return]

    def apply(self, x: torch.Tensor, params: ParamsT) -> torch.Tensor:
        """Pure: the transformed images for ``params`` (clipped to [0, 1], dtype kept)."""
        self._check(x)
        return self.applier(x, params).clamp(0.0, 1.0).to(x.dtype)

    def __call__(self, x: torch.Tensor, args: ArgsT, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.sample_params(x, args, generator))


TRANSFORMS: Registry[Transform[Any, Any], TransformMeta] = Registry("transform")


def register(name: str, args_type: type, sampler: Callable[[tuple[int, ...], Any, torch.Generator], Any],
             applier: Callable[[torch.Tensor, Any], torch.Tensor], meta: TransformMeta) -> Transform[Any, Any]:
    """Register a transform under ``name`` (a duplicate raises)."""
    if not isinstance(meta.example, args_type):
        raise ValueError(f"{name}: the example arguments must be a {args_type.__name__}")
    transform: Transform[Any, Any] = Transform(name, args_type, sampler, applier)
    TRANSFORMS.add(name, transform, meta)
    return transform


def check_range(low_high: tuple[float, float], what: str) -> tuple[float, float]:
    """A (low, high) range of finite numbers with low ≤ high."""
    low, high = (float(v) for v in low_high)
    if not (torch.isfinite(torch.tensor([low, high])).all() and low <= high):
        raise UserError(f"{what} must be a finite range (low, high) with low <= high, got {low_high!r}")
    return low, high


def uniform(shape: tuple[int, ...], low_high: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """U[low, high] float64 numbers of ``shape`` on the generator's device (exactly ``low`` when low == high)."""
    low, high = low_high
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * u if high > low else torch.full(shape, low, dtype=torch.float64,
                                                                  device=generator.device)


def cat_params(parts: list[ParamsT]) -> ParamsT:
    """Params of several batches joined along the batch (tensor fields concatenated; every other field
    must be the same in all parts), so many transforms of the same images run as one batch."""
    import dataclasses

    if not parts:
        raise ValueError("cat_params needs at least one params value")
    first = parts[0]
    joined: dict[str, Any] = {}
    for f in dataclasses.fields(first):  # type: ignore[arg-type]
        values = [getattr(p, f.name) for p in parts]
        if isinstance(values[0], torch.Tensor):
            joined[f.name] = torch.cat(values)
        elif any(v != values[0] for v in values[1:]):
            raise ValueError(f"cat_params: field {f.name} differs between parts ({values[0]!r} vs another)")
        else:
            joined[f.name] = values[0]
    return type(first)(**joined)


def repeat_images(x: torch.Tensor, times: int) -> torch.Tensor:
    """``times`` copies of the batch, one after the other (the layout ``cat_params`` of ``times`` params of
    the batch expects): (times·N)×C×H×W."""
    return x.repeat(times, 1, 1, 1)
