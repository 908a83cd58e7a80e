from dataclasses import dataclass

import pytest

from shiftlab.errors import UnknownNameError, UserError
from shiftlab.registry import Registry


@dataclass(frozen=True)
class Meta:
    family: str


def test_register_get_meta_and_filter():
    reg: Registry[int] = Registry("thing")
    reg.register("gaussian_blur", meta=Meta("blur"))(1)
    reg.register("motion_blur", meta=Meta("blur"))(2)
    reg.add("gaussian_noise", 3, Meta("noise"))
    assert reg.get("motion_blur") == 2
    assert reg.meta("gaussian_noise").family == "noise"
    assert reg.names("*blur*") == ["gaussian_blur", "motion_blur"]
    assert reg.names() == ["gaussian_blur", "motion_blur", "gaussian_noise"]
    assert "motion_blur" in reg and len(reg) == 3


def test_duplicate_name_raises():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)


def test_unknown_name_is_a_user_error_with_suggestions():
    reg: Registry[int] = Registry("attack")
    reg.add("apgd-ce", 1)
    reg.add("apgd-t", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("apgd_ce")
    assert isinstance(info.value, UserError)
    assert "Did you mean apgd-ce" in str(info.value)
    assert "\n" not in str(info.value)
