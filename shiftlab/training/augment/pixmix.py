"""PixMix (Hendrycks et al. 2022, "PixMix: Dreamlike Pictures Comprehensively Improve Safety
Measures", arXiv:2112.05135): repeatedly mix the image, additively or multiplicatively, with
either an augmented copy of itself or a structurally complex picture.

Deviation: the paper mixes with a downloaded set of fractals and feature visualisations; here the
pictures are generated procedurally by seeded, batched code (no downloaded images): spectral
``1/f^a`` noise with random exponent and multi-octave oriented-sinusoid interference patterns
folded through ``sin`` (fractal-like contours).
"""

from __future__ import annotations

import math

import torch

from shiftlab.training.augment.ops import AUGMIX_OPS, apply_random_ops


def _normalise(p: torch.Tensor) -> torch.Tensor:
    lo = p.amin((2, 3), keepdim=True)
    hi = p.amax((2, 3), keepdim=True)
    return (p - lo) / (hi - lo).clamp_min(1e-6)


def spectral_noise(n: int, c: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """Random-phase noise with power spectrum ``1/f^(2a)``, ``a ~ U(1, 3)`` per picture."""
    dev = generator.device
    fy = torch.fft.fftfreq(h, device=dev).view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=dev).view(1, -1)
    f = torch.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    a = 1 + 2 * torch.rand((n, 1, 1, 1), generator=generator, device=dev)
    amp = f.unsqueeze(0).unsqueeze(0) ** (-a)
    amp[..., 0, 0] = 0.0
    re = torch.randn((n, c, h, w // 2 + 1), generator=generator, device=dev)
    im = torch.randn((n, c, h, w // 2 + 1), generator=generator, device=dev)
    return _normalise(torch.fft.irfft2(torch.complex(re, im) * amp, s=(h, w)))


def interference(n: int, c: int, h: int, w: int, generator: torch.Generator, octaves: int = 4) -> torch.Tensor:
    """Sum of oriented sinusoids over octaves (amplitude halving, frequency doubling), folded by ``sin``."""
    dev = generator.device
    ys = torch.linspace(0, 1, h, device=dev).view(1, 1, -1, 1)
    xs = torch.linspace(0, 1, w, device=dev).view(1, 1, 1, -1)
    base = 1 + 3 * torch.rand((n, c, 1, 1), generator=generator, device=dev)
    field = torch.zeros(n, c, h, w, device=dev)
    for o in range(octaves):
        angle = 2 * math.pi * torch.rand((n, c, 1, 1), generator=generator, device=dev)
        phase = 2 * math.pi * torch.rand((n, c, 1, 1), generator=generator, device=dev)
        freq = base * 2**o
        field = field + 0.5**o * torch.sin(2 * math.pi * freq * (torch.cos(angle) * xs + torch.sin(angle) * ys) + phase)
    fold = 1 + 3 * torch.rand((n, c, 1, 1), generator=generator, device=dev)
    return _normalise(torch.sin(fold * field))


def procedural_pictures(n: int, c: int, h: int, w: int, generator: torch.Generator) -> torch.Tensor:
    """n pictures N×C×H×W in [0, 1], half spectral noise and half interference patterns (drawn per picture)."""
    kind = torch.rand((n, 1, 1, 1), generator=generator, device=generator.device) < 0.5
    return torch.where(kind, spectral_noise(n, c, h, w, generator), interference(n, c, h, w, generator))


def _mixing_weights(n: int, beta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PixMix's (a, b): (Beta(beta,1), Beta(1,beta)) or (1 + Beta(1,beta), −Beta(1,beta)), equally likely."""
    dev = generator.device
    u = torch.rand((3, n), generator=generator, device=dev).clamp_min(1e-12)
    beta_b1 = u[0] ** (1 / beta)  # Beta(beta, 1)
    beta_1b = 1 - u[1] ** (1 / beta)  # Beta(1, beta)
    first = torch.rand(n, generator=generator, device=dev) < 0.5
    a = torch.where(first, beta_b1, 1 + beta_1b)
    b = torch.where(first, beta_1b, -beta_1b)
    del u
    return a.view(-1, 1, 1, 1), b.view(-1, 1, 1, 1)


def pixmix(x: torch.Tensor, generator: torch.Generator, k: int = 4, beta: float = 3.0,
           severity: float = 3.0) -> torch.Tensor:
    """PixMix with procedural pictures.

    Args:
        x: N×C×H×W in [0, 1].
        k: at most k mixing rounds (per-sample count ~ U{0..k}).
        beta: mixing-weight concentration (3).
        severity: AugMix-op severity for the augmented copies (3).
    """
    n, c, h, w = x.shape
    dev = generator.device
    everyone = torch.ones(n, dtype=torch.bool, device=dev)
    start_aug = torch.rand(n, generator=generator, device=dev) < 0.5
    mixed = torch.where(start_aug.view(-1, 1, 1, 1), apply_random_ops(x, AUGMIX_OPS, severity, everyone, generator), x)
    rounds = torch.randint(0, k + 1, (n,), generator=generator, device=dev)
    for r in range(k):
        active = (rounds > r).view(-1, 1, 1, 1)
        use_picture = (torch.rand(n, generator=generator, device=dev) < 0.5).view(-1, 1, 1, 1)
        partner = torch.where(use_picture, procedural_pictures(n, c, h, w, generator).to(x.dtype),
                              apply_random_ops(x, AUGMIX_OPS, severity, everyone, generator))
        a, b = _mixing_weights(n, beta, generator)
        additive = ((a * (2 * mixed - 1) + b * (2 * partner - 1)) + 1) / 2
        multiplicative = ((2 * mixed).clamp_min(1e-12) ** a * (2 * partner).clamp_min(1e-12) ** b) / 2
        use_add = (torch.rand(n, generator=generator, device=dev) < 0.5).view(-1, 1, 1, 1)
        step = torch.where(use_add, additive, multiplicative).clamp(0, 1)
        mixed = torch.where(active, step, mixed)
    return mixed
