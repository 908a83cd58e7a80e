"""Accuracy, negative log-likelihood and Brier score as streaming accumulators.

Brier score follows Brier 1950 (multi-class form: sum over classes of squared error, averaged
over samples); NLL is the mean cross-entropy of the softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shiftlab.metrics.base import METRICS, Metric, MetricMeta


def _zero() -> torch.Tensor:
    return torch.zeros((), dtype=torch.float64)


def brier_score(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample multi-class Brier score: sum_k (p_k - 1[y = k])^2 (Brier 1950)."""
    onehot = F.one_hot(targets, probs.shape[1]).to(probs.dtype)
    return (probs - onehot).pow(2).sum(1)


@METRICS.register("accuracy", meta=MetricMeta("top-1 accuracy"))
class Accuracy(Metric):
    correct: torch.Tensor
    total: torch.Tensor

    """Top-1 accuracy; keeps two counts."""


    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", _zero, "sum")
        self.add_state("total", _zero, "sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.correct = self.correct + (logits.argmax(1) == targets).sum().double().cpu()
        self.total = self.total + targets.numel()
        self._touch()

    def _compute(self) -> float:
        return float(self.correct / self.total) if self.total > 0 else float("nan")


@METRICS.register("nll", meta=MetricMeta("negative log-likelihood (nats)"))
class NegativeLogLikelihood(Metric):
    total_nll: torch.Tensor
    total: torch.Tensor

    """Mean cross-entropy of the softmax; keeps a sum and a count."""


    def __init__(self) -> None:
        super().__init__()
        self.add_state("total_nll", _zero, "sum")
        self.add_state("total", _zero, "sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        nll = F.cross_entropy(logits.double(), targets, reduction="sum")
        self.total_nll = self.total_nll + nll.detach().cpu()
        self.total = self.total + targets.numel()
        self._touch()

    def _compute(self) -> float:
        return float(self.total_nll / self.total) if self.total > 0 else float("nan")


@METRICS.register("brier", meta=MetricMeta("multi-class Brier score", "Brier 1950"))
class BrierScore(Metric):
    total_brier: torch.Tensor
    total: torch.Tensor

    """Mean multi-class Brier score; keeps a sum and a count."""


    def __init__(self) -> None:
        super().__init__()
        self.add_state("total_brier", _zero, "sum")
        self.add_state("total", _zero, "sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        probs = logits.double().softmax(1)
        self.total_brier = self.total_brier + brier_score(probs, targets).sum().detach().cpu()
        self.total = self.total + targets.numel()
        self._touch()

    def _compute(self) -> float:
        return float(self.total_brier / self.total) if self.total > 0 else float("nan")
