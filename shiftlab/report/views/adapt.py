"""The test-time adaptation view: top-1 error before and after adaptation per corruption and severity,
and calibration before and after (adaptation often hurts ECE), for every adaptation setting stored.

Methods: BN adaptation (Schneider et al. 2020, arXiv:2006.16971), TENT (Wang et al. 2021,
arXiv:2006.10726), SITA (Khurana et al. 2021, arXiv:2112.02355), MEMO (Zhang et al. 2022,
arXiv:2110.09506). Adapted rows (:class:`~shiftlab.core.identity.AdaptedCell`) belong to the
corruptions and calibration suites; each is paired with the suite's unadapted row of the same cell
(:class:`CorruptionCell`, :class:`CalibrationCell`), read by the type of its identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from shiftlab.core.identity import AdaptedCell, AdaptedSummary, AdaptSetting, CalibrationCell, CorruptionCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column, show
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import MISSING, cell, note, section, subsection, table
from shiftlab.report.values import finite
from shiftlab.report.views.base import CardContext, SuiteView, register
from shiftlab.store import TaskRow

SUITE = "adapt"
"""The view's key; adapted rows are stored under the corruptions and calibration suites."""
HINT = ("No test-time adaptation is stored for this model on this data: shiftlab evaluate --model CHECKPOINT "
        "--suite corruptions --adapt tent (or bn-adapt, sita, memo; add --suite calibration for ECE)")
CALIBRATION_METRICS = ("accuracy", "ece", "nll")


def error_of(row: TaskRow | None) -> float | None:
    """A row's top-1 error (stored as ``error``, or as ``accuracy`` by the calibration suite)."""
    if row is None:
        return None
    error = finite(row.metrics.get("error"))
    if error is not None:
        return error
    accuracy = finite(row.metrics.get("accuracy"))
    return None if accuracy is None else 1.0 - accuracy


def adapted(ev: Evaluation, suite: str) -> list[tuple[AdaptedCell, TaskRow]]:
    return [(c, row) for c, row in ev.cells(AdaptedCell) if c.of == suite]


def groups(ev: Evaluation, suite: str) -> list[tuple[AdaptSetting, str | None]]:
    """Every (setting, parameter table) with adapted rows in ``suite``, by setting then table."""
    found = {(c.setting(), c.table) for c, _ in adapted(ev, suite)}
    return sorted(found, key=lambda g: (g[0].label(), g[1] or ""))


def pair(before: float | None, after: float | None, metric: str) -> str:
    """A ``<td>`` reading "before → after", formatted by the metric's quantity."""
    q = quantity(metric)
    if before is None and after is None:
        return cell(MISSING)
    text = f"{show(q, before) if before is not None else MISSING} → {show(q, after) if after is not None else MISSING}"
    return cell(text, title=f"{q.description}: without adaptation → with adaptation")


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def error_table(ev: Evaluation, setting: AdaptSetting, table_name: str) -> str:
    """Corruption × severity: error without → with adaptation, and per severity the mean over the
    corruptions that have both."""
    mine = {c.shift(): row for c, row in adapted(ev, "corruptions") if c.setting() == setting and c.table == table_name}
    source = {c: row for c, row in ev.cells(CorruptionCell) if c.table == table_name}
    cells = [c for c in mine if c is not None]
    names = sorted({c.corruption for c in cells})
    severities = sorted({c.severity for c in cells})
    rows = []
    for name in names:
        row = [name]
        for s in severities:
            key = CorruptionCell(name, s, table_name)
            row.append(pair(error_of(source.get(key)), error_of(mine.get(key)), "error") if key in mine else cell(MISSING))
        rows.append(row)
    means = ["mean"]
    for s in severities:
        both = [(b, a) for c in cells if c.severity == s and (b := error_of(source.get(c))) is not None
                and (a := error_of(mine[c])) is not None]
        means.append(pair(mean([b for b, _ in both]), mean([a for _, a in both]), "error"))
    rows.append(means)
    return table(["corruption", *(f"severity {s}" for s in severities)], rows)


