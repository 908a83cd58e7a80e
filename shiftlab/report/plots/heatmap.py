"""Corruption × severity heatmaps (the layout of Hendrycks & Dietterich 2019, arXiv:1903.12261).

The colour scale comes from the metric's quantity: its bounds fix the ends and its direction
orients the colour map, so "better" is the same colour whether the metric is an accuracy or an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shiftlab.core.quantities import Quantity
from shiftlab.report.plots.svg import FigureSet, new_figure, styled


def percent_scale(q: Quantity) -> float:
    """100 for quantities shown as percentages (fractions, ratios), else 1."""
    return 100.0 if q.unit in ("fraction", "ratio") else 1.0


def colour_scale(q: Quantity, values: Sequence[float]) -> tuple[str, float, float]:
    """(colour map, low, high) in display units: the quantity's bounds where it has them, else the data's
    range; ``viridis`` runs dark → bright towards better values."""
    scale = percent_scale(q)
    low, high = q.bounds
    lo = low * scale if low is not None else min(values, default=0.0)
    hi = high * scale if high is not None else max(values, default=1.0)
    if hi <= lo:
        hi = lo + 1.0
    return ("viridis_r" if q.higher_is_better is False else "viridis"), lo, hi


def heatmap(figures: FigureSet, rows: list[str], severities: list[int], grid: list[list[float | None]],
            q: Quantity, label: str) -> str | None:
    """A rows × severities grid of one metric; None when there is nothing to draw."""
    scale = percent_scale(q)
    shown = [[math.nan if v is None else scale * v for v in row] for row in grid]
    present = [v for row in shown for v in row if not math.isnan(v)]
    if not rows or not severities or not present:
        return None
    import matplotlib
    from matplotlib.colors import Normalize

    cmap_name, lo, hi = colour_scale(q, present)
    cmap = matplotlib.colormaps[cmap_name]
    norm = Normalize(lo, hi)
    unit = " (%)" if scale == 100.0 else ""
    with styled(**{"axes.grid": False}):
        fig = new_figure(1.6 + 0.75 * len(severities), 1.0 + 0.3 * len(rows))
        ax = fig.add_subplot()
        image = ax.imshow(shown, cmap=cmap, norm=norm, aspect="auto")
        for i, row in enumerate(shown):
            for j, v in enumerate(row):
                text = "—" if math.isnan(v) else f"{v:.0f}" if scale == 100.0 else f"{v:.2f}"
                dark = math.isnan(v) or sum(cmap(norm(v))[:3]) / 3 < 0.5
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(len(severities)), [str(s) for s in severities])
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel("severity (1 = mild … 5 = severe)")
        fig.colorbar(image, ax=ax, label=f"{label}{unit}")
        return figures.svg(fig)
