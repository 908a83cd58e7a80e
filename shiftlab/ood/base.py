"""The OOD detector interface and registry.

A detector maps a batch of images to one score per image, **higher = more in-distribution** (the
convention of ``shiftlab.metrics.ood``). Detectors that need training statistics get a
``fit(model, train_data)`` step first; the others ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.core.registry import Registry
from shiftlab.data import ImageDataset, iterate_batches


@dataclass(frozen=True, slots=True)
class DetectorMeta:
    """Registry metadata: the paper, and whether the detector needs fitting or input gradients."""

    description: str
    paper: str
    arxiv: str
    needs_fit: bool = False
    needs_grad: bool = False


class Detector:
    """Base OOD detector: ``score(model, x)`` -> N scores (higher = more in-distribution). Whether it
    needs fitting is its registry metadata (``DetectorMeta.needs_fit``)."""

    def fit(self, model: nn.Module, train_data: ImageDataset, *, batch_size: int = 256,
            device: torch.device | str = "cpu") -> Detector:
        """Fit training statistics (no-op for detectors that need none); returns self."""
        return self

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class LogitDetector(Detector):
    """A detector that is a function of the logits only."""

    def score_logits(self, logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.score_logits(model(x).double())


class FeatureDetector(Detector):
    """A detector fitted on penultimate features of training images (Mahalanobis, KNN): ``fit``
    computes them once; ``fit_features`` lets callers share one feature pass between detectors."""

    layer: str | None = None

    def fit(self, model: nn.Module, train_data: ImageDataset, *, batch_size: int = 256,
            device: torch.device | str = "cpu") -> FeatureDetector:
        return self.fit_features(*collect_features(model, train_data, batch_size, device, self.layer))

    def fit_features(self, feats: torch.Tensor, labels: torch.Tensor) -> FeatureDetector:  # pragma: no cover
        raise NotImplementedError


def collect_features(model: nn.Module, data: ImageDataset, batch_size: int, device: torch.device | str,
                     layer: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N×D float64 penultimate features on CPU, N labels) of ``data``."""
    from shiftlab.ood.features import penultimate_features

    feats, labels = [], []
    with torch.no_grad():
        for x, y in labelled_batches(data, batch_size, device):
            feats.append(penultimate_features(model, x, layer).double().cpu())
            labels.append(y.cpu())
    return torch.cat(feats), torch.cat(labels)


DetectorFactory = Callable[..., Detector]
DETECTORS: Registry[DetectorFactory, DetectorMeta] = Registry("detector")


def fit_subset(data: ImageDataset, size: int, generator: torch.Generator) -> ImageDataset:
    """A seeded random subset of ``size`` images (all of ``data`` when it is smaller)."""
    if size >= len(data):
        return data
    return data.subset(torch.randperm(len(data), generator=generator)[:size].sort().values)


def labelled_batches(data: ImageDataset, batch_size: int, device: torch.device | str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (images, labels) on ``device``."""
    yield from iterate_batches(data, batch_size, device=device)
