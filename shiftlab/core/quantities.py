"""What every stored metric *is*: its unit, its direction and its bounds — one source of truth.

The metrics package's registry points at these entries, the suites store values under these
names, and the report and the CLI read them for arrows, colour scales and formatting (a count is
printed as an integer, a fraction as a percentage, a sanity check as pass / fail).

Names: ``ece`` or a grouped ``ece/s3`` (the group's name decides), and ``<name>_ts`` after
temperature scaling inherits ``<name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from shiftlab.core.registry import Registry

Unit = Literal["fraction", "ratio", "count", "seconds", "check", "value"]


@dataclass(frozen=True, slots=True)
class Quantity:
    """A metric's unit and direction.

    Args:
        unit: "fraction" (shown as %), "ratio" (a quotient such as CE, shown as %), "count",
            "seconds", "check" (1 pass, 0 fail, NaN not applicable) or "value" (a plain number).
        higher_is_better: the direction the report's arrows and colour scales use (None: neither).
        bounds: the value range, for axes and colour scales.
    """

    unit: Unit = "value"
    higher_is_better: bool | None = None
    bounds: tuple[float | None, float | None] = (None, None)
    description: str = ""

    def format(self, value: float | None) -> str:
        """The value as people read it (percent for fractions and ratios, integers for counts)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "not applicable" if self.unit == "check" else "—"
        if self.unit in ("fraction", "ratio"):
            return f"{100 * value:.1f}%"
        if self.unit == "count":
            return f"{value:.0f}"
        if self.unit == "seconds":
            return f"{value:.1f}s"
        if self.unit == "check":
            return "pass" if value >= 0.5 else "FAIL"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"