def summary_note(ev: Evaluation, suite: str, setting: AdaptSetting, table_name: str | None) -> str:
    row = ev.find(AdaptedSummary(suite, table_name, setting.adapter, setting.args, setting.batch_size, setting.mode,
                                 setting.order))
    if row is None:
        return note("no summary stored for this setting")
    m = row.metrics
    parts = []
    if "mean_corruption_error" in m:
        before = m.get("unadapted_mean_corruption_error")
        parts.append("mean corruption error " + (f"{show(quantity('error'), before)} → " if before is not None else "")
                     + show(quantity("error"), m["mean_corruption_error"]))
    if "ece/all" in m:
        before = m.get("ece/unadapted")
        parts.append("mean ECE " + (f"{show(quantity('ece'), before)} → " if before is not None else "")
                     + show(quantity("ece"), m["ece/all"]))
    if "seconds_per_image" in m:
        parts.append(f"adaptation time {1000 * m['seconds_per_image']:.2f} ms per image")
    protocol = row.artifacts.get("protocol")
    pool = protocol.get("pool") if isinstance(protocol, dict) else None
    return note("; ".join(parts) + (f" ({pool}, every severity stored)" if pool else ""))


def calibration_table(ev: Evaluation, setting: AdaptSetting, table_name: str | None) -> str:
    """Clean and each severity (mean over its corruptions): accuracy, ECE and NLL without → with adaptation."""
    mine = [(c, row) for c, row in adapted(ev, "calibration") if c.setting() == setting and c.table in (table_name, None)]
    source = {c: row for c, row in ev.cells(CalibrationCell)}
    grouped: dict[str, list[tuple[TaskRow | None, TaskRow]]] = {}
    for c, row in sorted(mine, key=lambda pair: pair[0].severity or 0):
        shift = c.shift()
        unadapted = CalibrationCell() if shift is None else CalibrationCell(shift.corruption, shift.severity, shift.table)
        grouped.setdefault("clean" if shift is None else f"severity {shift.severity}", []).append((source.get(unadapted), row))
    rows = []
    for label, members in grouped.items():
        line = [label, str(len(members))]
        for metric in CALIBRATION_METRICS:
            before = [v for b, _ in members if b is not None and (v := finite(b.metrics.get(metric))) is not None]
            after = [v for _, a in members if (v := finite(a.metrics.get(metric))) is not None]
            line.append(pair(mean(before), mean(after), metric))
        rows.append(line)
    return table(["test images", "cells", *CALIBRATION_METRICS], rows, text_columns=1)


def adapt_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """No leaderboard column: a setting is compared with its own unadapted rows on the card."""
    return []


def adapt_section(ev: Evaluation, ctx: CardContext) -> str:
    blocks = []
    for setting, table_name in groups(ev, "corruptions"):
        if table_name is None:
            continue
        blocks.append(subsection(f"Error, {setting.label()} ({table_name} table)",
                                 summary_note(ev, "corruptions", setting, table_name),
                                 error_table(ev, setting, table_name)))
    tables: list[str | None] = [*sorted({t for _, t in groups(ev, "calibration") if t is not None})] or [None]
    for setting in sorted({s for s, _ in groups(ev, "calibration")}, key=lambda s: s.label()):
        for table_name in tables:
            blocks.append(subsection(f"Calibration, {setting.label()}" + (f" ({table_name} table)" if table_name else ""),
                                     summary_note(ev, "calibration", setting, table_name),
                                     calibration_table(ev, setting, table_name)))
    if not blocks:
        return section("Test-time adaptation", note(HINT), anchor=SUITE)
    intro = note("Each cell reads: without adaptation → with adaptation, on the same corrupted images. Adaptation "
                 "depends on the batch (its size, its images and, online, the batches before it); the setting names "
                 "the batch size, the mode and the order.")
    return section("Test-time adaptation", intro, *blocks, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Test-time adaptation", 45, adapt_columns, adapt_section))
