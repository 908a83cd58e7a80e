"""Out-of-distribution detectors (higher score = more in-distribution) and feature access."""

from shiftlab.ood import energy, knn, mahalanobis, maxlogit, msp, odin  # noqa: F401  (registration)
from shiftlab.ood.base import DETECTORS, Detector, DetectorMeta, FeatureDetector, LogitDetector, fit_subset
from shiftlab.ood.features import last_linear_name, penultimate_features

__all__ = ["DETECTORS", "Detector", "DetectorMeta", "FeatureDetector", "LogitDetector", "fit_subset", "last_linear_name", "penultimate_features"]