QUANTITIES: Registry[Quantity, None] = Registry("quantity")
_UNIT = (0.0, 1.0)
for _name, _q in (
    ("accuracy", Quantity("fraction", True, _UNIT, "top-1 accuracy")),
    ("error", Quantity("fraction", False, _UNIT, "top-1 error")),
    ("nll", Quantity("value", False, (0.0, None), "negative log-likelihood (nats)")),
    ("brier", Quantity("value", False, (0.0, 2.0), "Brier score (sum over classes)")),
    ("ece", Quantity("fraction", False, _UNIT, "expected calibration error, equal-width bins")),
    ("ece_adaptive", Quantity("fraction", False, _UNIT, "expected calibration error, equal-mass bins")),
    ("mce", Quantity("fraction", False, _UNIT, "maximum calibration error")),
    ("classwise_ece", Quantity("fraction", False, _UNIT, "class-wise expected calibration error")),
    ("temperature", Quantity("value", None, (0.0, None), "fitted softmax temperature")),
    ("val_nll", Quantity("value", False, (0.0, None), "validation NLL")),
    ("n", Quantity("count", None, (0.0, None), "images")),
    ("n_in", Quantity("count", None, (0.0, None), "in-distribution images")),
    ("n_out", Quantity("count", None, (0.0, None), "out-of-distribution images")),
    ("val_n", Quantity("count", None, (0.0, None), "validation images")),
    ("seconds", Quantity("seconds", None, (0.0, None), "wall time")),
    ("num_params", Quantity("count", None, (0.0, None), "trainable and frozen parameters of the model")),
    ("robust_accuracy", Quantity("fraction", True, _UNIT, "accuracy under attack")),
    ("clean_accuracy", Quantity("fraction", True, _UNIT, "accuracy without attack")),
    ("broken_by", Quantity("count", None, (0.0, None), "images first broken by an attack")),
    ("sanity", Quantity("check", True, _UNIT, "a sanity check of the evaluation")),
    ("auroc", Quantity("fraction", True, _UNIT, "area under the ROC curve")),
    ("auroc_mean", Quantity("fraction", True, _UNIT, "mean AUROC over OOD sets")),
    ("aupr_in", Quantity("fraction", True, _UNIT, "area under the precision-recall curve, ID positive")),
    ("aupr_out", Quantity("fraction", True, _UNIT, "area under the precision-recall curve, OOD positive")),
    ("fpr95", Quantity("fraction", False, _UNIT, "false positive rate at 95 % true positive rate")),
    ("fpr95_mean", Quantity("fraction", False, _UNIT, "mean FPR@95 over OOD sets")),
    ("mean_corruption_error", Quantity("fraction", False, _UNIT, "mean error over corruptions and severities")),
    ("mean_corruption_accuracy", Quantity("fraction", True, _UNIT, "mean accuracy over corruptions and severities")),
    ("clean_error", Quantity("fraction", False, _UNIT, "clean top-1 error")),
    ("baseline_clean_error", Quantity("fraction", False, _UNIT, "the baseline's clean top-1 error")),
    ("ce", Quantity("ratio", False, (0.0, None), "corruption error relative to the baseline")),
    ("relative_ce", Quantity("ratio", False, (None, None), "relative corruption error")),
    ("mean_ce", Quantity("ratio", False, (0.0, None), "mCE: mean over corruptions of CE (Hendrycks & Dietterich 2019)")),
    ("relative_mean_ce", Quantity("ratio", False, (None, None), "relative mCE")),
    ("seconds_per_image", Quantity("value", False, (0.0, None), "test-time adaptation wall time per image (s)")),
    ("unadapted_mean_corruption_error", Quantity("fraction", False, _UNIT, "mean corruption error of the same cells without adaptation")),
    ("adaptation_gain", Quantity("fraction", True, (-1.0, 1.0), "what test-time adaptation gains: top-1 error without adaptation minus with it (accuracy with minus without)")),
    ("certified_accuracy", Quantity("fraction", True, _UNIT, "certified accuracy: correct with a certified L2 radius of at least r (Cohen et al. 2019)")),
    ("acr", Quantity("value", True, (0.0, None), "average certified L2 radius, 0 for wrong or abstained images (Zhai et al. 2020)")),
    ("abstention_rate", Quantity("fraction", False, _UNIT, "fraction of images the smoothed classifier abstains on")),
    ("flip_probability", Quantity("fraction", False, _UNIT, "flip probability: share of a perturbation sequence's frame pairs whose top-1 predictions differ (Hendrycks & Dietterich 2019)")),
    ("mean_flip_probability", Quantity("fraction", False, _UNIT, "flip probability averaged over perturbation sequences")),
    ("top5_distance", Quantity("value", False, (0.0, 15.0), "top-5 distance: how far the top-5 ranking moves between frames (Hendrycks & Dietterich 2019)")),
    ("mean_top5_distance", Quantity("value", False, (0.0, 15.0), "top-5 distance averaged over perturbation sequences")),
    ("flip_rate", Quantity("ratio", False, (0.0, None), "flip rate: flip probability relative to the baseline's")),
    ("mfr", Quantity("ratio", False, (0.0, None), "mFR: mean over perturbation sequences of the flip rate (Hendrycks & Dietterich 2019)")),
    ("top5_distance_rate", Quantity("ratio", False, (0.0, None), "top-5 distance relative to the baseline's")),
    ("mt5d", Quantity("ratio", False, (0.0, None), "mT5D: mean over perturbation sequences of the top-5 distance relative to the baseline's")),
    ("frames", Quantity("count", None, (0.0, None), "frames per image of a perturbation sequence")),
    ("in_distribution_accuracy", Quantity("fraction", True, _UNIT, "top-1 accuracy on the in-distribution test set")),
    ("shifted_accuracy", Quantity("fraction", True, _UNIT, "top-1 accuracy on a natural-shift test set")),
    ("accuracy_drop", Quantity("fraction", False, (-1.0, 1.0), "in-distribution minus shifted accuracy")),
    ("effective_robustness", Quantity("fraction", True, (-1.0, 1.0), "effective robustness: shifted accuracy minus the reference models' probit-linear fit at the same in-distribution accuracy (Taori et al. 2020)")),
    ("probit_residual", Quantity("value", True, (None, None), "Φ⁻¹(shifted accuracy) minus the probit-linear fit, in probit units")),
    ("fit_slope", Quantity("value", None, (None, None), "slope of the reference models' fit of Φ⁻¹(shifted) on Φ⁻¹(in-distribution accuracy)")),
    ("fit_intercept", Quantity("value", None, (None, None), "intercept of the reference models' probit-linear fit")),
    ("fit_r2", Quantity("value", None, (None, 1.0), "R² of the reference models' probit-linear fit")),
    ("reference_models", Quantity("count", None, (0.0, None), "reference models in the effective-robustness fit")),
):
    QUANTITIES.add(_name, _q, None)


def quantity(name: str) -> Quantity:
    """The quantity of a stored metric name (``group/item`` by its group, ``x_ts`` as ``x``); a name
    nobody declared is a plain value with no direction."""
    base = name.split("/", 1)[0]
    for candidate in (base, base.removesuffix("_ts")):
        if candidate in QUANTITIES:
            return QUANTITIES.get(candidate)
    return Quantity()
