"""Calibration figures: reliability diagrams (Guo et al. 2017, arXiv:1706.04599) and ECE under
increasing shift (Ovadia et al. 2019, arXiv:1906.02530)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shiftlab.report.plots.svg import FigureSet, new_figure, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True, slots=True)
class Reliability:
    """Per-bin counts, mean confidence and accuracy of one set of predictions."""

    bin_upper: tuple[float, ...]
    count: tuple[float, ...]
    confidence: tuple[float, ...]
    accuracy: tuple[float, ...]


def pool(diagrams: Sequence[Reliability]) -> Reliability | None:
    """Several diagrams with the same bins pooled into one, each bin weighted by its count."""
    usable = [d for d in diagrams if d.count and len(d.count) == len(diagrams[0].count)]
    total = [sum(d.count[i] for d in usable) for i in range(len(usable[0].count))] if usable else []
    if not total or sum(total) == 0:
        return None

    def weighted(field: str) -> tuple[float, ...]:
        return tuple(sum(getattr(d, field)[i] * d.count[i] for d in usable) / n if n else 0.0
                     for i, n in enumerate(total))

    return Reliability(usable[0].bin_upper, tuple(total), weighted("confidence"), weighted("accuracy"))


def reliability_diagrams(figures: FigureSet, diagrams: Mapping[str, Reliability]) -> str | None:
    """Reliability diagrams side by side: accuracy per confidence bin against the diagonal."""
    if not diagrams:
        return None
    with styled():
        fig = new_figure(3.1 * len(diagrams), 3.0)
        for k, (title, rel) in enumerate(diagrams.items(), start=1):
            ax = fig.add_subplot(1, len(diagrams), k)
            width = rel.bin_upper[0] if rel.bin_upper else 1.0
            kept = [i for i, n in enumerate(rel.count) if n > 0]
            ax.bar([rel.bin_upper[i] - width / 2 for i in kept], [rel.accuracy[i] for i in kept], width=width * 0.9,
                   color="#4c72b0", label="accuracy")
            ax.plot([rel.confidence[i] for i in kept], [rel.accuracy[i] for i in kept], "o", color="#dd8452",
                    markersize=3, label="(mean confidence, accuracy)")
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(title, fontsize=8)
            ax.set_xlabel("confidence (max softmax)")
            if k == 1:
                ax.set_ylabel("accuracy")
                ax.legend(fontsize=7, frameon=False, loc="upper left")
        return figures.svg(fig)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3) with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)

    def at(q: float) -> float:
        pos = q * (len(ordered) - 1)
        low = int(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


def _box(ax: Axes, x: float, values: Sequence[float]) -> None:
    """A Tukey box (quartiles, whiskers to the furthest value within 1.5 IQR) with every value as a dot.

    Drawn from primitives: ``Axes.boxplot`` reads every rcParam, which resolves (and may switch) the
    global matplotlib backend.
    """
    from matplotlib.patches import Rectangle

    q1, median, q3 = quartiles(values)
    reach = 1.5 * (q3 - q1)
    low = min(v for v in values if v >= q1 - reach)
    high = max(v for v in values if v <= q3 + reach)
    ax.add_patch(Rectangle((x - 0.25, q1), 0.5, q3 - q1, fill=False, edgecolor="#333333", linewidth=1))
    ax.plot([x - 0.25, x + 0.25], [median, median], color="#dd8452", linewidth=2)
    ax.plot([x, x], [q3, high], color="#333333", linewidth=1)
    ax.plot([x, x], [low, q1], color="#333333", linewidth=1)
    spread = [x - 0.15 + 0.3 * (i + 0.5) / len(values) for i in range(len(values))]
    ax.plot(spread, sorted(values), "o", color="#4c72b0", markersize=3, alpha=0.8)


def ece_by_shift(figures: FigureSet, groups: Mapping[str, Sequence[float]]) -> str | None:
    """ECE (%) per shift intensity; ``groups`` maps "clean", "1", … "5" to ECE values (one per corruption)."""
    keys = [k for k, values in groups.items() if values]
    if len(keys) < 2:
        return None
    with styled():
        fig = new_figure(5.0, 3.2)
        ax = fig.add_subplot()
        for x, key in enumerate(keys):
            _box(ax, x, [100 * v for v in groups[key]])
        ax.set_xlim(-0.6, len(keys) - 0.4)
        ax.autoscale_view(scalex=False)
        ax.set_xticks(range(len(keys)), keys)
        ax.set_xlabel("shift intensity (corruption severity)")
        ax.set_ylabel("ECE (%)")
        return figures.svg(fig)
