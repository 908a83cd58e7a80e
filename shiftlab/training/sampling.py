"""Seeded random draws that ``torch.distributions`` cannot take a generator for: Gamma, Beta, Dirichlet.

Gamma uses Marsaglia & Tsang (2000, "A simple method for generating gamma variables") with
vectorised rejection (several candidates per draw, the first accepted one is kept) and the
``Gamma(a) = Gamma(a + 1) · U^(1/a)`` boost for a < 1; Beta and Dirichlet are normalised Gammas.
Every draw takes an explicit ``torch.Generator`` and runs on its device.
"""

from __future__ import annotations

import torch

_CANDIDATES = 12  # acceptance is > 95 % per candidate, so all 12 fail with probability < 1e-15


def sample_gamma(shape: tuple[int, ...], alpha: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma(alpha, 1) draws of ``shape`` (alpha a float or a tensor broadcastable to ``shape``)."""
    device = generator.device
    a = torch.as_tensor(alpha, dtype=torch.float32, device=device).expand(shape)
    if bool((a <= 0).any()):
        raise ValueError(f"gamma concentration must be positive, got {alpha}")
    boosted = a + (a < 1).float()
    d = (boosted - 1.0 / 3.0).unsqueeze(0)
    c = 1.0 / torch.sqrt(9.0 * d)
    z = torch.randn((_CANDIDATES, *shape), generator=generator, device=device)
    u = torch.rand((_CANDIDATES, *shape), generator=generator, device=device)
    v = (1.0 + c * z) ** 3
    ok = (v > 0) & (torch.log(u.clamp_min(1e-30)) < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-30)))
    first = torch.argmax(ok.int(), dim=0, keepdim=True)
    values = torch.gather(d * v, 0, first).squeeze(0)
    values = torch.where(ok.any(0), values, d.squeeze(0))  # never reached in practice; keeps the draw finite
    boost = torch.rand(shape, generator=generator, device=device).clamp_min(1e-30) ** (1.0 / a)
    return torch.where(a < 1, values * boost, values)


def sample_beta(shape: tuple[int, ...], a: float, b: float, generator: torch.Generator) -> torch.Tensor:
    """Beta(a, b) draws of ``shape``."""
    x = sample_gamma(shape, a, generator)
    y = sample_gamma(shape, b, generator)
    return x / (x + y).clamp_min(1e-30)


def sample_dirichlet(n: int, k: int, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """n draws of a symmetric Dirichlet(alpha) over k components, n×k."""
    g = sample_gamma((n, k), alpha, generator)
    return g / g.sum(1, keepdim=True).clamp_min(1e-30)


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform(low, high) draws of ``shape`` on the generator's device."""
    return low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)


def randint(shape: tuple[int, ...], low: int, high: int, generator: torch.Generator) -> torch.Tensor:
    """Integers in [low, high) of ``shape`` on the generator's device."""
    return torch.randint(low, high, shape, generator=generator, device=generator.device)
