"""Leaderboard columns as data: a sort key, a header, how to read a cell and how to show it.

Units, directions and number formats come from :mod:`shiftlab.core.quantities` (a count is an
integer, a fraction a percentage, a check pass / FAIL / not applicable), so every page, the
Markdown and JSON exports and the CLI's table show a value the same way.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from shiftlab.core.quantities import Quantity
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.values import Value

NOT_APPLICABLE = "not applicable"


def arrow(q: Quantity) -> str:
    """" ↑" when higher is better, " ↓" when lower is better, "" when neither."""
    return {True: " ↑", False: " ↓", None: ""}[q.higher_is_better]


def show(q: Quantity, value: float | None) -> str:
    """A value as people read it; a check that could not be tested reads "not applicable"."""
    if q.unit == "check" and (value is None or math.isnan(value)):
        return NOT_APPLICABLE
    return q.format(value)


def interval_text(value: Value) -> str:
    """"95 % CI 90.1–95.8 %, n = 200" for a proportion with a Wilson interval, else "n = 200" or ""."""
    parts = []
    if value.interval is not None:
        low, high = value.interval
        parts.append(f"95% CI {100 * low:.1f}–{100 * high:.1f}%")
    if value.n is not None:
        parts.append(f"n = {value.n}")
    return ", ".join(parts)


def date_text(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Column:
    """One numeric leaderboard column.

    Args:
        key: the ``--sort`` key.
        label: the header.
        read: the cell of one evaluation.
        quantity: unit and direction (arrows, formats, colour scales, sort order).
        help: the header's definition, with the paper it follows.
        axis: a safety axis of the comparison page (Pareto fronts and radar charts).
        formatter: a display override for values that are not metrics (dates).
    """

    key: str
    label: str
    read: Callable[[Evaluation], Value]
    quantity: Quantity
    help: str = ""
    axis: bool = False
    formatter: Callable[[float], str] | None = None

    @property
    def arrow(self) -> str:
        return arrow(self.quantity)

    @property
    def header(self) -> str:
        return self.label + self.arrow

    def display(self, value: Value) -> str:
        if value.value is None:
            return "—"
        return self.formatter(value.value) if self.formatter else show(self.quantity, value.value)

    def hover(self, value: Value) -> str:
        """The cell's tooltip: why it is missing, or the value with its interval, n and the rows it came from."""
        if value.value is None:
            return value.why
        tasks = list(dict.fromkeys(s.task.label() for s in value.sources))
        extra = interval_text(value)
        text = self.display(value) + (f" ({extra})" if extra else "")
        if tasks:
            shown = ", ".join(tasks[:4]) + (f" and {len(tasks) - 4} more" if len(tasks) > 4 else "")
            text += f"; from {shown}"
        return text


@dataclass(frozen=True)
class TextColumn:
    """One text column (model name, architecture, recipe, dataset); ``hover`` gives its tooltip."""

    key: str
    label: str
    read: Callable[[Evaluation], str]
    help: str = ""
    hover: Callable[[Evaluation], str] | None = None
