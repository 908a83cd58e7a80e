"""The natural-shift view: accuracy on test sets of the same classes drawn differently, and effective
robustness (Taori et al. 2020, "Measuring Robustness to Natural Distribution Shifts in Image
Classification", arXiv:2007.00644) against the reference models' fit on probit axes (Miller et al. 2021,
"Accuracy on the Line", arXiv:2107.04649).

The leaderboard has one column per shifted set: the model's effective robustness on it. The card draws,
per set, the in-distribution against the shifted accuracy of the reference models on probit axes with
their fitted line and the model highlighted, and tabulates the fit (slope, intercept, R²), the model's
effective robustness and probit residual, and the reference models' accuracies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shiftlab.core.identity import AdaptedSummary, NaturalShiftCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection, table
from shiftlab.report.plots.probit import AccuracyPoint, probit_scatter
from shiftlab.report.values import Value, finite, missing
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import (
    CardContext,
    SuiteView,
    metric_cell,
    metrics_table,
    register,
    value_cell,
)
from shiftlab.store import TaskRow

SUITE = "natural"
TITLE = "Natural distribution shift (effective robustness)"
PER_SET = ("shifted_accuracy", "accuracy_drop", "effective_robustness", "probit_residual", "fit_slope",
           "fit_intercept", "fit_r2", "reference_models")


def summary_row(ev: Evaluation) -> TaskRow | None:
    return next((row for _, row in ev.summaries(SUITE)), None)


def fits(row: TaskRow | None) -> dict[str, dict[str, Any]]:
    """The summary's ``fits`` artifact: {set key: fit}, entries that are not dicts dropped."""
    return {str(k): v for k, v in artifacts.mapping(row, "fits").items() if isinstance(v, dict)}


def set_keys(evaluations: Sequence[Evaluation]) -> list[str]:
    """Every shifted set any evaluation's summary has, by name."""
    return sorted({key for ev in evaluations for key in fits(summary_row(ev))})


def er_reader(key: str) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        summary = summary_row(ev)
        if summary is None:
            return missing("natural suite not run" if not ev.cells(NaturalShiftCell) else "no natural summary stored")
        stored = ev.value(summary, f"effective_robustness/{key}", "")
        if stored.value is not None:
            return stored
        why = fits(summary).get(key, {}).get("missing")
        return missing(str(why or f"no effective robustness stored for {key}"))

    return read


def natural_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [Column(f"er_{key}", f"ER {key}", er_reader(key), quantity("effective_robustness"),
                   f"effective robustness on {key}: shifted accuracy minus the reference models' probit-linear fit at "
                   "the model's in-distribution accuracy (Taori et al. 2020; Miller et al. 2021)", axis=(i == 0))
            for i, key in enumerate(set_keys(evaluations))]


def _points(fit: dict[str, Any]) -> list[AccuracyPoint]:
    out = []
    for p in fit.get("reference") or []:
        if not isinstance(p, dict):
            continue
        x, y = finite(p.get("in_distribution_accuracy")), finite(p.get("shifted_accuracy"))
        if x is not None and y is not None:
            out.append(AccuracyPoint(str(p.get("name", "?")), x, y))
    return out


def _model_point(ev: Evaluation, fit: dict[str, Any]) -> AccuracyPoint | None:
    model = fit.get("model")
    if not isinstance(model, dict):
        return None
    x, y = finite(model.get("in_distribution_accuracy")), finite(model.get("shifted_accuracy"))
    return AccuracyPoint(ev.label, x, y) if x is not None and y is not None else None


def _set_block(ev: Evaluation, ctx: CardContext, summary: TaskRow, key: str, fit: dict[str, Any]) -> str:
    slope, intercept = finite(fit.get("slope")), finite(fit.get("intercept"))
    line = (slope, intercept) if slope is not None and intercept is not None else None
    refs = _points(fit)
    parts = [figure(probit_scatter(ctx.figures, refs, _model_point(ev, fit), line, ctx.style, key),
                    f"Accuracy on {key} against in-distribution accuracy on probit axes: the reference models (grey), "
                    "their least-squares line (black) and y = x (dashed); the model's effective robustness is its "
                    "height above the line (Taori et al. 2020, arXiv:2007.00644; Miller et al. 2021, "
                    "arXiv:2107.04649).", f"no accuracies stored for {key}")]
    shown = {m: summary.metrics[f"{m}/{key}"] for m in PER_SET if f"{m}/{key}" in summary.metrics}
    parts.append(metrics_table([(ev.label, shown)], first="model"))
    if fit.get("missing"):
        parts.append(note(str(fit["missing"])))
    if refs:
        rows = [[p.label, metric_cell("in_distribution_accuracy", p.in_distribution),
                 metric_cell("shifted_accuracy", p.shifted)] for p in sorted(refs, key=lambda p: p.label)]
        parts.append(table(["reference model", "in-distribution acc ↑", "shifted acc ↑"], rows))
    if fit.get("without_rows"):
        parts.append(note("reference models without rows on this set: " + ", ".join(map(str, fit["without_rows"]))))
    return subsection(f"{key} ({str(fit.get('content', ''))[:12]})", *parts)


def _cells_table(ev: Evaluation, cells: list[tuple[NaturalShiftCell, TaskRow]]) -> str:
    rows = [[cell.shifted, str(row.params.get("source") or ""),
             value_cell("accuracy", ev.accuracy(row, "accuracy", "")),
             metric_cell("n", row.metrics.get("n")), metric_cell("n", row.metrics.get("classes"))]
            for cell, row in sorted(cells, key=lambda pair: pair[0].shifted)]
    return table(["shifted set", "source", "accuracy ↑", "images", "classes scored"], rows, text_columns=2)


def natural_section(ev: Evaluation, ctx: CardContext) -> str:
    cells = ev.cells(NaturalShiftCell)
    if not cells:
        return section(TITLE, note(run_hint(SUITE)), anchor=SUITE)
    summary = summary_row(ev)
    parts = [_cells_table(ev, cells)]
    if summary is None:
        parts.append(note("no natural summary stored"))
        return section(TITLE, *parts, anchor=SUITE)
    if "in_distribution_accuracy" in summary.metrics:
        parts.append(metrics_table([("in distribution", {"accuracy": summary.metrics["in_distribution_accuracy"]})],
                                   first=""))
    parts += [_set_block(ev, ctx, summary, key, fit) for key, fit in sorted(fits(summary).items())]
    adapted = [(cell, row) for cell, row in ev.cells(AdaptedSummary) if cell.of == SUITE]
    if adapted:
        entries = [(cell.setting().label(), dict(row.metrics))
                   for cell, row in sorted(adapted, key=lambda pair: pair[0].setting().label())]
        parts.append(subsection("Under test-time adaptation", metrics_table(entries, first="setting"),
                                note("The adapted model's accuracies, its gain over the unadapted model on each set, and "
                                     "its effective robustness against the same reference fit (the references are "
                                     "not adapted).")))
    definition = artifacts.mapping(summary, "protocol").get("definition")
    if definition:
        parts.append(note(str(definition)))
    return section(TITLE, *parts, anchor=SUITE)


VIEW = register(SuiteView(SUITE, TITLE, 28, natural_columns, natural_section))
