"""A suite's report view: its leaderboard columns and its section of the robustness card.

Adding a suite's report is one module in this package that builds a :class:`SuiteView` and adds it
to :data:`VIEWS` (the report imports the view modules in ``views/__init__.py``). A view reads
stored rows only, selected by the type of their task identity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shiftlab.core.quantities import quantity
from shiftlab.core.registry import Registry
from shiftlab.report.columns import Column, arrow, interval_text, show
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import MISSING, cell, table
from shiftlab.report.plots.palette import ModelStyle
from shiftlab.report.plots.svg import FigureSet
from shiftlab.report.values import Value, missing
from shiftlab.report.views import artifacts
from shiftlab.store import TaskRow


@dataclass(frozen=True)
class CardContext:
    """What a card section may draw with: the page's figure numbering and the model's style."""

    figures: FigureSet
    style: ModelStyle


@dataclass(frozen=True)
class SuiteView:
    """How one suite appears in the report.

    Args:
        suite: the suite name its rows carry (``TaskIdentity.suite``).
        title: the card section's heading.
        order: position of its columns and section (ascending).
        columns: its leaderboard columns, given every evaluation (e.g. one column per attack budget).
        section: its card section (HTML) for one evaluation, including a note when it was not run.
    """

    suite: str
    title: str
    order: int
    columns: Callable[[Sequence[Evaluation]], list[Column]]
    section: Callable[[Evaluation, CardContext], str]


VIEWS: Registry[SuiteView, None] = Registry("report view")


def register(view: SuiteView) -> SuiteView:
    """Add ``view`` to :data:`VIEWS` under its suite name (a duplicate raises)."""
    VIEWS.add(view.suite, view, None)
    return view


def ordered(views: Registry[SuiteView, None]) -> list[SuiteView]:
    """The views by ``order``, then suite name."""
    return sorted((views.get(name) for name in views.names()), key=lambda v: (v.order, v.suite))


def baseline_relative(ev: Evaluation, summary: TaskRow, metric: str, without_baseline: str) -> Value:
    """A summary metric normalised by a baseline model (mCE, mFR): the stored value, else missing with the
    reason the summary recorded for the baseline, else ``without_baseline``."""
    stored = ev.value(summary, metric, "")
    if stored.value is not None:
        return stored
    return missing(str(artifacts.mapping(summary, "baseline").get("missing") or without_baseline))


def metric_cell(metric: str, value: float | None) -> str:
    """A ``<td>`` of one stored metric, formatted by its quantity."""
    text = MISSING if value is None else show(quantity(metric), value)
    return cell(text, title=quantity(metric).description)


def value_cell(metric: str, value: Value) -> str:
    """A ``<td>`` of a reported value: the number with its 95 % interval and n when it has them."""
    if value.value is None:
        return cell(MISSING, title=value.why)
    extra = interval_text(value)
    text = show(quantity(metric), value.value)
    return cell(text + (f" ({extra})" if extra else ""), title=quantity(metric).description)


def metrics_table(entries: Sequence[tuple[str, dict[str, float]]], first: str = "task",
                  names: Sequence[str] | None = None) -> str:
    """A table with one row per (label, metrics) entry and one column per metric (every metric any entry
    has, in first-seen order, unless ``names`` is given), each formatted by its quantity."""
    columns = list(names) if names is not None else list(dict.fromkeys(m for _, ms in entries for m in ms))
    headers = [first] + [m + arrow(quantity(m)) for m in columns]
    rows = [[label] + [metric_cell(m, metrics.get(m)) for m in columns] for label, metrics in entries]
    return table(headers, rows)
