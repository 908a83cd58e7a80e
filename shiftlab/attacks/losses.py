"""Per-sample attack losses (higher = more adversarial).

The DLR losses are from Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", arXiv:2003.01690: scale-invariant margins that do not
saturate like cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
"""loss(logits N×K, labels (N,), targets (N,) or None) -> per-sample loss (N,)."""


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample cross-entropy of the true class (untargeted ascent)."""
    return F.cross_entropy(logits, y, reduction="none")


def kl_to_clean(logits: torch.Tensor, y: torch.Tensor | None, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample KL(p_clean ‖ softmax(logits)); ``target`` carries the clean probabilities (N×K).

    The inner loss of TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between
    Robustness and Accuracy", arXiv:1901.08573); the label ``y`` is not used.
    """
    assert target is not None, "the KL loss needs the clean probabilities"
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="none").sum(1)


def dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Difference of logits ratio: -(z_y - max_{i≠y} z_i) / (z_π1 - z_π3) (Croce & Hein 2020)."""
    top, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return -(z_y - other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Targeted DLR: -(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2) (Croce & Hein 2020)."""
    assert target is not None, "targeted DLR needs target classes"
    top, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{i≠y} z_i: positive while the prediction is correct (Square's objective)."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    return z_y - logits.scatter(1, y[:, None], float("-inf")).amax(1)

