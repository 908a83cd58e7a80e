"""The shared inner loop of every classification task: (optionally transform) → forward → metrics."""

from __future__ import annotations

from collections.abc import Callable

import torch

from shiftlab.evaluate.tasks import EvalContext, TaskResult
from shiftlab.metrics import ECE, Accuracy, BrierScore, NegativeLogLikelihood

BatchTransform = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@torch.inference_mode()
def collect_logits(ctx: EvalContext, transform: BatchTransform | None = None, label: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels over the test data, with ``transform(x, y, batch_index)`` applied first."""
    logits, labels = [], []
    ctx.progress.start(label, len(ctx.data))
    for i, x, y in ctx.batches():
        if transform is not None:
            x = transform(x, y, i)
        logits.append(ctx.model(x).float().cpu())
        labels.append(y.cpu())
        ctx.progress.advance(len(y))
    ctx.progress.finish()
    return torch.cat(logits), torch.cat(labels)


def classification_result(logits: torch.Tensor, labels: torch.Tensor) -> TaskResult:
    """Accuracy, NLL, Brier and 15-bin ECE (with reliability data) of a set of logits."""
    acc, nll, brier, ece = Accuracy(), NegativeLogLikelihood(), BrierScore(), ECE()
    for metric in (acc, nll, brier, ece):
        metric.update(logits, labels)
    return TaskResult(
        metrics={
            "accuracy": acc.compute(),
            "error": 1.0 - acc.compute(),
            "nll": nll.compute(),
            "brier": brier.compute(),
            "ece": ece.compute(),
            "n": float(labels.numel()),
        },
        artifacts={"reliability": ece.reliability()},
    )


def evaluate_classification(ctx: EvalContext, transform: BatchTransform | None = None, label: str = "") -> TaskResult:
    """Run the model over the (transformed) test data and compute the standard metrics."""
    return classification_result(*collect_logits(ctx, transform, label))
