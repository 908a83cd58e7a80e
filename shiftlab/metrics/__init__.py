"""Streaming metrics (design contract 4) and their pure functional cores."""

from shiftlab.metrics import ood  # noqa: F401  (registration)
from shiftlab.metrics.base import METRICS, Metric, MetricMeta
from shiftlab.metrics.calibration import (
    ECE,
    MCE,
    AdaptiveECE,
    ClasswiseECE,
    adaptive_calibration_error,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
)
from shiftlab.metrics.classification import Accuracy, BrierScore, NegativeLogLikelihood, brier_score

__all__ = [
    "ECE",
    "MCE",
    "AdaptiveECE",
    "ClasswiseECE",
    "adaptive_calibration_error",
    "classwise_calibration_error",
    "maximum_calibration_error",
    "METRICS",
    "Accuracy",
    "BrierScore",
    "Metric",
    "MetricMeta",
    "NegativeLogLikelihood",
    "brier_score",
    "expected_calibration_error",
]
