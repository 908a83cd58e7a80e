"""Fourier-basis noise: Yin et al. 2019, "A Fourier Perspective on Model Robustness in Computer
Vision" (arXiv:1906.08988).

The basis image U_{i,j} is the real image of unit L2 norm whose 2-D DFT is supported on the spatial
frequency (i, j) and its mirror (−i, −j): as in the authors' code (google-research,
``frequency_analysis``), the centred spectrum holds (1 + i)/2 at (i, j) and (1 − i)/2 at (−i, −j)
(1 at a frequency that is its own mirror), so U = Re(IDFT)·√(HW) = (cos θ − sin θ)/√(HW) with
θ = 2π(i·y/H + j·x/W). Frequencies are signed cycles per image: i ∈ [−⌊H/2⌋, H − 1 − ⌊H/2⌋] (row
index of the centred spectrum minus ⌊H/2⌋), likewise j. The perturbed image is x + r·v·U_{i,j}
clipped to [0, 1], with a random sign v ∈ {−1, +1} drawn independently per image and channel (their
``rand_flip``): every channel gets a perturbation of L2 norm r.

Example:
    >>> import torch
    >>> from shiftlab.shifts.fourier import fourier_basis
    >>> u = fourier_basis(8, 8, torch.tensor([[1, 2]]))
    >>> round(float(u.square().sum()), 6)
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from shiftlab.core.errors import UserError
from shiftlab.shifts.transforms import TransformMeta, register

YIN = "Yin et al. 2019"
YIN_ARXIV = "1906.08988"


def frequency_range(size: int) -> tuple[int, int]:
    """The signed frequencies along an axis of ``size`` pixels, (lowest, highest)."""
    return -(size // 2), size - 1 - size // 2


def mirror(k: int, size: int) -> int:
    """The frequency −k wrapped into ``frequency_range(size)``."""
    low, _ = frequency_range(size)
    return (-k - low) % size + low


def basis_frequencies(height: int, width: int, stride: int = 1) -> list[tuple[int, int]]:
    """One (i, j) of every mirror pair {(i, j), (−i, −j)} of the centred spectrum, row by row, keeping only
    frequencies that are multiples of ``stride`` (stride 1: all of them). U_{−i,−j} is U_{i,j} shifted by a
    quarter period (the same frequency pair and norm, cos θ + sin θ instead of cos θ − sin θ), so these
    cover every frequency pair once."""
    if stride < 1:
        raise UserError(f"the Fourier stride must be a positive integer, got {stride}")
    (ilow, ihigh), (jlow, jhigh) = frequency_range(height), frequency_range(width)
    out = []
    for i in range(ilow, ihigh + 1):
        for j in range(jlow, jhigh + 1):
            if i % stride or j % stride:
                continue
            if (i, j) <= (mirror(i, height), mirror(j, width)):
                out.append((i, j))
    return out


def fourier_basis(height: int, width: int, frequencies: torch.Tensor, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """K×H×W basis images U_{i,j} for ``frequencies`` (K×2 integer (i, j)); each real, of unit L2 norm."""
    freq = frequencies.to(device=device, dtype=torch.float64).view(-1, 2, 1, 1)
    y = torch.arange(height, dtype=torch.float64, device=freq.device).view(1, -1, 1)
    x = torch.arange(width, dtype=torch.float64, device=freq.device).view(1, 1, -1)
    theta = 2.0 * math.pi * (freq[:, 0] * y / height + freq[:, 1] * x / width)
    return ((torch.cos(theta) - torch.sin(theta)) / math.sqrt(height * width)).to(dtype)


@dataclass(frozen=True, slots=True)
class FourierArgs:
    """Fourier-basis noise at frequency (i, j) (signed cycles per image) with L2 norm ``norm`` per channel;
    ``random_sign``: a random sign per image and channel (Yin et al.), else +1."""

    i: int = 1
    j: int = 1
    norm: float = 4.0
    random_sign: bool = True

    def __post_init__(self) -> None:
        if int(self.i) != self.i or int(self.j) != self.j:
            raise UserError(f"Fourier frequencies must be integers, got ({self.i!r}, {self.j!r})")
        if not (math.isfinite(self.norm) and self.norm >= 0):
            raise UserError(f"the Fourier noise norm must be a non-negative number, got {self.norm!r}")


@dataclass(frozen=True, slots=True)
class FourierParams:
    """Per image: its frequency (N×2 int64), norm (N float64) and per-channel signs (N×C float32)."""

    frequency: torch.Tensor
    norm: torch.Tensor
    sign: torch.Tensor


def sample_fourier(shape: tuple[int, ...], args: FourierArgs, g: torch.Generator) -> FourierParams:
    n, c, h, w = shape
    ilow, ihigh = frequency_range(h)
    jlow, jhigh = frequency_range(w)
    if not (ilow <= args.i <= ihigh and jlow <= args.j <= jhigh):
        raise UserError(f"frequency ({args.i}, {args.j}) is outside the {h}×{w} spectrum "
                        f"([{ilow}, {ihigh}] × [{jlow}, {jhigh}])")
    if args.random_sign:
        sign = torch.randint(0, 2, (n, c), generator=g, device=g.device).to(torch.float32).mul_(2).sub_(1)
    else:
        sign = torch.ones(n, c, device=g.device)
    frequency = torch.tensor([[args.i, args.j]], dtype=torch.int64, device=g.device).expand(n, 2).clone()
    return FourierParams(frequency, torch.full((n,), float(args.norm), dtype=torch.float64, device=g.device), sign)


def apply_fourier(x: torch.Tensor, params: FourierParams) -> torch.Tensor:
    """x + norm · sign · U_{i,j} per image (each distinct frequency's basis computed once)."""
    n, c, h, w = x.shape
    if params.frequency.shape[0] != n or params.sign.shape != (n, c):
        raise UserError(f"Fourier params are for {params.frequency.shape[0]} images of "
                        f"{params.sign.shape[-1]} channels, got {n}×{c}")
    unique, index = torch.unique(params.frequency.to(x.device), dim=0, return_inverse=True)
    basis = fourier_basis(h, w, unique, x.dtype, x.device)[index]  # N×H×W
    scale = params.norm.to(device=x.device, dtype=x.dtype).view(n, 1, 1, 1) * params.sign.to(x.device, x.dtype).view(n, c, 1, 1)
    return x + scale * basis.unsqueeze(1)


register("fourier-basis", FourierArgs, sample_fourier, apply_fourier,
         TransformMeta("frequency", "additive Fourier basis image U_{i,j} of L2 norm r with a random sign per channel",
                       YIN, YIN_ARXIV, FourierArgs()))
