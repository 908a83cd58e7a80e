"""The stability view: flip probability and top-5 distance along the perturbation sequences of ImageNet-P
/ CIFAR-10-P (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", arXiv:1903.12261), and mFR / mT5D against a baseline.

The leaderboard has the mean flip probability over the sequences (always, when the suite ran) and mFR
(when the summary has it: ``--baseline`` and every sequence asked for). The card draws FP and T5D per
sequence, next to the baseline's, and tabulates every cell with its flip rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shiftlab.core.identity import StabilityCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, table
from shiftlab.report.plots.bars import BarPanel, BarSeries, grouped_bars
from shiftlab.report.values import Value, finite, missing
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import (
    CardContext,
    SuiteView,
    baseline_relative,
    metric_cell,
    metrics_table,
    register,
)
from shiftlab.store import TaskRow

SUITE = "stability"
TITLE = "Prediction stability (perturbation sequences)"
SUMMARY_METRICS = ("mean_flip_probability", "mean_top5_distance", "mfr", "mt5d")
BASELINE_COLOR = "#7f7f7f"
NO_MFR = "mFR not stored: it needs --baseline (and every sequence asked for)"


def summary_row(ev: Evaluation) -> TaskRow | None:
    return next((row for _, row in ev.summaries(SUITE)), None)


def mean_flip_probability(ev: Evaluation) -> Value:
    summary = summary_row(ev)
    if summary is None:
        return missing("stability suite not run" if not ev.cells(StabilityCell) else "no stability summary stored")
    return ev.value(summary, "mean_flip_probability", "no stability summary stored")


def mean_flip_rate(ev: Evaluation) -> Value:
    summary = summary_row(ev)
    if summary is None:
        return missing("stability suite not run")
    return baseline_relative(ev, summary, "mfr", NO_MFR)


def stability_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [
        Column("mean_fp", "mean FP", mean_flip_probability, quantity("mean_flip_probability"),
               "flip probability averaged over the perturbation sequences: how often the top-1 prediction changes "
               "between frames (Hendrycks & Dietterich 2019)", axis=True),
        Column("mfr", "mFR", mean_flip_rate, quantity("mfr"),
               "mean flip rate: the flip probability per sequence relative to the baseline's, averaged over "
               "sequences (Hendrycks & Dietterich 2019)"),
    ]


def _baseline_values(summary: TaskRow | None, metric: str, names: list[str]) -> tuple[float | None, ...]:
    per: dict[str, Any] = artifacts.mapping(summary, "baseline").get("per_sequence") or {}
    return tuple(finite(per.get(n, {}).get(metric)) if isinstance(per.get(n), dict) else None for n in names)


def _figure(ev: Evaluation, ctx: CardContext, cells: list[tuple[StabilityCell, TaskRow]]) -> str:
    names = [cell.sequence for cell, _ in cells]
    summary = summary_row(ev)
    has_baseline = bool(artifacts.mapping(summary, "baseline").get("per_sequence"))
    panels = []
    for metric, label, scale in (("flip_probability", "flip probability (%)", 100.0),
                                 ("top5_distance", "top-5 distance", 1.0)):
        series = [BarSeries(ev.label, tuple(finite(row.metrics.get(metric)) for _, row in cells), ctx.style.color)]
        if has_baseline:
            name = artifacts.mapping(summary, "baseline").get("checkpoint")
            series.append(BarSeries(f"baseline ({name})" if name else "baseline",
                                    _baseline_values(summary, metric, names), BASELINE_COLOR))
        panels.append(BarPanel(label.split(" (")[0], label, tuple(series), scale))
    return figure(grouped_bars(ctx.figures, names, panels),
                  "Flip probability and top-5 distance per perturbation sequence" + (" next to the baseline's"
                  if has_baseline else "") + " (Hendrycks & Dietterich 2019, arXiv:1903.12261); lower is more stable.",
                  "no flip probabilities stored")


def _cells_table(cells: list[tuple[StabilityCell, TaskRow]], summary: TaskRow | None) -> str:
    shown = summary.metrics if summary is not None else {}
    headers = ["sequence", "pairs", "frames", "FP ↓", "T5D ↓", "FR ↓", "T5D rate ↓", "images"]
    rows = []
    for cell, row in cells:
        pairs = "with frame 0" if row.params.get("noise") else "consecutive"
        rows.append([cell.sequence, pairs, metric_cell("frames", row.metrics.get("frames")),
                     metric_cell("flip_probability", row.metrics.get("flip_probability")),
                     metric_cell("top5_distance", row.metrics.get("top5_distance")),
                     metric_cell("flip_rate", shown.get(f"flip_rate/{cell.sequence}")),
                     metric_cell("top5_distance_rate", shown.get(f"top5_distance_rate/{cell.sequence}")),
                     metric_cell("n", row.metrics.get("n"))])
    return table(headers, rows, text_columns=2)


def stability_section(ev: Evaluation, ctx: CardContext) -> str:
    cells = sorted(ev.cells(StabilityCell), key=lambda pair: pair[0].sequence)
    if not cells:
        return section(TITLE, note(run_hint(SUITE)), anchor=SUITE)
    summary = summary_row(ev)
    parts = [_figure(ev, ctx, cells), _cells_table(cells, summary)]
    if summary is None:
        parts.append(note("no stability summary stored"))
    else:
        shown = {m: summary.metrics[m] for m in SUMMARY_METRICS if m in summary.metrics}
        parts.append(metrics_table([("summary", shown)], first=""))
        if "mfr" not in summary.metrics:
            parts.append(note(str(artifacts.mapping(summary, "baseline").get("missing") or NO_MFR)))
        baseline = artifacts.mapping(summary, "baseline")
        if baseline.get("checkpoint"):
            parts.append(note(f"baseline: {baseline['checkpoint']} ({str(baseline.get('fingerprint', ''))[:12]})"))
        definition = artifacts.mapping(summary, "protocol").get("definition")
        if definition:
            parts.append(note(str(definition)))
    return section(TITLE, *parts, anchor=SUITE)


VIEW = register(SuiteView(SUITE, TITLE, 21, stability_columns, stability_section))
