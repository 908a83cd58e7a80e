"""Mahalanobis distance to the closest class mean (Lee, Lee, Lee & Shin 2018, "A Simple Unified
Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", arXiv:1807.03888).

Class means and one tied covariance ``Sigma = 1/N sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T`` are
fitted on penultimate features of (a subset of) the training split;
score = ``max_c -(f - mu_c)^T Sigma^+ (f - mu_c)``.

Deviations: penultimate layer only, without the paper's input pre-processing and its
logistic-regression ensemble over layers (both need OOD validation data); the pseudo-inverse
replaces the inverse so a rank-deficient covariance (ReLU features) is fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from shiftlab.ood.base import DETECTORS, DetectorMeta, FeatureDetector
from shiftlab.ood.features import penultimate_features


@DETECTORS.register(
    "mahalanobis",
    meta=DetectorMeta("min Mahalanobis distance to class means, tied covariance", "Lee et al. 2018", "1807.03888", needs_fit=True),
)
@dataclass
class Mahalanobis(FeatureDetector):
    """Class-conditional Gaussian with tied covariance on penultimate features.

    Args:
        layer: feature layer (None: ``forward_features`` or the input of the last Linear).
    """

    layer: str | None = None
    means: torch.Tensor | None = field(default=None, repr=False)
    precision: torch.Tensor | None = field(default=None, repr=False)

    def fit_features(self, feats: torch.Tensor, labels: torch.Tensor) -> Mahalanobis:
        """Fit class means and the shared covariance on training features computed at ``self.layer``."""
        classes = labels.unique()
        means = torch.stack([feats[labels == c].mean(0) for c in classes])
        centred = feats - means[torch.searchsorted(classes, labels)]
        cov = centred.T @ centred / feats.shape[0]
        self.means, self.precision = means, torch.linalg.pinv(cov, hermitian=True)
        return self

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.means is None or self.precision is None:
            raise RuntimeError("Mahalanobis.fit must run before score")
        with torch.no_grad():
            f = penultimate_features(model, x, self.layer).double().cpu()
        diff = f.unsqueeze(1) - self.means.unsqueeze(0)  # N×C×D
        dist = ((diff @ self.precision) * diff).sum(-1)  # N×C squared Mahalanobis distances
        return -dist.min(1).values
