"""The standard metrics of a set of logits, as suites store them."""

from __future__ import annotations

import torch

from shiftlab.evaluation.suite import TaskResult
from shiftlab.metrics import ECE, Accuracy, BrierScore, NegativeLogLikelihood


def classification_result(logits: torch.Tensor, labels: torch.Tensor) -> TaskResult:
    """Accuracy, error, NLL, Brier and 15-bin ECE (with reliability data) of a set of logits."""
    acc, nll, brier, ece = Accuracy(), NegativeLogLikelihood(), BrierScore(), ECE()
    for metric in (acc, nll, brier, ece):
        metric.update(logits, labels)
    return TaskResult(
        metrics={"accuracy": acc.compute(), "error": 1.0 - acc.compute(), "nll": nll.compute(),
                 "brier": brier.compute(), "ece": ece.compute(), "n": float(labels.numel())},
        artifacts={"reliability": ece.reliability()},
    )
