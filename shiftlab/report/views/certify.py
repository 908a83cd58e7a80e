"""The certify view: certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019,
"Certified Adversarial Robustness via Randomized Smoothing", arXiv:1902.02918), clean and on corrupted
images (Sun et al. 2021, arXiv:2112.00659).

The leaderboard has, per noise level σ, certified accuracy at r = 0.25 and the average certified
radius (ACR; Zhai et al. 2020, arXiv:2001.02378) on the clean test set; when several sample counts
were run at one σ, the cell with the most samples (n, then n0, then the smallest α) is read. The card
draws, per σ and sample counts, certified accuracy against the radius for the clean images and for
each corruption family (the mean of its cells' curves), and tabulates every cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from shiftlab.core.identity import CertifyCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection, table
from shiftlab.report.plots.certify import CLEAN, certified_curves
from shiftlab.report.values import Value, missing
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register, value_cell
from shiftlab.store import TaskRow

SUITE = "certify"
LEADERBOARD_RADIUS = 0.25
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)
Protocol = tuple[float, int, int, float]
"""(sigma, n, n0, alpha) of a group of cells."""
Curve = tuple[tuple[float, ...], tuple[float, ...]]


def protocol(cell: CertifyCell) -> Protocol:
    return (cell.sigma, cell.n, cell.n0, cell.alpha)


def clean_row(ev: Evaluation, sigma: float) -> TaskRow | None:
    """The clean cell at ``sigma`` with the most samples (n, then n0, then the smallest alpha)."""
    found = [(cell, row) for cell, row in ev.cells(CertifyCell) if cell.is_clean and cell.sigma == sigma]
    if not found:
        return None
    return max(found, key=lambda pair: (pair[0].n, pair[0].n0, -pair[0].alpha))[1]


def sigmas(evaluations: Sequence[Evaluation]) -> list[float]:
    return sorted({cell.sigma for ev in evaluations for cell, _ in ev.cells(CertifyCell) if cell.is_clean})


def radius_metric(r: float) -> str:
    return f"certified_accuracy/{r:g}"


def certified_reader(sigma: float, r: float) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        if not ev.cells(CertifyCell):
            return missing("certify suite not run")
        return ev.accuracy(clean_row(ev, sigma), radius_metric(r), f"no clean certification at σ={sigma:g}")

    return read


def acr_reader(sigma: float) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        if not ev.cells(CertifyCell):
            return missing("certify suite not run")
        return ev.value(clean_row(ev, sigma), "acr", f"no clean certification at σ={sigma:g}")

    return read


def certify_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """Per σ with a clean cell: certified accuracy at r = 0.25 and ACR; the σ most models were certified
    at is the comparison axis."""
    found = sigmas(evaluations)
    coverage = [sum(clean_row(ev, s) is not None for ev in evaluations) for s in found]
    axis = coverage.index(max(coverage)) if coverage else -1
    columns = []
    for i, s in enumerate(found):
        columns.append(Column(f"certified_{LEADERBOARD_RADIUS:g}_sigma_{s:g}",
                              f"certified acc r={LEADERBOARD_RADIUS:g} σ={s:g}",
                              certified_reader(s, LEADERBOARD_RADIUS), quantity("certified_accuracy"),
                              f"fraction of clean test images the smoothed classifier (σ={s:g}) classifies correctly "
                              f"with a certified L2 radius ≥ {LEADERBOARD_RADIUS:g} (Cohen et al. 2019)", axis=(i == axis)))
        columns.append(Column(f"acr_sigma_{s:g}", f"ACR σ={s:g}", acr_reader(s), quantity("acr"),
                              f"average certified L2 radius at σ={s:g}, 0 for wrong or abstained images "
                              "(Zhai et al. 2020)"))
    return columns


def stored_curve(row: TaskRow) -> Curve | None:
    """The ``curve`` artifact (radius ascending, certified accuracy), or None when absent or malformed."""
    data = row.artifacts.get("curve")
    if not isinstance(data, dict):
        return None
    try:
        radius = tuple(float(v) for v in data.get("radius", []))
        accuracy = tuple(float(v) for v in data.get("certified_accuracy", []))
    except (TypeError, ValueError):
        return None
    return (radius, accuracy) if radius and len(radius) == len(accuracy) else None


def where(cell: CertifyCell, row: TaskRow) -> str:
    """The line a cell belongs to: clean, or its corruption family (from the task's params)."""
    if cell.is_clean:
        return CLEAN
    return str(row.params.get("family") or cell.corruption)


def _cells_table(cells: list[tuple[CertifyCell, TaskRow]], ev: Evaluation) -> str:
    names = [radius_metric(r) for r in RADII]
    headers = ["images"] + [f"r={r:g} ↑" for r in RADII] + ["ACR ↑", "abstained ↓"]
    ordered = sorted(cells, key=lambda pair: (not pair[0].is_clean, where(*pair), pair[0].corruption or "",
                                              pair[0].severity or 0))
    rows = []
    for cell, row in ordered:
        label = "clean" if cell.is_clean else f"{cell.corruption} s{cell.severity} ({where(cell, row)})"
        rows.append([label] + [value_cell(m, ev.accuracy(row, m, "")) if m == radius_metric(LEADERBOARD_RADIUS)
                               else metric_cell(m, row.metrics.get(m)) for m in names]
                    + [metric_cell("acr", row.metrics.get("acr")),
                       metric_cell("abstention_rate", row.metrics.get("abstention_rate"))])
    return table(headers, rows)


def certify_section(ev: Evaluation, ctx: CardContext) -> str:
    found = ev.cells(CertifyCell)
    if not found:
        return section("Certified robustness (randomized smoothing)", note(run_hint(SUITE)), anchor=SUITE)
    groups: dict[Protocol, list[tuple[CertifyCell, TaskRow]]] = defaultdict(list)
    for cell, row in found:
        groups[protocol(cell)].append((cell, row))
    blocks = []
    by_counts: dict[tuple[int, int, float], dict[str, dict[str, list[Curve]]]] = defaultdict(dict)
    for (sigma, n, n0, alpha), cells in sorted(groups.items()):
        lines: dict[str, list[Curve]] = defaultdict(list)
        for cell, row in cells:
            curve = stored_curve(row)
            if curve is not None:
                lines[where(cell, row)].append(curve)
        by_counts[(n, n0, alpha)][f"σ = {sigma:g}"] = dict(lines)
        blocks.append(subsection(f"σ = {sigma:g}, n = {n}, n0 = {n0}, α = {alpha:g}", _cells_table(cells, ev)))
    figures = [figure(certified_curves(ctx.figures, panels),
                      f"Certified accuracy against the L2 radius (n = {n}, n0 = {n0}, α = {alpha:g}): the clean test "
                      "set (black) and each corruption family, the mean of its cells' curves (Cohen et al. 2019, "
                      "arXiv:1902.02918; corrupted inputs as in Sun et al. 2021, arXiv:2112.00659).",
                      "no certified-accuracy curves stored")
               for (n, n0, alpha), panels in sorted(by_counts.items())]
    return section("Certified robustness (randomized smoothing)", *figures, *blocks, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Certified robustness (randomized smoothing)", 35, certify_columns, certify_section))
