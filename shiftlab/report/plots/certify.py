"""Certified accuracy against the L2 radius (the figure of Cohen et al. 2019, arXiv:1902.02918): one
panel per noise level σ, one line per image set (clean, and each corruption family or cell)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shiftlab.report.plots.palette import distinct_colors
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

CLEAN = "clean"
GRID_POINTS = 121


def accuracy_at(radius: Sequence[float], accuracy: Sequence[float], r: float) -> float:
    """A stored step curve's value at ``r``: the accuracy listed at the first radius ≥ r (0 past the last)."""
    for listed, acc in zip(radius, accuracy, strict=True):
        if listed >= r:
            return float(acc)
    return 0.0


def radius_grid(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> list[float]:
    """Radii from 0 to a little past the largest certified radius of any curve."""
    top = max((max(r) for r, _ in curves if r), default=0.0)
    top = max(top * 1.05, 0.05)
    return [top * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]


def mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]], grid: Sequence[float]) -> list[float]:
    """The pointwise mean of step curves on ``grid``."""
    return [sum(accuracy_at(r, a, x) for r, a in curves) / len(curves) for x in grid]


def certified_curves(figures: FigureSet,
                     panels: Mapping[str, Mapping[str, Sequence[tuple[Sequence[float], Sequence[float]]]]]
                     ) -> str | None:
    """One panel per title (e.g. "σ = 0.25"); per line label the step curves to average (each a pair
    (radii, accuracies) as the certify suite stores them). The clean line is black and drawn first."""
    panels = {t: {k: v for k, v in lines.items() if v} for t, lines in panels.items()}
    panels = {t: lines for t, lines in panels.items() if lines}
    if not panels:
        return None
    labels = sorted({k for lines in panels.values() for k in lines if k != CLEAN})
    colors = dict(zip(labels, distinct_colors(len(labels)), strict=True))
    with styled():
        fig = new_figure(4.6 * len(panels), 3.2)
        for k, (title, lines) in enumerate(panels.items(), start=1):
            ax = fig.add_subplot(1, len(panels), k)
            grid = radius_grid([c for curves in lines.values() for c in curves])
            for label in ([CLEAN] if CLEAN in lines else []) + [x for x in labels if x in lines]:
                ys = [100 * v for v in mean_curve(lines[label], grid)]
                if label == CLEAN:
                    ax.plot(grid, ys, color="black", linewidth=2, label=CLEAN)
                else:
                    ax.plot(grid, ys, color=colors[label], linewidth=1.2, label=label)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("L2 radius r (pixel scale [0, 1])")
            ax.set_ylabel("certified accuracy (%)")
            ax.set_ylim(0, 100)
            ax.set_xlim(0, grid[-1])
            ax.legend(fontsize=7, frameon=False)
        return figures.svg(fig)
