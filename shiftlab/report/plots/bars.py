"""Grouped bar charts: one group per category (e.g. a perturbation sequence), one bar per series (e.g. the
model and its baseline), one panel per metric. Returns None when it has nothing to draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shiftlab.report.plots.svg import FigureSet, new_figure, styled

GROUP_WIDTH = 0.8
"""Share of a category's slot its bars fill."""


@dataclass(frozen=True, slots=True)
class BarSeries:
    """One bar per category (None: no bar), drawn in ``color``."""

    label: str
    values: tuple[float | None, ...]
    color: str


@dataclass(frozen=True, slots=True)
class BarPanel:
    """One panel: its title, y-axis label, the display scale of its values (100 for percentages) and series."""

    title: str
    ylabel: str
    series: tuple[BarSeries, ...]
    scale: float = 1.0


def grouped_bars(figures: FigureSet, categories: Sequence[str], panels: Sequence[BarPanel]) -> str | None:
    """Panels side by side of bars grouped by category; each bar's hover text gives its value."""
    panels = [p for p in panels if any(v is not None for s in p.series for v in s.values)]
    if not categories or not panels:
        return None
    titles: dict[str, str] = {}
    with styled():
        fig = new_figure(max(4.0, 0.5 * len(categories) + 1.5) * len(panels), 3.2)
        for k, panel in enumerate(panels, start=1):
            ax = fig.add_subplot(1, len(panels), k)
            width = GROUP_WIDTH / len(panel.series)
            for j, series in enumerate(panel.series):
                offset = (j - (len(panel.series) - 1) / 2) * width
                for i, value in enumerate(series.values):
                    if value is None:
                        continue
                    bars = ax.bar([i + offset], [panel.scale * value], width=width * 0.95, color=series.color,
                                  label=series.label if i == next(n for n, v in enumerate(series.values)
                                                                  if v is not None) else None)
                    gid = f"bar{k}-{j}-{i}"
                    bars.patches[0].set_gid(gid)
                    titles[gid] = f"{series.label}, {categories[i]}: {panel.ylabel} {panel.scale * value:.3g}"
            ax.set_xticks(range(len(categories)), list(categories), rotation=30, ha="right", fontsize=7)
            ax.set_title(panel.title, fontsize=8)
            ax.set_ylabel(panel.ylabel)
            ax.set_ylim(bottom=0)
            if len(panel.series) > 1:
                ax.legend(fontsize=7, frameon=False)
        return figures.svg(fig, titles)
