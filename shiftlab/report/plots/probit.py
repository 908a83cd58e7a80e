"""Shifted against in-distribution accuracy on probit axes (Taori et al. 2020, arXiv:2007.00644; Miller et
al. 2021, "Accuracy on the Line", arXiv:2107.04649): the reference models, their fitted line, the line of no
accuracy drop, and the evaluated model highlighted; effective robustness is its height above the fit.

Positions are Φ⁻¹(accuracy) and ticks are labelled in accuracy (%). Every marker has a hover title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from shiftlab.report.plots.palette import ModelStyle
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

_NORMAL = NormalDist()
TICK_STEPS = (10.0, 5.0, 2.0, 1.0, 0.5, 0.2, 0.1)
"""Candidate spacings of the accuracy ticks, in percent."""
LIMIT = 1e-4
"""Accuracies are drawn inside [LIMIT, 1 − LIMIT] (0 % and 100 % lie at infinity on a probit axis)."""


@dataclass(frozen=True, slots=True)
class AccuracyPoint:
    """One model: its name and accuracies (fractions) in and out of distribution."""

    label: str
    in_distribution: float
    shifted: float


def probit_position(accuracy: float) -> float:
    return _NORMAL.inv_cdf(min(max(accuracy, LIMIT), 1.0 - LIMIT))


def probit_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """(position, label) of tick accuracies inside the probit range [low, high]: multiples of the coarsest
    step (10 %, 5 %, 2 %, 1 %, ...) that gives at least three ticks."""
    ticks: list[float] = []
    for step in TICK_STEPS:
        ticks = [k * step for k in range(1, round(100 / step)) if low <= probit_position(k * step / 100) <= high]
        if len(ticks) >= 3:
            break
    return [(probit_position(t / 100), f"{t:.4g}%") for t in ticks]


def padded(positions: Sequence[float]) -> tuple[float, float]:
    """The range of ``positions`` widened by 15 % of its span (of 0.5 probit units when narrower) on each side."""
    low, high = min(positions), max(positions)
    pad = 0.15 * max(high - low, 0.5)
    return low - pad, high + pad


def probit_scatter(figures: FigureSet, references: Sequence[AccuracyPoint], model: AccuracyPoint | None,
                   fit: tuple[float, float] | None, style: ModelStyle, title: str) -> str | None:
    """The reference models (grey), the fit Φ⁻¹(y) = slope·Φ⁻¹(x) + intercept (``fit``), y = x (dashed, where
    it crosses the view) and ``model`` in its own style; None when there is no point to draw."""
    points = list(references) + ([model] if model is not None else [])
    if not points:
        return None
    xs = [probit_position(p.in_distribution) for p in points]
    ys = [probit_position(p.shifted) for p in points]
    x_range, y_range = padded(xs), padded(ys)
    titles: dict[str, str] = {}
    with styled():
        fig = new_figure(4.6, 3.8)
        ax = fig.add_subplot()
        low, high = max(x_range[0], y_range[0]), min(x_range[1], y_range[1])
        if low < high:  # the part of y = x inside the view
            ax.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1, label="no accuracy drop (y = x)")
        if fit is not None:
            slope, intercept = fit
            ax.plot(list(x_range), [slope * x + intercept for x in x_range], color="black", linewidth=1.2,
                    label="fit over the reference models")
        for k, p in enumerate(references):
            marks = ax.scatter([xs[k]], [ys[k]], s=28, color="#7f7f7f", zorder=3,
                               label="reference models" if k == 0 else None)
            marks.set_gid(f"ref{k}")
            titles[f"ref{k}"] = f"{p.label}: {100 * p.in_distribution:.1f}% → {100 * p.shifted:.1f}%"
        if model is not None:
            marks = ax.scatter([xs[-1]], [ys[-1]], s=80, color=style.color, marker=style.marker, edgecolors="black",
                               linewidths=1.2, zorder=4, label=model.label)
            marks.set_gid("model")
            titles["model"] = f"{model.label}: {100 * model.in_distribution:.1f}% → {100 * model.shifted:.1f}%"
        for axis, (lo, hi) in ((ax.xaxis, x_range), (ax.yaxis, y_range)):
            ticks = probit_ticks(lo, hi)
            axis.set_ticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=7)
        ax.set_xlim(*x_range)
        ax.set_ylim(*y_range)
        ax.set_xlabel("in-distribution accuracy (probit scale)")
        ax.set_ylabel("shifted accuracy (probit scale)")
        ax.set_title(title, fontsize=8)
        ax.legend(fontsize=7, frameon=False, loc="best")
        return figures.svg(fig, titles)
