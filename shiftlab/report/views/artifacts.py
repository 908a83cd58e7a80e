"""Readers of the stored artifacts the views draw (JSON written by the suites).

Each reader returns None for an artifact that is absent or not in the documented shape, so a row
written by another version never breaks a page.
"""

from __future__ import annotations

from typing import Any

from shiftlab.report.plots.calibration import Reliability
from shiftlab.store import TaskRow


def _floats(values: Any) -> tuple[float, ...] | None:
    if not isinstance(values, list):
        return None
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None


def reliability(row: TaskRow, name: str = "reliability") -> Reliability | None:
    """The reliability-diagram data of a row ({bin_upper, count, confidence, accuracy})."""
    data = row.artifacts.get(name)
    if not isinstance(data, dict):
        return None
    parts = [_floats(data.get(k)) for k in ("bin_upper", "count", "confidence", "accuracy")]
    if any(p is None for p in parts) or len({len(p or ()) for p in parts}) != 1:
        return None
    upper, count, confidence, accuracy = (p or () for p in parts)
    return Reliability(upper, count, confidence, accuracy)


def roc(row: TaskRow) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (fpr, tpr) points of an OOD row's ``roc`` artifact."""
    data = row.artifacts.get("roc")
    if not isinstance(data, dict):
        return None
    fpr, tpr = _floats(data.get("fpr")), _floats(data.get("tpr"))
    if fpr is None or tpr is None or len(fpr) != len(tpr):
        return None
    return fpr, tpr


def mapping(row: TaskRow | None, name: str) -> dict[str, Any]:
    """A dict-valued artifact, or {} when absent or not a dict."""
    data = row.artifacts.get(name) if row is not None else None
    return data if isinstance(data, dict) else {}


def strings(row: TaskRow | None, name: str) -> list[str]:
    """A list-of-strings artifact (e.g. the adversarial flags), or []."""
    data = row.artifacts.get(name) if row is not None else None
    return [str(x) for x in data] if isinstance(data, list) else []
