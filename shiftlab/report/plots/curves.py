"""Line charts of one model: metric against corruption severity, robust accuracy against the attack
budget, and ROC curves of OOD detectors. Each returns None when it has nothing to draw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shiftlab.core.identity import eps_display
from shiftlab.report.plots.palette import distinct_colors
from shiftlab.report.plots.svg import FigureSet, new_figure, styled

LOWEST_OVER_ATTACKS = "lowest over attacks"


def severity_curves(figures: FigureSet, curves: Mapping[str, Sequence[tuple[int, float]]], clean: float | None,
                    label: str) -> str | None:
    """One line per corruption family: a fraction (in %) against severity, clean at severity 0."""
    if not curves:
        return None
    colors = distinct_colors(len(curves))
    with styled():
        fig = new_figure(5.0, 3.2)
        ax = fig.add_subplot()
        for color, (family, points) in zip(colors, curves.items(), strict=True):
            xs = ([0] if clean is not None else []) + [s for s, _ in points]
            ys = ([100 * clean] if clean is not None else []) + [100 * v for _, v in points]
            ax.plot(xs, ys, marker="o", color=color, label=family)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, frameon=False)
        return figures.svg(fig)


@dataclass(frozen=True, slots=True)
class BudgetCurve:
    """Robust accuracy of one attack at one norm: (eps, accuracy) points, eps 0 meaning no attack."""

    attack: str
    norm: str
    points: tuple[tuple[float, float], ...]


def lowest_over_attacks(curves: Sequence[BudgetCurve]) -> list[tuple[float, float]]:
    """The pointwise minimum over attacks at every budget any of them was run at (Croce & Hein 2020's
    worst case over an ensemble, an upper bound on the true robust accuracy)."""
    lowest: dict[float, float] = {}
    for curve in curves:
        for eps, acc in curve.points:
            lowest[eps] = min(lowest.get(eps, acc), acc)
    return sorted(lowest.items())


def attack_curves(figures: FigureSet, curves: Sequence[BudgetCurve]) -> str | None:
    """Robust accuracy (%) against the budget ε, one panel per norm: a line per attack and the dashed
    lowest over attacks."""
    curves = [c for c in curves if c.points]
    if not curves:
        return None
    norms = sorted({c.norm for c in curves})
    attacks = sorted({c.attack for c in curves})
    colors = dict(zip(attacks, distinct_colors(len(attacks)), strict=True))
    with styled():
        fig = new_figure(4.6 * len(norms), 3.2)
        for k, norm in enumerate(norms, start=1):
            ax = fig.add_subplot(1, len(norms), k)
            mine = [c for c in curves if c.norm == norm]
            for curve in mine:
                xs, ys = zip(*sorted(curve.points), strict=True)
                ax.plot(xs, [100 * y for y in ys], marker="o", color=colors[curve.attack], label=curve.attack,
                        alpha=0.85)
            lowest = lowest_over_attacks(mine)
            ax.plot([e for e, _ in lowest], [100 * a for _, a in lowest], color="black", linestyle="--", linewidth=2,
                    label=LOWEST_OVER_ATTACKS)
            budgets = [e for e, _ in lowest]
            if len(budgets) <= 8:
                ax.set_xticks(budgets, ["0" if e == 0 else eps_display(e) for e in budgets])
            ax.set_xlabel(f"budget ε ({norm}, pixel scale [0, 1]; 0 = no attack)")
            ax.set_ylabel("robust accuracy (%)")
            ax.set_ylim(0, 100)
            ax.legend(fontsize=7, frameon=False)
        return figures.svg(fig)


@dataclass(frozen=True, slots=True)
class RocCurve:
    """One detector against one OOD set: the stored ROC points and AUROC."""

    ood_set: str
    detector: str
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    auroc: float | None


def roc_curves(figures: FigureSet, curves: Sequence[RocCurve]) -> str | None:
    """ROC curves, one panel per OOD set, one line per detector (in-distribution = positive)."""
    curves = [c for c in curves if c.fpr]
    if not curves:
        return None
    sets = sorted({c.ood_set for c in curves})
    detectors = sorted({c.detector for c in curves})
    colors = dict(zip(detectors, distinct_colors(len(detectors)), strict=True))
    with styled():
        fig = new_figure(3.4 * len(sets), 3.2)
        for k, name in enumerate(sets, start=1):
            ax = fig.add_subplot(1, len(sets), k)
            for curve in sorted((c for c in curves if c.ood_set == name), key=lambda c: c.detector):
                auroc = "" if curve.auroc is None else f" (AUROC {100 * curve.auroc:.1f}%)"
                ax.plot(curve.fpr, curve.tpr, color=colors[curve.detector], label=f"{curve.detector}{auroc}")
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
            ax.set_title(f"OOD set: {name}", fontsize=8)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.legend(fontsize=7, frameon=False, loc="lower right")
        return figures.svg(fig)
