"""Deep nearest neighbours (Sun, Ming, Zhu & Li 2022, "Out-of-Distribution Detection with Deep Nearest
Neighbors", arXiv:2204.06507): score = -(distance to the k-th nearest L2-normalised training feature).

The feature bank is a subset of the training split (the suite uses 10,000 images), k = 50 by
default; the paper uses the full training set (CIFAR-10: k = 50), and notes that a random subset
works nearly as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.ood.base import DETECTORS, DetectorMeta, FeatureDetector
from shiftlab.ood.features import penultimate_features


@DETECTORS.register(
    "knn",
    meta=DetectorMeta("k-th nearest-neighbour distance of normalised features", "Sun et al. 2022", "2204.06507", needs_fit=True),
)
@dataclass
class KNN(FeatureDetector):
    """k-NN distance on L2-normalised penultimate features.

    Args:
        k: which neighbour's distance is the score (default 50).
        layer: feature layer (None: ``forward_features`` or the input of the last Linear).
    """

    k: int = 50
    layer: str | None = None
    bank: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("KNN needs k >= 1")

    def fit_features(self, feats: torch.Tensor, labels: torch.Tensor) -> KNN:
        """Fit on training features already computed at ``self.layer`` (labels unused)."""
        if feats.shape[0] < self.k:
            raise ValueError(f"KNN bank has {feats.shape[0]} features, fewer than k = {self.k}")
        self.bank = F.normalize(feats.float(), dim=1)
        return self

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.bank is None:
            raise RuntimeError("KNN.fit must run before score")
        with torch.no_grad():
            q = F.normalize(penultimate_features(model, x, self.layer).float().cpu(), dim=1)
        sim_k = (q @ self.bank.T).topk(self.k, dim=1).values[:, -1]
        return -(2.0 - 2.0 * sim_k.double()).clamp_min(0.0).sqrt()
