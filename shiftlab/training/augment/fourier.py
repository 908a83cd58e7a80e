"""FourierMix (Sun et al. 2021, "Certified Adversarial Defenses Meet Out-of-Distribution Corruptions:
Benchmarking Robustness and Simple Baselines", arXiv:2112.00659): random perturbations of the Fourier
amplitude and phase spectra, in ``width`` chains mixed as in AugMix.

One chain, per image: X = FFT2(x) per channel; the amplitude becomes |X|·(1 + s·u·c) and the phase
∠X + (v − ½)·π/d, with u, v ~ U(0, 1) per frequency, a sign s = ±1 per image, and severities
c ∈ {0.2, …, 0.6}, d ∈ {6, …, 2} drawn per image (the authors' tables); the image is |IFFT2| of the
result, clipped to [0, 1]. Chains are mixed with Dirichlet(1) weights and the mixture with the
original by m ~ Beta(1, 1). The authors' code also has a spatial (affine) branch, switched off in its
final version; it is left out here.
"""

from __future__ import annotations

import math

import torch

from shiftlab.training.sampling import sample_beta, sample_dirichlet

AMPLITUDE_SEVERITIES = (0.2, 0.3, 0.4, 0.5, 0.6)
PHASE_DIVISORS = (6.0, 5.0, 4.0, 3.0, 2.0)


def fourier_perturb(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One FourierMix chain: amplitude scaled and phase shifted at random, per image and frequency.

    Shape: N×C×H×W in [0, 1] → same.
    """
    n = len(x)
    dev = generator.device
    table_c = torch.tensor(AMPLITUDE_SEVERITIES, device=dev)
    table_d = torch.tensor(PHASE_DIVISORS, device=dev)
    c = table_c[torch.randint(0, len(AMPLITUDE_SEVERITIES), (n,), generator=generator, device=dev)]
    d = table_d[torch.randint(0, len(PHASE_DIVISORS), (n,), generator=generator, device=dev)]
    sign = torch.randint(0, 2, (n,), generator=generator, device=dev).float() * 2 - 1
    u = torch.rand(x.shape, generator=generator, device=dev)
    v = torch.rand(x.shape, generator=generator, device=dev)
    scale = 1.0 + (sign * c).view(-1, 1, 1, 1) * u
    shift = (v - 0.5) * (math.pi / d).view(-1, 1, 1, 1)
    spectrum = torch.fft.fft2(x.float())
    amplitude = spectrum.abs() * scale.to(x.device)
    phase = spectrum.angle() + shift.to(x.device)
    out = torch.fft.ifft2(torch.polar(amplitude, phase)).abs()
    return out.clamp(0, 1).to(x.dtype)


def fouriermix(x: torch.Tensor, generator: torch.Generator, width: int = 3, alpha: float = 1.0) -> torch.Tensor:
    """FourierMix: ``width`` chains mixed with Dirichlet(alpha) weights, then with the original by
    m ~ Beta(alpha, alpha), per image. Shape: N×C×H×W in [0, 1] → same."""
    n = len(x)
    weights = sample_dirichlet(n, width, alpha, generator).to(x.device, x.dtype)
    m = sample_beta((n,), alpha, alpha, generator).to(x.device, x.dtype).view(-1, 1, 1, 1)
    mix = torch.zeros_like(x)
    for i in range(width):
        mix = mix + weights[:, i].view(-1, 1, 1, 1) * fourier_perturb(x, generator)
    return (m * mix + (1 - m) * x).clamp(0, 1)
