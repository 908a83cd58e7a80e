"""The leaderboard: one row per evaluation (model × dataset identity); the model's columns plus each
suite view's columns, in view order.

Columns are data (:class:`~shiftlab.report.columns.Column`), so the HTML table, the CLI's table
(:func:`leaderboard_table`), the Markdown and JSON exports and ``--sort`` share one definition.
Missing values are ``None`` with the reason, and sort last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shiftlab.core.errors import UserError
from shiftlab.core.quantities import Quantity
from shiftlab.core.registry import Registry
from shiftlab.report.columns import Column, TextColumn, date_text
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.values import Value, missing
from shiftlab.report.views import VIEWS, SuiteView, ordered

DEFAULT_SORT = "clean_acc"


def _dataset_hover(ev: Evaluation) -> str:
    content = ev.dataset.content or "unknown (a row migrated from a store without content fingerprints)"
    return (f"{ev.dataset.label}: {ev.dataset.size} images, split {ev.dataset.split}; content sha256 {content}; "
            f"read from {ev.source}")


TEXT_COLUMNS = (
    TextColumn("model", "model", lambda ev: ev.label, "the model's name (its card has the fingerprint)"),
    TextColumn("arch", "architecture", lambda ev: ev.model.arch),
    TextColumn("recipe", "recipe", lambda ev: ev.model.recipe or "—", "the training recipe"),
    TextColumn("dataset", "dataset", lambda ev: ev.dataset_label,
               "the data every number of the row was computed on: name[:limit] (content fingerprint)",
               hover=_dataset_hover),
)


def _num_params(ev: Evaluation) -> Value:
    return Value(float(ev.model.num_params)) if ev.model.num_params else missing("parameter count unknown")


def _finished(ev: Evaluation) -> Value:
    at = ev.finished_at()
    return Value(at) if at is not None else missing("no row stored")


PARAMS_COLUMN = Column("params", "parameters", _num_params, Quantity("count", None, (0.0, None), "weights"),
                       "number of weights")
DATE_COLUMN = Column("date", "evaluated", _finished, Quantity("value", None), "when the last row was stored (UTC)",
                     formatter=date_text)


@dataclass(frozen=True)
class Leaderboard:
    """Evaluations, their numeric columns and one dict of cells (column key → value) per evaluation."""

    evaluations: list[Evaluation]
    columns: list[Column]
    cells: list[dict[str, Value]]

    @property
    def text_columns(self) -> tuple[TextColumn, ...]:
        return TEXT_COLUMNS

    def column_keys(self) -> list[str]:
        return [c.key for c in TEXT_COLUMNS] + [c.key for c in self.columns]

    def text(self, i: int) -> dict[str, str]:
        return {c.key: c.read(self.evaluations[i]) for c in TEXT_COLUMNS}

    def axes(self) -> list[Column]:
        """The columns the comparison page uses as safety axes."""
        return [c for c in self.columns if c.axis]


def view_columns(evaluations: Sequence[Evaluation], views: Registry[SuiteView, None]) -> list[Column]:
    columns: list[Column] = []
    for view in ordered(views):
        columns += view.columns(evaluations)
    return columns


def build_leaderboard(evaluations: list[Evaluation], views: Registry[SuiteView, None] = VIEWS) -> Leaderboard:
    columns = [PARAMS_COLUMN, *view_columns(evaluations, views), DATE_COLUMN]
    keys = [c.key for c in TEXT_COLUMNS] + [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"report views declare a column key twice: {sorted(k for k in keys if keys.count(k) > 1)}")
    cells = [{c.key: c.read(ev) for c in columns} for ev in evaluations]
    return Leaderboard(evaluations, columns, cells)


def sort_leaderboard(board: Leaderboard, key: str | None) -> Leaderboard:
    """Rows ordered by a column key: best first for metrics, A→Z for text, missing values last; ties keep
    the fingerprint order."""
    keys = board.column_keys()
    if key is None:
        key = DEFAULT_SORT if DEFAULT_SORT in keys else "model"
    if key not in keys:
        raise UserError(f"unknown leaderboard column {key!r}; use one of {', '.join(keys)}")
    order = list(range(len(board.evaluations)))
    if key in {c.key for c in TEXT_COLUMNS}:
        order.sort(key=lambda i: board.text(i)[key].lower())
    else:
        column = next(c for c in board.columns if c.key == key)
        sign = 1.0 if column.quantity.higher_is_better is False else -1.0  # lower is better: ascending

        def rank(i: int) -> tuple[int, float]:
            value = board.cells[i][key].value
            return (1, 0.0) if value is None else (0, sign * value)

        order.sort(key=rank)
    return Leaderboard([board.evaluations[i] for i in order], board.columns, [board.cells[i] for i in order])


def leaderboard_table(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """The leaderboard as plain strings for a terminal: headers are the ``--sort`` keys with the
    direction arrow; cells are formatted values, "—" where missing."""
    headers = [c.key for c in TEXT_COLUMNS] + [c.key + c.arrow for c in board.columns]
    rows = []
    for i in range(len(board.evaluations)):
        text = board.text(i)
        rows.append([text[c.key] for c in TEXT_COLUMNS] + [c.display(board.cells[i][c.key]) for c in board.columns])
    return headers, rows
