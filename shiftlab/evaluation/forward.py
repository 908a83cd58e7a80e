"""The one forward-over-a-dataset loop of an evaluation: logits, penultimate features, or any
per-batch function of the model, over the test data (or another split), optionally transformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from shiftlab.data import ImageDataset
from shiftlab.evaluation.context import EvalContext
from shiftlab.ood import penultimate_features

BatchTransform = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``transform(x, y, start)``: the batch whose first image has index ``start``, shifted."""


@dataclass
class Outputs:
    """Per-image outputs on the CPU, in dataset order."""

    labels: torch.Tensor
    logits: torch.Tensor | None = None
    features: torch.Tensor | None = None
    scores: torch.Tensor | None = None


def forward(ctx: EvalContext, data: ImageDataset | None = None, transform: BatchTransform | None = None, *,
            batches: Iterable[tuple[int, torch.Tensor, torch.Tensor]] | None = None, logits: bool = True,
            features: bool = False, score: Callable[[torch.Tensor], torch.Tensor] | None = None,
            progress: bool = True) -> Outputs:
    """Run the model over ``data`` (default: the test set) or over ready ``batches`` of (start,
    images, labels) once, and keep what is asked for.

    ``score(x)`` is any per-image function of a batch (an OOD detector's score); it runs outside
    inference mode, so it may take input gradients.
    """
    kept: dict[str, list[torch.Tensor]] = {"labels": [], "logits": [], "features": [], "scores": []}
    for start, x, y in batches if batches is not None else ctx.batches(data):
        if transform is not None:
            with torch.inference_mode():
                x = transform(x, y, start)
        if logits or features:
            with torch.inference_mode():
                if features:
                    f = penultimate_features(ctx.model, x)
                    kept["features"].append(f.double().cpu())
                if logits:
                    kept["logits"].append(ctx.model(x).float().cpu())
        if score is not None:
            kept["scores"].append(score(x.clone()).detach().double().cpu())
        kept["labels"].append(y.cpu())
        if progress:
            ctx.progress.advance(len(y))

    def cat(name: str) -> torch.Tensor | None:
        return torch.cat(kept[name]) if kept[name] else None

    labels = cat("labels")
    return Outputs(labels if labels is not None else torch.empty(0, dtype=torch.long), cat("logits"),
                   cat("features"), cat("scores"))
