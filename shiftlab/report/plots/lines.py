"""Accuracy curves against a transform's size: accuracy against the rotation angle and the shift of the
spatial grid (Engstrom et al. 2019, arXiv:1712.02779) and against the distance an object moves on a
canvas (Kauderer-Abrams 2017, arXiv:1801.01450). One panel per title, one line per label, fractions
drawn in %, a dotted line per panel for the clean accuracy. Returns None when there is nothing to draw."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from shiftlab.report.plots.palette import distinct_colors
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

Points = Sequence[tuple[float, float]]


def accuracy_lines(figures: FigureSet, panels: Mapping[str, Mapping[str, Points]], xlabels: Mapping[str, str],
                   clean: Mapping[str, float] | None = None, dashed: Collection[str] = (),
                   ylabel: str = "accuracy (%)") -> str | None:
    """Per panel title, per line label, (x, fraction) points; ``xlabels`` names each panel's x axis,
    ``clean`` its clean accuracy (a dotted black line), ``dashed`` the labels drawn dashed."""
    panels = {t: {k: sorted(v) for k, v in lines.items() if v} for t, lines in panels.items()}
    panels = {t: lines for t, lines in panels.items() if lines}
    if not panels:
        return None
    labels = sorted({k for lines in panels.values() for k in lines})
    colors = dict(zip(labels, distinct_colors(len(labels)), strict=True))
    with styled():
        fig = new_figure(4.4 * len(panels), 3.2)
        for k, (title, lines) in enumerate(panels.items(), start=1):
            ax = fig.add_subplot(1, len(panels), k)
            for label in sorted(lines):
                xs, ys = zip(*lines[label], strict=True)
                ax.plot(xs, [100 * y for y in ys], marker="o", markersize=3, color=colors[label], label=label,
                        linestyle="--" if label in dashed else "-")
            if clean and title in clean:
                ax.axhline(100 * clean[title], color="black", linestyle=":", linewidth=1.2, label="clean")
            ax.set_title(title, fontsize=8)
            ax.set_xlabel(xlabels.get(title, ""))
            ax.set_ylabel(ylabel)
            ax.set_ylim(0, 100)
            ax.legend(fontsize=7, frameon=False)
        return figures.svg(fig)
