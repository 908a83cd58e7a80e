"""Maximum logit (Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt & Song 2022,
"Scaling Out-of-Distribution Detection for Real-World Settings", arXiv:1911.11132): score = max_k z_k."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.ood.base import DETECTORS, DetectorMeta, LogitDetector


@DETECTORS.register("maxlogit", meta=DetectorMeta("maximum unnormalised logit", "Hendrycks et al. 2022", "1911.11132"))
@dataclass
class MaxLogit(LogitDetector):
    """Max logit."""

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.max(1).values
