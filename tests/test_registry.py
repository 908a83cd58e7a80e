from dataclasses import dataclass

import pytest

from shiftlab.core.errors import UnknownNameError, UserError
from shiftlab.core.registry import Registry


@dataclass(frozen=True)
class Meta:
    family: str


def test_register_get_meta_and_filter():
    reg: Registry[int, Meta] = Registry("thing")
    reg.register("gaussian_blur", meta=Meta("blur"))(1)
    reg.register("motion_blur", meta=Meta("blur"))(2)
    reg.add("gaussian_noise", 3, Meta("noise"))
    assert reg.get("motion_blur") == 2
    assert reg.meta("gaussian_noise").family == "noise"
    assert reg.names("*blur*") == ["gaussian_blur", "motion_blur"]
    assert reg.names() == ["gaussian_blur", "motion_blur", "gaussian_noise"]
    assert "motion_blur" in reg and len(reg) == 3


def test_duplicate_name_raises():
    reg: Registry[int, None] = Registry("thing")
    reg.add("a", 1, None)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2, None)


def test_unknown_name_is_a_user_error_with_suggestions():
    reg: Registry[int, None] = Registry("attack")
    reg.add("apgd-ce", 1, None)
    reg.add("apgd-t", 2, None)
    with pytest.raises(UnknownNameError) as info:
        reg.get("apgd_ce")
    assert isinstance(info.value, UserError)
    assert "Did you mean apgd-ce" in str(info.value)
    assert "\n" not in str(info.value)


def test_every_stored_metric_name_has_one_declared_quantity():
    """One source of truth for direction and bounds: every registered metric has a quantity entry."""
    from shiftlab.core.quantities import QUANTITIES
    from shiftlab.metrics import METRICS

    assert set(METRICS.names()) <= set(QUANTITIES.names())
    for name in METRICS.names():
        assert QUANTITIES.get(name).higher_is_better is not None, name


def test_every_suite_has_a_report_view_and_declares_each_flag_once():
    from shiftlab.evaluation import SUITES
    from shiftlab.evaluation.suite import all_flags
    from shiftlab.report.views import VIEWS

    assert set(SUITES.names()) <= set(VIEWS.names())
    flags = all_flags()  # raises when two suites declare different flags of one name
    assert {"corruptions", "severities", "params", "eps", "norm", "attack", "baseline", "ood_set"} <= set(flags)


def test_detector_metadata_is_the_one_source_of_needs_fit():
    from shiftlab.ood import DETECTORS, Detector

    assert not hasattr(Detector, "needs_fit")
    assert {n for n in DETECTORS.names() if DETECTORS.meta(n).needs_fit} == {"mahalanobis", "knn"}
