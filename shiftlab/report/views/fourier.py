"""The fourier view: the Fourier heat map of Yin et al. 2019, "A Fourier Perspective on Model Robustness in
Computer Vision" (arXiv:1906.08988).

The leaderboard has, per norm r (and stride, when frequencies were skipped), the error averaged over the
heat map; the card draws each cell's heat map (error per basis frequency, zero frequency in the middle)
and tabulates its mean, low- and high-frequency and largest errors next to the clean error of the same
images.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from shiftlab.core.identity import FourierCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, table
from shiftlab.report.plots.spectrum import frequency_heatmap
from shiftlab.report.values import Value, finite, missing
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register
from shiftlab.store import TaskRow

SUITE = "fourier"
SHOWN = ("error", "error/low", "error/high", "error/max", "clean_error", "n")
HEADERS = ("mean error ↓", "low frequencies ↓", "high frequencies ↓", "worst frequency ↓", "clean ↓", "images")


def column_key(cell: FourierCell) -> str:
    return f"fourier_error_r{cell.norm:g}" + (f"_stride{cell.stride}" if cell.stride > 1 else "")


def reader(cell: FourierCell) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        if not ev.cells(FourierCell):
            return missing("fourier suite not run")
        return ev.value(ev.find(cell), "error", f"no {cell.label()} stored")

    return read


def fourier_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """One column per (norm, stride) found; the best-covered one is an axis."""
    coverage = Counter(cell for ev in evaluations for cell, _ in ev.cells(FourierCell))
    found = sorted(coverage, key=lambda c: (c.norm, c.stride))
    axis = max(found, key=lambda c: coverage[c]) if found else None
    return [Column(column_key(c), f"Fourier err r={c.norm:g}" + (f" /{c.stride}" if c.stride > 1 else ""), reader(c),
                   quantity("error"), f"top-1 error under Fourier-basis noise of L2 norm {c.norm:g}, averaged over the "
                   "basis frequencies" + (f" that are multiples of {c.stride}" if c.stride > 1 else "")
                   + " (Yin et al. 2019)", axis=(c == axis)) for c in found]


def stored_heatmap(row: TaskRow) -> tuple[list[int], list[int], list[list[float | None]]] | None:
    """(rows, cols, error grid) of a cell's ``heatmap`` artifact, or None when absent or malformed."""
    data = artifacts.mapping(row, "heatmap")
    try:
        rows = [int(v) for v in data["rows"]]
        cols = [int(v) for v in data["cols"]]
        grid = [[finite(v) for v in line] for line in data["error"]]
    except (KeyError, TypeError, ValueError):
        return None
    return rows, cols, grid


def heatmap_figure(ctx: CardContext, cell: FourierCell, row: TaskRow) -> str:
    found = stored_heatmap(row)
    svg = frequency_heatmap(ctx.figures, *found, quantity("error"), "error", cell.label()) if found else None
    return figure(svg, f"Top-1 error under x + r·v·U(i,j), r = {cell.norm:g}, for every basis frequency (i, j)"
                  + (f" that is a multiple of {cell.stride}" if cell.stride > 1 else "")
                  + "; the centre is the zero frequency, the edges the highest (Yin et al. 2019, arXiv:1906.08988).",
                  f"no heat map stored for {cell.label()}")


def fourier_section(ev: Evaluation, ctx: CardContext) -> str:
    found = sorted(ev.cells(FourierCell), key=lambda pair: (pair[0].norm, pair[0].stride))
    if not found:
        return section("Fourier heat map", note(run_hint(SUITE)), anchor=SUITE)
    rows = [[cell.label()] + [metric_cell(m, row.metrics.get(m)) for m in SHOWN] for cell, row in found]
    return section("Fourier heat map", *[heatmap_figure(ctx, cell, row) for cell, row in found],
                   table(["cell", *HEADERS], rows),
                   note("Low frequencies: max(|i|/H, |j|/W) below 1/4 cycle per pixel; high: the rest up to the "
                        "Nyquist frequency 1/2."), anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Fourier heat map", 26, fourier_columns, fourier_section))
