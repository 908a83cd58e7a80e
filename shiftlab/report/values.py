"""Reported numbers with their provenance and, for accuracies, a 95 % Wilson score interval.

The Wilson score interval (Wilson 1927, "Probable inference, the law of succession, and
statistical inference", JASA 22:209) stays inside [0, 1] and keeps its coverage near 0 % and
100 % accuracy, where the normal approximation collapses (Brown, Cai & DasGupta 2001,
"Interval Estimation for a Binomial Proportion", Statistical Science 16:101).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shiftlab.core.identity import DatasetIdentity, TaskIdentity

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95 % interval."""


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ``successes / n`` (95 % by default)."""
    if n <= 0:
        raise ValueError(f"a proportion needs n > 0, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: the algebra gives 0 and 1
    return low, 1.0 if successes == n else min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a number comes from: one metric of one stored row."""

    fingerprint: str
    dataset: DatasetIdentity
    task: TaskIdentity
    metric: str
    seed: int
    shiftlab_version: str

    def to_json(self) -> dict[str, Any]:
        return {"model_fingerprint": self.fingerprint, "dataset": self.dataset.key(), "task": self.task.key(),
                "task_label": self.task.label(), "metric": self.metric, "seed": self.seed,
                "shiftlab_version": self.shiftlab_version}


@dataclass(frozen=True, slots=True)
class Value:
    """A reported number with its provenance; ``value`` is None when it cannot be reported.

    Args:
        value: the number (a fraction for accuracies), or None.
        sources: the stored metrics it was read or averaged from.
        why: why it is missing (shown on hover and in footnotes).
        n: the number of images behind an accuracy, when it is one proportion.
        interval: the 95 % Wilson score interval of that proportion.
    """

    value: float | None
    sources: tuple[Source, ...] = ()
    why: str = ""
    n: int | None = None
    interval: tuple[float, float] | None = None


def missing(why: str) -> Value:
    return Value(None, (), why)


def proportion(value: float, n: float | None, sources: tuple[Source, ...]) -> Value:
    """A stored accuracy over ``n`` images, with its Wilson interval when ``n`` is known."""
    count = finite(n)
    if count is None or count < 1:
        return Value(value, sources)
    images = int(round(count))
    successes = min(images, max(0, int(round(value * images))))
    return Value(value, sources, n=images, interval=wilson_interval(successes, images))
