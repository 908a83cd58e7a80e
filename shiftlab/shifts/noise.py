"""Noise corruptions of Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations" (arXiv:1903.12261): gaussian, shot (Poisson), impulse
(salt-and-pepper) and the extra speckle noise. All are per-pixel, per-channel and independent.

Example:
    >>> import torch
    >>> from shiftlab.shifts import SHIFTS
    >>> x = torch.full((1, 1, 2, 2), 0.5)
    >>> SHIFTS.get("gaussian_noise")(x, 3, torch.Generator().manual_seed(0)).shape
    torch.Size([1, 1, 2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.shifts.base import ShiftMeta, register
from shiftlab.shifts.tables import params as table_params


@dataclass(frozen=True, slots=True)
class AdditiveNoiseParams:
    """x' = x + noise (gaussian) or x + x·noise (speckle); noise is N×C×H×W float32."""

    noise: torch.Tensor
    multiplicative: bool


def _gaussian(shape: tuple[int, ...], scale: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) * scale


def sample_gaussian_noise(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> AdditiveNoiseParams:
    return AdditiveNoiseParams(_gaussian(shape, table_params("gaussian_noise", table, severity), g), False)


def sample_speckle_noise(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> AdditiveNoiseParams:
    return AdditiveNoiseParams(_gaussian(shape, table_params("speckle_noise", table, severity), g), True)


def apply_additive_noise(x: torch.Tensor, p: AdditiveNoiseParams) -> torch.Tensor:
    noise = p.noise.to(device=x.device, dtype=x.dtype)
    return x + x * noise if p.multiplicative else x + noise


@dataclass(frozen=True, slots=True)
class ShotNoiseParams:
    """x' = Poisson(x·rate)/rate; ``seed`` feeds the Poisson draw (it depends on x, so it is drawn in apply
    from a generator seeded here: apply stays a pure function of (x, params))."""

    rate: float
    seed: int


def sample_shot_noise(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> ShotNoiseParams:
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())
    return ShotNoiseParams(float(table_params("shot_noise", table, severity)), seed)


def apply_shot_noise(x: torch.Tensor, p: ShotNoiseParams) -> torch.Tensor:
    g = torch.Generator(device=x.device).manual_seed(p.seed)
    return torch.poisson(x * p.rate, generator=g) / p.rate


@dataclass(frozen=True, slots=True)
class ImpulseNoiseParams:
    """skimage ``random_noise(mode='s&p', salt_vs_pepper=0.5)``: each value flips with probability
    ``amount``, to 1 (salt) or 0 (pepper) with equal odds. Masks are N×C×H×W bool.

    One uniform draw u per value gives both decisions (salt: u < amount/2, pepper: amount/2 ≤ u < amount),
    the same joint distribution as skimage's two independent draws at half the random numbers."""

    salt: torch.Tensor
    pepper: torch.Tensor


def sample_impulse_noise(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> ImpulseNoiseParams:
    amount = float(table_params("impulse_noise", table, severity))
    u = torch.rand(shape, generator=g, device=g.device)
    salt = u < amount / 2
    return ImpulseNoiseParams(salt, (u < amount) ^ salt)


def apply_impulse_noise(x: torch.Tensor, p: ImpulseNoiseParams) -> torch.Tensor:
    return x.masked_fill(p.salt.to(x.device), 1.0).masked_fill_(p.pepper.to(x.device), 0.0)


register("gaussian_noise", sample_gaussian_noise, apply_additive_noise, ShiftMeta("noise"), chunked=True)
register("shot_noise", sample_shot_noise, apply_shot_noise, ShiftMeta("noise"))
register("impulse_noise", sample_impulse_noise, apply_impulse_noise, ShiftMeta("noise"), chunked=True)
register("speckle_noise", sample_speckle_noise, apply_additive_noise, ShiftMeta("extra"), chunked=True)
