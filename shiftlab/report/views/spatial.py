"""The spatial view: accuracy under rotations and translations (Engstrom et al. 2019, "Exploring the
Landscape of Spatial Robustness", arXiv:1712.02779).

The leaderboard has one column per worst-of-k and per grid setting stored (k or the grid size, and the
limits when they are not the paper's ±30°, ±3 px at 32 px); the worst-of-k setting most models were
evaluated with is the comparison axis. The card tabulates every cell (with the clean accuracy of the
same images and the mean accuracy over all image–transform pairs), draws accuracy against the angle and
against the shift of each grid, and summarises which transforms broke the images of the worst-of-k cells.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from shiftlab.core.identity import SpatialCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, table
from shiftlab.report.plots.lines import accuracy_lines
from shiftlab.report.values import Value, finite, missing
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register, value_cell
from shiftlab.store import TaskRow

SUITE = "spatial"
PAPER_LIMITS = (30.0, 3.0)
MODE_ORDER = {"random": 0, "worst-of-k": 1, "grid": 2}


def column_key(cell: SpatialCell) -> str:
    size = f"worst_of_{cell.k}" if cell.mode == "worst-of-k" else f"grid_{cell.rotations}x{cell.translations}"
    limits = (cell.max_rotation, cell.max_translation)
    return f"spatial_{size}" + ("" if limits == PAPER_LIMITS else f"_rot{limits[0]:g}_trans{limits[1]:g}")


def column_label(cell: SpatialCell) -> str:
    size = f"worst-of-{cell.k}" if cell.mode == "worst-of-k" else f"grid {cell.rotations}×{cell.translations}²"
    limits = (cell.max_rotation, cell.max_translation)
    return f"{size} acc" + ("" if limits == PAPER_LIMITS else f" ±{limits[0]:g}° ±{limits[1]:g}px")


def reader(cell: SpatialCell) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        if not ev.cells(SpatialCell):
            return missing("spatial suite not run")
        return ev.accuracy(ev.find(cell), "accuracy", f"no {cell.label()} cell stored")

    return read


def spatial_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """One column per worst-of-k and grid setting found; the best-covered worst-of-k one is an axis."""
    coverage = Counter(cell for ev in evaluations for cell, _ in ev.cells(SpatialCell) if cell.mode != "random")
    found = sorted(coverage, key=lambda c: (MODE_ORDER[c.mode], c.k or 0, c.rotations or 0, c.translations or 0,
                                            c.max_rotation, c.max_translation))
    worst = [c for c in found if c.mode == "worst-of-k"]
    axis = max(worst, key=lambda c: coverage[c]) if worst else None
    return [Column(column_key(c), column_label(c), reader(c), quantity("accuracy"), column_help(c), axis=(c == axis))
            for c in found]


def column_help(cell: SpatialCell) -> str:
    which = (f"{cell.k} random" if cell.mode == "worst-of-k"
             else f"the {cell.rotations}×{cell.translations}×{cell.translations} grid of")
    return (f"fraction of test images classified correctly under every one of {which} rotations within "
            f"±{cell.max_rotation:g}° and shifts within ±{cell.max_translation:g} px at 32 px (Engstrom et al. 2019)")


def per_transform(row: TaskRow) -> list[tuple[float, float, float, float]] | None:
    """(angle, dx, dy, accuracy) of every grid transform, or None when absent or malformed."""
    data = artifacts.mapping(row, "per_transform")
    try:
        columns = [[float(v) for v in data[name]] for name in ("angle", "dx", "dy", "accuracy")]
    except (KeyError, TypeError, ValueError):
        return None
    if not columns[0] or len({len(c) for c in columns}) != 1:
        return None
    return list(zip(*columns, strict=True))


def _mean_by(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    groups: dict[float, list[float]] = defaultdict(list)
    for x, y in points:
        groups[x].append(y)
    return [(x, sum(ys) / len(ys)) for x, ys in sorted(groups.items())]


def grid_figure(ctx: CardContext, cell: SpatialCell, row: TaskRow) -> str:
    found = per_transform(row)
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {}
    if found:
        panels["rotation"] = {"mean over shifts": _mean_by([(a, acc) for a, _, _, acc in found]),
                              "no shift": [(a, acc) for a, dx, dy, acc in found if dx == 0 and dy == 0]}
        panels["translation"] = {"dx (mean over angle, dy)": _mean_by([(dx, acc) for _, dx, _, acc in found]),
                                 "dy (mean over angle, dx)": _mean_by([(dy, acc) for _, _, dy, acc in found])}
    clean = finite(row.metrics.get("clean_accuracy"))
    svg = accuracy_lines(ctx.figures, panels, {"rotation": "rotation angle (degrees, counter-clockwise)",
                                               "translation": "shift (pixels; x right, y down)"},
                         {t: clean for t in panels} if clean is not None else None)
    return figure(svg, f"Accuracy of every transform of the {cell.label()} grid, averaged over the other two "
                  "parameters (Engstrom et al. 2019, arXiv:1712.02779); dotted: the same images unchanged.",
                  f"no per-transform accuracies stored for {cell.label()}")


def breaking_note(cell: SpatialCell, row: TaskRow) -> str:
    """How many images broke, and the mean size of the transforms that broke them."""
    images: dict[str, Any] = artifacts.mapping(row, "per_image")
    try:
        angles = [abs(float(a)) for a in images["angle"] if a is not None]
        shifts = [max(abs(float(x)), abs(float(y))) for x, y in zip(images["dx"], images["dy"], strict=True)
                  if x is not None and y is not None]
    except (KeyError, TypeError, ValueError):
        return ""
    if not angles or len(angles) != len(shifts):
        return ""
    return note(f"{cell.label()}: {len(angles)} images broken; the transform that broke each (the misclassified one "
                f"with the highest loss) turns by {sum(angles) / len(angles):.1f}° and shifts by "
                f"{sum(shifts) / len(shifts):.2f} px (largest axis) on average.")


def spatial_section(ev: Evaluation, ctx: CardContext) -> str:
    found = sorted(ev.cells(SpatialCell), key=lambda pair: (pair[0].max_rotation, pair[0].max_translation,
                                                            MODE_ORDER[pair[0].mode], pair[0].k or 0,
                                                            pair[0].rotations or 0))
    if not found:
        return section("Spatial robustness (rotations and translations)", note(run_hint(SUITE)), anchor=SUITE)
    rows = [[cell.label(), value_cell("accuracy", ev.accuracy(row, "accuracy", "")),
             metric_cell("clean_accuracy", row.metrics.get("clean_accuracy")),
             metric_cell("accuracy", row.metrics.get("accuracy/average")), metric_cell("n", row.metrics.get("n"))]
            for cell, row in found]
    parts = [table(["cell", "accuracy ↑", "clean (same images) ↑", "mean over transforms ↑", "images"], rows)]
    parts += [grid_figure(ctx, cell, row) for cell, row in found if cell.mode == "grid"]
    parts += [text for cell, row in found if cell.mode == "worst-of-k" and (text := breaking_note(cell, row))]
    return section("Spatial robustness (rotations and translations)", *parts, anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Spatial robustness (rotations and translations)", 22, spatial_columns,
                          spatial_section))
