"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019, "Certified
Adversarial Robustness via Randomized Smoothing", arXiv:1902.02918).

- :class:`Smoothed`: PREDICT and CERTIFY over any base classifier, with per-image seeded noise.
- ``statistics``: the binomial test, the Clopper–Pearson bound and the radius, on counts.
- :class:`SoftSmoothed`: the soft smoothed classifier with fixed noise, for attacks and for the
  training recipes that attack it (SmoothAdv, SmoothMix).
- ``metrics``: certified accuracy at a radius, its curve, and the average certified radius.
"""

from shiftlab.certify.metrics import (
    RADII,
    accuracy_curve,
    average_certified_radius,
    certified_accuracy,
    certified_correct,
)
from shiftlab.certify.noise import NoiseSeeds, noise_chunk
from shiftlab.certify.smoothing import Smoothed, inference_copy
from shiftlab.certify.soft import SoftSmoothed, gaussian_draws
from shiftlab.certify.statistics import (
    ABSTAIN,
    Certificates,
    binomial_test_half,
    certify_from_counts,
    clopper_pearson_lower,
    predict_from_counts,
)

__all__ = [
    "ABSTAIN", "RADII", "Certificates", "NoiseSeeds", "Smoothed", "SoftSmoothed", "accuracy_curve",
    "average_certified_radius", "binomial_test_half", "certified_accuracy", "certified_correct",
    "certify_from_counts", "clopper_pearson_lower", "gaussian_draws", "inference_copy", "noise_chunk",
    "predict_from_counts",
]
