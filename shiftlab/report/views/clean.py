"""The clean suite's view: top-1 accuracy on the unshifted test set, with its 95 % Wilson interval."""

from __future__ import annotations

from collections.abc import Sequence

from shiftlab.core.identity import CalibrationCell, CleanCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, table
from shiftlab.report.plots.calibration import reliability_diagrams
from shiftlab.report.values import Value
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register, value_cell

SUITE = "clean"


def clean_accuracy(ev: Evaluation) -> Value:
    """Accuracy of the clean row; the calibration suite's clean cell (same images) when only it was run."""
    row = ev.find(CleanCell()) or ev.find(CalibrationCell())
    return ev.accuracy(row, "accuracy", "clean suite not run")


def clean_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [Column("clean_acc", "clean acc", clean_accuracy, quantity("accuracy"),
                   "top-1 accuracy on the clean test set (95% Wilson interval on hover)", axis=True)]


def clean_section(ev: Evaluation, ctx: CardContext) -> str:
    row = ev.find(CleanCell())
    if row is None:
        return section("Clean test set", note(run_hint(SUITE)), anchor=SUITE)
    listed = [[name, value_cell(name, ev.accuracy(row, name, "")) if name == "accuracy"
               else metric_cell(name, row.metrics[name])] for name in row.metrics]
    diagram = artifacts.reliability(row)
    return section(
        "Clean test set",
        table(["metric", "value"], listed),
        figure(reliability_diagrams(ctx.figures, {"clean": diagram} if diagram else {}),
               "Reliability diagram of the clean test set (Guo et al. 2017, arXiv:1706.04599): accuracy per "
               "confidence bin; bars on the diagonal are perfectly calibrated.",
               "no reliability data stored for the clean row"),
        anchor=SUITE,
    )


VIEW = register(SuiteView(SUITE, "Clean test set", 10, clean_columns, clean_section))
