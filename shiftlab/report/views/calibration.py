"""The calibration view: ECE before and after temperature scaling (Guo et al. 2017, arXiv:1706.04599),
reliability diagrams, and calibration under increasing shift (Ovadia et al. 2019, arXiv:1906.02530).

Shifted cells are grouped by their parameter table, read from the typed identity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from shiftlab.core.identity import CalibrationCell, CleanCell, Summary
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column, arrow
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection, table
from shiftlab.report.plots.calibration import Reliability, ece_by_shift, pool, reliability_diagrams
from shiftlab.report.values import Value, finite
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register
from shiftlab.store import TaskRow

SUITE = "calibration"
METRICS = ("ece", "ece_adaptive", "mce", "classwise_ece", "nll", "brier", "accuracy")
POOLED_SEVERITIES = (3, 5)


def clean_ece(ev: Evaluation) -> Value:
    """ECE of the calibration suite's clean cell, else of the clean suite's row (the same 15 bins)."""
    stored = ev.value(ev.find(CalibrationCell()), "ece", "calibration suite not run")
    if stored.value is None and ev.find(CleanCell()) is not None:
        return ev.value(ev.find(CleanCell()), "ece", stored.why)
    return stored


def clean_ece_after_scaling(ev: Evaluation) -> Value:
    return ev.value(ev.find(CalibrationCell()), "ece_ts", "calibration suite not run")


def calibration_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [
        Column("ece", "ECE", clean_ece, quantity("ece"),
               "15-bin expected calibration error on the clean test set (Guo et al. 2017)", axis=True),
        Column("ece_ts", "ECE after TS", clean_ece_after_scaling, quantity("ece_ts"),
               "ECE after temperature scaling fitted on held-out validation data (Guo et al. 2017)"),
    ]


def shifted(ev: Evaluation, table_name: str) -> list[tuple[CalibrationCell, TaskRow]]:
    return [(c, row) for c, row in ev.cells(CalibrationCell) if not c.is_clean and c.table == table_name]


def tables(ev: Evaluation) -> list[str]:
    """Tables with shifted cells or a summary: the one with the most cells first, the rest by name."""
    counts = Counter(c.table for c, _ in ev.cells(CalibrationCell) if c.table)
    for s, _ in ev.summaries(SUITE):
        counts.setdefault(s.table or "", 0)
    counts.pop("", None)
    return sorted(counts, key=lambda t: (-counts[t], t))


def diagrams(ev: Evaluation, clean: TaskRow | None, table_name: str | None) -> dict[str, Reliability]:
    out: dict[str, Reliability] = {}
    for title, artifact in (("clean", "reliability"), ("clean, after TS", "reliability_ts")):
        diagram = artifacts.reliability(clean, artifact) if clean else None
        if diagram:
            out[title] = diagram
    for severity in POOLED_SEVERITIES if table_name else ():
        found = [artifacts.reliability(row) for c, row in shifted(ev, table_name or "") if c.severity == severity]
        pooled = pool([d for d in found if d is not None])
        if pooled:
            out[f"severity {severity}, pooled ({table_name})"] = pooled
    return out


def ece_groups(clean: TaskRow | None, cells: list[tuple[CalibrationCell, TaskRow]]) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = {"clean": []}
    value = finite(clean.metrics.get("ece")) if clean else None
    if value is not None:
        groups["clean"].append(value)
    for c, row in sorted(cells, key=lambda pair: pair[0].severity or 0):
        value = finite(row.metrics.get("ece"))
        if value is not None:
            groups.setdefault(str(c.severity), []).append(value)
    return groups


def _metric_table(clean: TaskRow | None, summaries: list[tuple[Summary, TaskRow]]) -> str:
    headers = ["metric", "clean", "clean after TS"]
    for s, _ in summaries:
        headers += [f"all shifts ({s.table})", f"all shifts after TS ({s.table})"]
    rows = []
    for m in METRICS:
        cells = [metric_cell(m, clean.metrics.get(m) if clean else None),
                 metric_cell(m, clean.metrics.get(f"{m}_ts") if clean else None)]
        for _, row in summaries:
            cells += [metric_cell(m, row.metrics.get(f"{m}/all")), metric_cell(m, row.metrics.get(f"{m}_ts/all"))]
        rows.append([m + arrow(quantity(m))] + cells)
    return table(headers, rows)


def calibration_section(ev: Evaluation, ctx: CardContext) -> str:
    if not ev.cells(CalibrationCell) and not ev.summaries(SUITE):
        return section("Calibration", note(run_hint(SUITE)), anchor=SUITE)
    clean = ev.find(CalibrationCell())
    found = tables(ev)
    parts = [figure(reliability_diagrams(ctx.figures, diagrams(ev, clean, found[0] if found else None)),
                    "Reliability diagrams (Guo et al. 2017, arXiv:1706.04599): clean before and after temperature "
                    "scaling, and pooled over corruptions at severity 3 and 5; bars on the diagonal are perfectly "
                    "calibrated.", "no reliability data stored")]
    for table_name in found:
        parts.append(figure(ece_by_shift(ctx.figures, ece_groups(clean, shifted(ev, table_name))),
                            "ECE over corruptions at each shift intensity (box: quartiles; dots: one corruption "
                            f"each), {table_name} parameter table (Ovadia et al. 2019, arXiv:1906.02530).",
                            f"no shifted calibration cells for {table_name}"))
    temperature = finite(clean.metrics.get("temperature")) if clean else None
    summaries = [(s, row) for s, row in ev.summaries(SUITE) if s.table in found]
    parts.append(subsection("Calibration metrics", _metric_table(clean, summaries),
                            note(f"fitted temperature {temperature:.3f} (on validation data)") if temperature else ""))
    return section("Calibration", *parts, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Calibration", 40, calibration_columns, calibration_section))
