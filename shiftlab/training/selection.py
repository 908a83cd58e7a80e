"""Robust early stopping (Rice et al. 2020, "Overfitting in adversarially robust deep learning",
arXiv:2002.11569): after every epoch, score the model on a held-out validation subset and keep the
weights of the best epoch.

Metrics (``--select``):
- ``clean``: accuracy on the validation subset;
- ``corruption``: mean accuracy over ``SELECTION_CORRUPTIONS`` at severity 3;
- ``adversarial``: accuracy under a short L∞ PGD (10 steps, α = eps/4, the loop's seed) with
  ``eps`` (0.1 by default, Fashion-MNIST's usual radius).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from shiftlab.core.seeding import make_generator
from shiftlab.data import ImageDataset, iterate_batches
from shiftlab.shifts import SHIFTS
from shiftlab.training.maximizers import InnerMax, maximize
from shiftlab.training.modifiers import eval_mode

log = logging.getLogger(__name__)
SelectMetric = Literal["clean", "corruption", "adversarial"]
SELECT_METRICS: tuple[str, ...] = ("clean", "corruption", "adversarial")
SELECTION_CORRUPTIONS = ("gaussian_noise", "shot_noise", "defocus_blur", "contrast", "fog", "jpeg_compression")
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def corruption_transforms() -> dict[str, Transform]:
    """The corruptions used for selection, at severity 3."""

    def at_severity_3(name: str) -> Transform:
        fn = SHIFTS.get(name)
        return lambda x, g: fn(x, 3, g)

    return {n: at_severity_3(n) for n in SELECTION_CORRUPTIONS}


@dataclass
class ValidationScorer:
    """Scores a model for checkpoint selection on the first ``limit`` validation images."""

    metric: SelectMetric
    data: ImageDataset
    device: str
    seed: int
    limit: int = 1000
    eps: float = 0.1
    batch_size: int = 250

    def _accuracy(self, model: nn.Module, transform: Transform | None, key: str) -> float:
        correct, seen = 0, 0
        for b, (x, y) in enumerate(iterate_batches(self.data, self.batch_size, device=self.device)):
            if seen >= self.limit:
                break
            x, y = x[: self.limit - seen], y[: self.limit - seen]
            if transform is not None:
                x = transform(x, make_generator(self.seed, "select", key, b, device=self.device))
            with torch.no_grad():
                correct += int((model(x).argmax(1) == y).sum())
            seen += len(y)
        return correct / max(1, seen)

    def score(self, model: nn.Module) -> float:
        """Higher is better."""
        with eval_mode(model):
            if self.metric == "clean":
                return self._accuracy(model, None, "clean")
            if self.metric == "corruption":
                scores = [self._accuracy(model, t, name) for name, t in corruption_transforms().items()]
                return sum(scores) / len(scores)
            return self._adversarial(model, InnerMax(eps=self.eps, steps=10))

    def _adversarial(self, model: nn.Module, attack: InnerMax) -> float:
        correct, seen = 0, 0
        for b, (x, y) in enumerate(iterate_batches(self.data, self.batch_size, device=self.device)):
            if seen >= self.limit:
                break
            x, y = x[: self.limit - seen], y[: self.limit - seen]
            x_adv = maximize(model, x, y, attack, make_generator(self.seed, "select", "pgd", b, device=self.device)).x_adv
            with torch.no_grad():
                correct += int((model(x_adv).argmax(1) == y).sum())
            seen += len(y)
        return correct / max(1, seen)


class BestCheckpoint:
    """The best-scoring epoch's weights so far (ties keep the earlier epoch)."""

    def __init__(self) -> None:
        self.score = float("-inf")
        self.epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def offer(self, score: float, epoch: int, weights: dict[str, torch.Tensor]) -> bool:
        """Keep ``weights`` (copied to CPU) if ``score`` beats the best; returns whether it did."""
        if score > self.score:
            self.score, self.epoch = score, epoch
            self.state = {k: v.detach().cpu().clone() for k, v in weights.items()}
            return True
        return False

    def state_dict(self) -> dict[str, object]:
        return {"score": self.score, "epoch": self.epoch, "state": self.state}

    def load_state_dict(self, saved: dict[str, object]) -> None:
        self.score = float(saved["score"])  # type: ignore[arg-type]
        self.epoch = int(saved["epoch"])  # type: ignore[call-overload]
        self.state = saved["state"]  # type: ignore[assignment]
