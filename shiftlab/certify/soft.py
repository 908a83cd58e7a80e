"""The soft smoothed classifier G(x) = E_δ[softmax f(x + δ)], estimated with fixed noise draws: the
function SmoothAdv attacks (Salman et al. 2019, "Provably Robust Deep Learning via Adversarially
Trained Smoothed Classifiers", arXiv:1906.04584), SmoothMix searches along (Jeong et al. 2021,
arXiv:2111.09277), and the certificate test attacks.

``SoftSmoothed(model, noise)`` is a module whose forward returns log Ĝ(x) = log (1/m) Σ_i softmax
f(x + δ_i) (N×K, computed as a log-mean-exp of log-softmaxes, so it never takes the log of 0);
cross-entropy on it is −log Ĝ(x)_y, the SmoothAdv loss. With the noise fixed, the module is
deterministic, so the shared attack engine can run on it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_draws(shape: tuple[int, ...], sigma: float, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``sigma·N(0, I)`` of ``shape`` on the generator's device."""
    return sigma * torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)


class SoftSmoothed(nn.Module):
    """log Ĝ(x) with fixed noise.

    Args:
        model: the base classifier (logits out).
        noise: the noise δ_i, already scaled by sigma: m×C×H×W shared by every image of a batch, or
            N×m×C×H×W, one set per image (the batch must then have exactly N images).

    Shape: x N×C×H×W → N×K log-probabilities.
    """

    def __init__(self, model: nn.Module, noise: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise.dim() == x.dim():
            noisy = x.unsqueeze(1) + self.noise.unsqueeze(0).to(x.device, x.dtype)
        elif self.noise.dim() == x.dim() + 1 and len(self.noise) == len(x):
            noisy = x.unsqueeze(1) + self.noise.to(x.device, x.dtype)
        else:
            raise ValueError(f"noise of shape {tuple(self.noise.shape)} does not fit images of shape {tuple(x.shape)}")
        n, m = noisy.shape[:2]
        logits = self.model(noisy.flatten(0, 1))
        log_probs = F.log_softmax(logits.float(), dim=1).view(n, m, -1)
        return torch.logsumexp(log_probs, dim=1) - math.log(m)
