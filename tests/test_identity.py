"""Typed identities: one canonical encoding per kind of cell, round-tripping exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiftlab.core.identity import (
    AttackPoint,
    CalibrationCell,
    CleanCell,
    CorruptionCell,
    DatasetIdentity,
    OODPair,
    Summary,
    Unregistered,
    decode,
    decode_stored,
    identity_kinds,
)

names = st.text(min_size=0, max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=1e-9, max_value=1e6)


@given(names, st.integers(1, 5), st.sampled_from(["cifar", "tiny", "imagenet"]), finite, names, names)
def test_every_kind_round_trips(name, severity, table, eps, ood_set, detector):
    cells = [CleanCell(), CorruptionCell(name, severity, table), AttackPoint(name, "l2", eps),
             AttackPoint(name, "linf", eps, (("steps", 20),)), CalibrationCell(), CalibrationCell(name, severity, table),
             OODPair(ood_set, detector), Summary(name), Summary(name, table)]
    for cell in cells:
        assert decode(cell.key()) == cell
        assert cell.columns().suite == cell.suite


def test_keys_are_readable_and_distinct_where_strings_collided():
    assert CorruptionCell("fog", 5, "imagenet").key() == "corruption/fog/5/imagenet"
    assert AttackPoint("apgd-ce", "linf", 8 / 255).key() != AttackPoint("apgd-ce", "linf", 0.0313725).key()
    assert OODPair("image-folder:/data/a/b", "knn") == decode(OODPair("image-folder:/data/a/b", "knn").key())
    assert set(identity_kinds()) >= {"clean", "corruption", "attack", "calibration", "ood", "summary"}


def test_malformed_keys_raise_and_unknown_kinds_are_kept_opaque():
    with pytest.raises(ValueError):
        decode("corruption/fog")
    with pytest.raises(ValueError):
        decode("nosuchkind/1")
    opaque = decode_stored("plugin-kind/1/2", "plugin")
    assert isinstance(opaque, Unregistered) and opaque.key() == "plugin-kind/1/2" and opaque.suite == "plugin"
    with pytest.raises(ValueError):
        CalibrationCell("fog", None, "cifar")  # clean or a full cell, never half of one


def test_dataset_identity_key_and_label():
    ds = DatasetIdentity("image-folder", "test", 200, "ab" * 32, 200)
    assert DatasetIdentity.from_key(ds.key(), 200) == ds
    assert ds.label == "image-folder[:200]" and ds.short_content == "ab" * 6
    assert DatasetIdentity("x", "val", None, "", 5).label == "x (val)"
