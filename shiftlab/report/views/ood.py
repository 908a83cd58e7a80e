"""The out-of-distribution view: how well each detector separates the test set from OOD sets
(MSP baseline: Hendrycks & Gimpel 2017, arXiv:1610.02136), as ROC curves and AUROC / FPR@95.

OOD sets are read from the typed identity, so set names with slashes (``image-folder:/data/x``)
are shown whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from shiftlab.core.identity import OODPair
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection
from shiftlab.report.plots.curves import RocCurve, roc_curves
from shiftlab.report.values import Value, finite
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metrics_table, register

SUITE = "ood"
PAIR_METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95", "n_in", "n_out")


def mean_auroc(ev: Evaluation) -> Value:
    rows = [row for _, row in ev.cells(OODPair)]
    return ev.mean_of(rows, "auroc", "ood suite not run" if not rows else "AUROC undefined (NaN) for every pair")


def ood_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [Column("ood_auroc", "OOD AUROC", mean_auroc, quantity("auroc_mean"),
                   "mean AUROC over OOD sets and detectors (in-distribution = positive)", axis=True)]


def curves(ev: Evaluation) -> list[RocCurve]:
    out = []
    for pair, row in ev.cells(OODPair):
        points = artifacts.roc(row)
        if points is not None:
            out.append(RocCurve(pair.ood_set, pair.detector, points[0], points[1], finite(row.metrics.get("auroc"))))
    return out


def ood_section(ev: Evaluation, ctx: CardContext) -> str:
    pairs = ev.cells(OODPair)
    if not pairs:
        return section("Out-of-distribution detection", note(run_hint(SUITE)), anchor=SUITE)
    entries = [(pair.label(), {m: row.metrics[m] for m in PAIR_METRICS if m in row.metrics}) for pair, row in pairs]
    summary = next((row for _, row in ev.summaries(SUITE)), None)
    parts = [
        figure(roc_curves(ctx.figures, curves(ev)), "ROC curves per OOD set and detector (in-distribution = "
               "positive, higher score = more in-distribution).", "no ROC curve data stored"),
        subsection("Per OOD set and detector", metrics_table(entries, first="OOD set / detector",
                                                             names=PAIR_METRICS)),
    ]
    if summary is not None and summary.metrics:
        parts.append(subsection("Means over OOD sets", metrics_table([("summary", summary.metrics)], first="")))
    return section("Out-of-distribution detection", *parts, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Out-of-distribution detection", 50, ood_columns, ood_section))
