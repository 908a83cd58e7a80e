"""Maximum softmax probability (Hendrycks & Gimpel 2017, "A Baseline for Detecting Misclassified
and Out-of-Distribution Examples in Neural Networks", arXiv:1610.02136): score = max_k softmax(z)_k."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.ood.base import DETECTORS, DetectorMeta, LogitDetector


@DETECTORS.register("msp", meta=DetectorMeta("maximum softmax probability", "Hendrycks & Gimpel 2017", "1610.02136"))
@dataclass
class MSP(LogitDetector):
    """Max softmax probability."""

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(1).max(1).values
