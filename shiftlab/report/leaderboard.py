"""The leaderboard: one row per evaluated model (and dataset key), one column per safety axis.

Columns are data (:class:`Column`), so the HTML table, the Rich table, the Markdown and JSON
exports and ``--sort`` all share one definition. Missing values are ``None`` and sort last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shiftlab.errors import UserError
from shiftlab.report.gather import Evaluation, Value
from shiftlab.report.summaries import attack_points, corruption_cells, threat_label, threats, worst_case


@dataclass(frozen=True)
class Column:
    """One leaderboard column: a key for ``--sort``, a header, how to read and show its cell."""

    key: str
    label: str
    read: Callable[[Evaluation], Value]
    kind: str = "number"  # number | percent | text | count | date
    higher_is_better: bool | None = None
    help: str = ""

    def display(self, value: Value) -> str:
        v = value.value
        if v is None:
            return "—"
        if self.kind == "percent":
            return f"{100 * v:.1f}"
        if self.kind == "count":
            return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"
        if self.kind == "date":
            return dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d")
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"

    @property
    def arrow(self) -> str:
        return {True: " ↑", False: " ↓", None: ""}[self.higher_is_better]


@dataclass(frozen=True)
class TextColumn:
    key: str
    label: str
    read: Callable[[Evaluation], str]
    help: str = ""


def _count(ev: Evaluation) -> Value:
    return Value(float(ev.model.num_params)) if ev.model.num_params else Value(None, (), "parameter count unknown")


def _date(ev: Evaluation) -> Value:
    t = ev.finished_at()
    return Value(t) if t else Value(None, (), "no task stored")


def _clean_accuracy(ev: Evaluation) -> Value:
    v = ev.value("clean", "accuracy", "clean suite not run")
    return v if v.value is not None or "calibration/clean" not in ev.tasks else ev.value("calibration/clean", "accuracy")


def _corruption_accuracy(ev: Evaluation) -> Value:
    v = ev.value("corruptions/summary", "mean_corruption_accuracy", "corruptions suite not run")
    if v.value is None:  # no summary: average the per-corruption rows that are there
        cells = corruption_cells(ev)
        return ev.mean_of([c.row for c in cells], "accuracy", v.why) if cells else v
    return v


def _mce(ev: Evaluation) -> Value:
    if not ev.has("corruptions"):
        return Value(None, (), "corruptions suite not run")
    v = ev.value("corruptions/summary", "mce")
    return v if v.value is not None else Value(None, (), "mCE not stored: it needs --baseline and all 15 benchmark corruptions")


def _ece(suffix: str) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        v = ev.value("calibration/clean", f"ece{suffix}", "calibration suite not run")
        if v.value is None and not suffix and "clean" in ev.tasks:
            return ev.value("clean", "ece")
        return v

    return read


def _ood_auroc(ev: Evaluation) -> Value:
    rows = ev.rows("ood")
    return ev.mean_of(rows, "auroc", "ood suite not run" if not rows else "AUROC undefined (NaN)")


def _robust(norm: str, eps: float) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        points = attack_points(ev)
        if not points:
            return Value(None, (), "adversarial suite not run")
        return worst_case(ev, points, norm, eps)

    return read


TEXT_COLUMNS = (
    TextColumn("model", "model", lambda ev: ev.label),
    TextColumn("arch", "architecture", lambda ev: ev.model.arch),
    TextColumn("recipe", "recipe", lambda ev: ev.model.recipe or "—"),
    TextColumn("dataset", "dataset", lambda ev: ev.dataset),
)


def columns(evaluations: list[Evaluation]) -> list[Column]:
    """The numeric columns; one robust-accuracy column per (norm, eps) present in the store."""
    cols = [
        Column("params", "parameters", _count, "count", None, "number of weights"),
        Column("clean_acc", "clean acc %", _clean_accuracy, "percent", True, "top-1 accuracy on the clean test set"),
        Column("corruption_acc", "corruption acc %", _corruption_accuracy, "percent", True,
               "mean top-1 accuracy over corruptions and severities (Hendrycks & Dietterich 2019)"),
        Column("mce", "mCE %", _mce, "percent", False,
               "mean corruption error relative to the baseline (Hendrycks & Dietterich 2019)"),
    ]
    for norm, eps, display in threats(evaluations):
        cols.append(Column(f"robust_{norm}_{eps:g}", f"robust % {threat_label(norm, display)}", _robust(norm, eps),
                           "percent", True, f"lowest accuracy over the attacks run at {norm} budget {display}"))
    cols += [
        Column("ece", "ECE %", _ece(""), "percent", False, "15-bin expected calibration error (Guo et al. 2017)"),
        Column("ece_ts", "ECE % after TS", _ece("_ts"), "percent", False,
               "ECE after temperature scaling fitted on held-out data (Guo et al. 2017)"),
        Column("ood_auroc", "OOD AUROC %", _ood_auroc, "percent", True, "mean AUROC over OOD sets and detectors"),
        Column("date", "evaluated", _date, "date", None, "when the last task of this model was stored"),
    ]
    return cols


@dataclass
class Leaderboard:
    evaluations: list[Evaluation]
    columns: list[Column]
    cells: list[dict[str, Value]]

    def column_keys(self) -> list[str]:
        return [c.key for c in TEXT_COLUMNS] + [c.key for c in self.columns]

    def text(self, i: int) -> dict[str, str]:
        return {c.key: c.read(self.evaluations[i]) for c in TEXT_COLUMNS}


def build_leaderboard(evaluations: list[Evaluation]) -> Leaderboard:
    cols = columns(evaluations)
    cells = [{c.key: c.read(ev) for c in cols} for ev in evaluations]
    return Leaderboard(evaluations, cols, cells)


def sort_leaderboard(board: Leaderboard, key: str | None) -> Leaderboard:
    """Reorder rows by a column key: best first for metrics, A→Z for text; missing values last."""
    if key is None:
        key = "clean_acc"
    if key not in board.column_keys():
        raise UserError(f"unknown leaderboard column {key!r}; use one of {', '.join(board.column_keys())}")
    order = list(range(len(board.evaluations)))
    text = {c.key for c in TEXT_COLUMNS}
    if key in text:
        order.sort(key=lambda i: board.text(i)[key].lower())
    else:
        col = next(c for c in board.columns if c.key == key)
        sign = 1.0 if col.higher_is_better is False else -1.0  # lower-is-better ascending, the rest descending

        def rank(i: int) -> tuple[int, float]:
            v = board.cells[i][key].value
            return (1, 0.0) if v is None else (0, sign * v)

        order.sort(key=rank)
    return Leaderboard([board.evaluations[i] for i in order], board.columns, [board.cells[i] for i in order])


def cell_json(col: Column, value: Value) -> dict[str, Any]:
    return {"value": value.value, "display": col.display(value), "unit": "fraction" if col.kind == "percent" else col.kind,
            "why_missing": value.why or None, "provenance": [s.to_json() for s in value.sources]}
