"""Comparison figures: a Pareto scatter of models on two safety axes and a radar chart per model.

On the scatter only the non-dominated models are labelled, at spots that overlap neither each
other nor any marker (:mod:`~shiftlab.report.plots.labels`); every point carries an SVG
``<title>``, so hovering any marker names its model and values.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shiftlab.report.plots.labels import around, place_labels
from shiftlab.report.plots.palette import ModelStyle
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABEL_FONT = 7
MARKER_HALF = 6.0
"""Half-width (pixels) of the clearance kept around every marker."""


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One model on two axes (values in display units, e.g. percent)."""

    label: str
    style: ModelStyle
    x: float
    y: float


def _pixels(ax: Axes, points: Sequence[ParetoPoint]) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in ax.transData.transform([(p.x, p.y) for p in points])] if points else []


def _label_front(fig: Figure, points: Sequence[ParetoPoint], front: Collection[str]) -> None:
    ax = fig.axes[0]
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    chosen = sorted((p for p in points if p.label in front), key=lambda p: (p.x, p.y, p.label))
    probes = [ax.text(0, 0, p.label, fontsize=LABEL_FONT) for p in chosen]
    fig.draw_without_rendering()
    sizes = [(box.width, box.height) for box in (t.get_window_extent() for t in probes)]
    for probe in probes:
        probe.remove()
    markers = [around(x, y, MARKER_HALF) for x, y in _pixels(ax, points)]
    anchors = _pixels(ax, chosen)
    to_points = 72.0 / fig.dpi
    for p, (dx, dy) in zip(chosen, place_labels(anchors, sizes, markers), strict=True):
        ax.annotate(p.label, (p.x, p.y), xytext=(dx * to_points, dy * to_points), textcoords="offset points",
                    fontsize=LABEL_FONT, ha="left", va="bottom")


def pareto_scatter(figures: FigureSet, points: Sequence[ParetoPoint], front: Collection[str], xlabel: str,
                   ylabel: str, higher: tuple[bool, bool]) -> str | None:
    """Models on two axes; the non-dominated ones ringed, joined and labelled, the rest named on hover."""
    if not points:
        return None
    titles: dict[str, str] = {}
    with styled():
        fig = new_figure(4.6, 3.6)
        ax = fig.add_subplot()
        ax.margins(0.15)
        for k, p in enumerate(points):
            on_front = p.label in front
            marks = ax.scatter([p.x], [p.y], s=70 if on_front else 35, color=p.style.color, marker=p.style.marker,
                               edgecolors="black" if on_front else "none", linewidths=1.2, zorder=3)
            gid = f"point{k}"
            marks.set_gid(gid)
            titles[gid] = (f"{p.label}: {xlabel} {p.x:.1f}, {ylabel} {p.y:.1f}"
                           + (" (non-dominated)" if on_front else ""))
        line = sorted(((p.x, p.y) for p in points if p.label in front), reverse=higher[0])
        if len(line) > 1:
            ax.step([x for x, _ in line], [y for _, y in line], where="post", color="black", linewidth=1,
                    linestyle=":", zorder=2)
        ax.set_xlabel(xlabel + (" ↑" if higher[0] else " ↓"))
        ax.set_ylabel(ylabel + (" ↑" if higher[1] else " ↓"))
        _label_front(fig, points, front)
        return figures.svg(fig, titles)


def radar(figures: FigureSet, spokes: Sequence[str], values: Sequence[float | None], style: ModelStyle,
          title: str) -> str | None:
    """Scores in [0, 1] (higher is better on every spoke) as a radar; a spoke without a value is drawn
    at 0 and marked "not run"."""
    if len(spokes) < 3 or all(v is None for v in values):
        return None
    angles = [2 * math.pi * i / len(spokes) for i in range(len(spokes))]
    radii = [100 * (v or 0.0) for v in values]
    with styled():
        fig = new_figure(3.4, 3.4)
        ax = fig.add_subplot(projection="polar")
        ax.plot(angles + angles[:1], radii + radii[:1], color=style.color, linewidth=2, marker=style.marker)
        ax.fill(angles + angles[:1], radii + radii[:1], color=style.color, alpha=0.25)
        names = [f"{s}\n(not run)" if v is None else s for s, v in zip(spokes, values, strict=True)]
        ax.set_xticks(angles, names, fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75, 100], ["25%", "50%", "75%", "100%"], fontsize=6)
        ax.set_title(title, fontsize=8)
        return figures.svg(fig)
