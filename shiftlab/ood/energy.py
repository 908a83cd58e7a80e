"""Energy score (Liu, Wang, Owens & Li 2020, "Energy-based Out-of-distribution Detection",
arXiv:2010.03759): score = -E(x) = T * logsumexp_k(z_k / T), T = 1 by default."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.ood.base import DETECTORS, DetectorMeta, LogitDetector


@DETECTORS.register("energy", meta=DetectorMeta("negative free energy of the logits, T = 1", "Liu et al. 2020", "2010.03759"))
@dataclass
class Energy(LogitDetector):
    """Negative energy ``T * logsumexp(z / T)``.

    Args:
        temperature: T (default 1, as in the paper's results).
    """

    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("energy temperature must be > 0")

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.temperature * torch.logsumexp(logits / self.temperature, dim=1)
