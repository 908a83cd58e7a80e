"""The Fourier heat map (Yin et al. 2019, arXiv:1906.08988): a metric per basis frequency (i, j) of the
centred spectrum, the zero frequency in the middle. Colours follow the metric's quantity as the
corruption heatmap's do (``plots.heatmap.colour_scale``); the frequencies are too many to print."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shiftlab.core.quantities import Quantity
from shiftlab.report.plots.heatmap import colour_scale, percent_scale
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

MAX_TICKS = 7


def ticks(values: Sequence[int]) -> list[int]:
    """Positions of at most ``MAX_TICKS`` evenly spaced tick labels, always including frequency 0."""
    step = max(1, math.ceil(len(values) / MAX_TICKS))
    zero = values.index(0) if 0 in values else 0
    return sorted({p for p in range(zero % step, len(values), step)} | ({zero} if 0 in values else set()))


def frequency_heatmap(figures: FigureSet, rows: Sequence[int], cols: Sequence[int],
                      grid: Sequence[Sequence[float | None]], q: Quantity, label: str, title: str = "") -> str | None:
    """``grid[r][c]``: the metric at frequency (rows[r], cols[c]); None where nothing was stored."""
    scale = percent_scale(q)
    shown = [[math.nan if v is None else scale * v for v in row] for row in grid]
    present = [v for row in shown for v in row if not math.isnan(v)]
    if not rows or not cols or not present or len(shown) != len(rows) or any(len(r) != len(cols) for r in shown):
        return None
    import matplotlib
    from matplotlib.colors import Normalize

    cmap_name, lo, hi = colour_scale(q, present)
    unit = " (%)" if scale == 100.0 else ""
    with styled(**{"axes.grid": False}):
        fig = new_figure(4.2, 3.4)
        ax = fig.add_subplot()
        image = ax.imshow(shown, cmap=matplotlib.colormaps[cmap_name], norm=Normalize(lo, hi), aspect="equal",
                          interpolation="nearest")
        xt, yt = ticks(list(cols)), ticks(list(rows))
        ax.set_xticks(xt, [str(cols[p]) for p in xt])
        ax.set_yticks(yt, [str(rows[p]) for p in yt])
        ax.set_xlabel("horizontal frequency j (cycles per image)")
        ax.set_ylabel("vertical frequency i")
        if title:
            ax.set_title(title, fontsize=8)
        fig.colorbar(image, ax=ax, label=f"{label}{unit}")
        return figures.svg(fig)
