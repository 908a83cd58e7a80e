"""The common-corruptions view (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", arXiv:1903.12261).

Cells are grouped by their parameter table (cifar, tiny, imagenet), read from the typed identity:
a card shows a heatmap and severity curves per table, so cells computed with a non-default table
are shown too. The leaderboard reads the summary of the default table (its ``protocol`` artifact
says ``default_table``), else of the table with the most cells.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from shiftlab.core.identity import CleanCell, CorruptionCell, Summary
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection, table
from shiftlab.report.plots.curves import severity_curves
from shiftlab.report.plots.heatmap import heatmap
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

SUITE = "corruptions"
SUMMARY_METRICS = ("mean_corruption_accuracy", "mean_corruption_error", "mean_ce", "relative_mean_ce", "clean_error",
                   "baseline_clean_error")
NO_MCE = "mCE not stored: it needs --baseline and all 15 benchmark corruptions at every severity"


def summary_row(ev: Evaluation, table: str) -> TaskRow | None:
    return ev.find(Summary(SUITE, table))


def is_default(ev: Evaluation, table: str) -> bool:
    return artifacts.mapping(summary_row(ev, table), "protocol").get("default_table") is True


def tables(ev: Evaluation) -> list[str]:
    """Every parameter table with cells or a summary: the principal one first, the rest by name."""
    found = {cell.table for cell, _ in ev.cells(CorruptionCell)}
    found |= {s.table for s, _ in ev.summaries(SUITE) if s.table}
    first = principal_table(ev)
    return sorted(found, key=lambda t: (t != first, t))


def principal_table(ev: Evaluation) -> str | None:
    """The default table when a summary says so, else the table with the most cells (ties by name)."""
    for s, _ in ev.summaries(SUITE):
        if s.table and is_default(ev, s.table):
            return s.table
    counts = Counter(cell.table for cell, _ in ev.cells(CorruptionCell))
    if counts:
        return max(sorted(counts), key=lambda t: counts[t])
    return next((s.table for s, _ in ev.summaries(SUITE) if s.table), None)


def corruption_accuracy(ev: Evaluation) -> Value:
    table_name = principal_table(ev)
    if table_name is None:
        return missing("corruptions suite not run")
    stored = ev.value(summary_row(ev, table_name), "mean_corruption_accuracy", "")
    if stored.value is not None:
        return stored
    rows = [row for cell, row in ev.cells(CorruptionCell) if cell.table == table_name]
    return ev.mean_of(rows, "accuracy", f"no corruption accuracy stored for the {table_name} table")


def mean_ce(ev: Evaluation) -> Value:
    table_name = principal_table(ev)
    if table_name is None:
        return missing("corruptions suite not run")
    summary = summary_row(ev, table_name)
    if summary is None:
        return missing(f"no corruptions summary stored for the {table_name} table")
    return baseline_relative(ev, summary, "mean_ce", NO_MCE)


def corruption_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    return [
        Column("corruption_acc", "corruption acc", corruption_accuracy, quantity("mean_corruption_accuracy"),
               "mean top-1 accuracy over corruptions and severities of the default parameter table "
               "(Hendrycks & Dietterich 2019)", axis=True),
        Column("mce", "mCE", mean_ce, quantity("mean_ce"),
               "mean corruption error relative to the baseline model (Hendrycks & Dietterich 2019)"),
    ]


def families(ev: Evaluation, table_name: str) -> dict[str, str]:
    """corruption -> family, from the cells' params and the summary's ``per_corruption`` artifact."""
    out: dict[str, str] = {}
    for name, info in artifacts.mapping(summary_row(ev, table_name), "per_corruption").items():
        if isinstance(info, dict) and info.get("family"):
            out[str(name)] = str(info["family"])
    for cell, row in ev.cells(CorruptionCell):
        if cell.table == table_name and row.params.get("family"):
            out[cell.corruption] = str(row.params["family"])
    return out


def _figures(ev: Evaluation, ctx: CardContext, table_name: str) -> list[str]:
    cells = [(cell, row) for cell, row in ev.cells(CorruptionCell) if cell.table == table_name]
    family = families(ev, table_name)
    names = sorted({c.corruption for c, _ in cells}, key=lambda n: (family.get(n, "other"), n))
    severities = sorted({c.severity for c, _ in cells})
    accuracy = {(c.corruption, c.severity): finite(row.metrics.get("accuracy")) for c, row in cells}
    grid = [[accuracy.get((n, s)) for s in severities] for n in names]
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (name, severity), value in accuracy.items():
        if value is not None:
            buckets[family.get(name, "other")][severity].append(value)
    curves = {f: sorted((s, sum(v) / len(v)) for s, v in by.items()) for f, by in sorted(buckets.items())}
    clean_row = ev.find(CleanCell())
    clean = finite(clean_row.metrics.get("accuracy")) if clean_row else None
    return [
        figure(heatmap(ctx.figures, names, severities, grid, quantity("accuracy"), "accuracy"),
               f"Top-1 accuracy per corruption and severity, {table_name} parameter table (Hendrycks & "
               "Dietterich 2019, arXiv:1903.12261).", f"no accuracy values stored for the {table_name} table"),
        figure(severity_curves(ctx.figures, curves, clean, "accuracy"),
               "Accuracy against severity, averaged over the corruptions of each family; severity 0 is clean.",
               f"no accuracy values stored for the {table_name} table"),
    ]


def _summary(ev: Evaluation, table_name: str) -> list[str]:
    summary = summary_row(ev, table_name)
    if summary is None:
        return [note(f"no corruptions summary stored for the {table_name} table")]
    shown = {m: summary.metrics[m] for m in SUMMARY_METRICS if m in summary.metrics}
    parts = [metrics_table([("summary", shown)], first="")]
    if "mean_ce" not in summary.metrics:
        parts.append(note(str(artifacts.mapping(summary, "baseline").get("missing") or NO_MCE)))
    family = families(ev, table_name)
    names = sorted(artifacts.mapping(summary, "per_corruption")) or sorted(family)
    per = ("error", "ce", "relative_ce")
    rows = [[name, family.get(name, "other")] + [metric_cell(m, summary.metrics.get(f"{m}/{name}")) for m in per]
            for name in names]
    if rows:
        parts.append(table(["corruption", "family", "mean error ↓", "CE ↓", "relative CE ↓"], rows, text_columns=2))
    protocol = artifacts.mapping(summary, "protocol")
    if protocol.get("normalisation"):
        parts.append(note(f"severities {protocol.get('severities')}; all 15 benchmark corruptions: "
                          f"{'yes' if protocol.get('benchmark_complete') else 'no'}; {protocol['normalisation']}"))
    return parts


def corruption_section(ev: Evaluation, ctx: CardContext) -> str:
    found = tables(ev)
    if not found:
        return section("Common corruptions", note(run_hint(SUITE)), anchor=SUITE)
    blocks = []
    for table_name in found:
        default = " (the default for this image size)" if is_default(ev, table_name) else ""
        blocks.append(subsection(f"Parameter table: {table_name}{default}", *_figures(ev, ctx, table_name),
                                 *_summary(ev, table_name)))
    return section("Common corruptions", *blocks, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Common corruptions", 20, corruption_columns, corruption_section))
