"""Safety axes across models and their Pareto fronts (non-dominated models).

A model is dominated when another is at least as good on every axis and strictly better on one;
only models with a value on every compared axis take part.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.report.leaderboard import Column, Leaderboard


@dataclass(frozen=True)
class Axis:
    key: str
    label: str
    higher_is_better: bool


def safety_axes(board: Leaderboard) -> list[Axis]:
    """clean, corruption, adversarial (the threat most models were attacked at) and calibration."""
    axes = [Axis("clean_acc", "clean accuracy (%)", True), Axis("corruption_acc", "corruption accuracy (%)", True)]
    robust = [c for c in board.columns if c.key.startswith("robust_")]
    if robust:
        def coverage(c: Column) -> tuple[int, int]:
            return (sum(cells[c.key].value is not None for cells in board.cells), board.columns.index(c))

        best = max(robust, key=coverage)
        axes.append(Axis(best.key, best.label.replace("robust %", "robust accuracy (%),"), True))
    axes.append(Axis("ece", "ECE (%)", False))
    axes.append(Axis("ood_auroc", "OOD AUROC (%)", True))
    return axes


def dominates(a: list[float], b: list[float], higher: list[bool]) -> bool:
    better_or_equal = all((x >= y) if h else (x <= y) for x, y, h in zip(a, b, higher, strict=True))
    strictly = any((x > y) if h else (x < y) for x, y, h in zip(a, b, higher, strict=True))
    return better_or_equal and strictly


def pareto_front(values: dict[str, list[float | None]], higher: list[bool]) -> set[str]:
    """Names of the non-dominated entries among those with every value present."""
    complete = {k: [float(x) for x in v if x is not None] for k, v in values.items() if all(x is not None for x in v)}
    return {k for k, v in complete.items() if not any(dominates(w, v, higher) for j, w in complete.items() if j != k)}


def axis_values(board: Leaderboard, axes: list[Axis]) -> dict[str, list[float | None]]:
    """Row label -> values on the axes (fractions)."""
    return {row_label(board, i): [board.cells[i][a.key].value for a in axes]
            for i in range(len(board.evaluations))}


def _suffix(board: Leaderboard, i: int) -> str:
    ds = {ev.dataset for ev in board.evaluations}
    return f" [{board.evaluations[i].dataset}]" if len(ds) > 1 else ""


def row_label(board: Leaderboard, i: int) -> str:
    """A unique, readable label: the model name, plus the dataset key and fingerprint only when needed."""
    ev = board.evaluations[i]
    same_name = sum(e.label == ev.label and e.dataset == ev.dataset for e in board.evaluations) > 1
    return ev.label + _suffix(board, i) + (f" ({ev.fingerprint[:8]})" if same_name else "")
