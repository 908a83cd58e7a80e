"""The fallback section for a suite the report has no view for: its rows are listed, never dropped.

Each row is named by its task identity's label; its metrics are formatted by their quantities.
"""

from __future__ import annotations

from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import note, section
from shiftlab.report.views.base import metrics_table


def generic_section(ev: Evaluation, suite: str) -> str:
    """A table of every stored row of ``suite`` and its metrics."""
    rows = [row for row in ev.rows if row.suite == suite]
    entries = [(row.id.task.label(), row.metrics) for row in rows]
    return section(f"Suite: {suite}",
                   note(f"This report has no view for the {suite} suite yet; its {len(rows)} stored row(s) "
                        "are listed as stored."),
                   metrics_table(entries), anchor=f"suite-{suite}")
