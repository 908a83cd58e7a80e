"""The translation view: accuracy against the distance an object moves on a larger canvas
(Kauderer-Abrams 2017, arXiv:1801.01450; Biscione & Bowers 2021, arXiv:2110.05861; the canvas of Azulay
& Weiss 2019, arXiv:1805.12177).

The leaderboard has, per canvas setting (object scale and fill), the accuracy at the largest distance
most models were evaluated at; the card draws accuracy against the distance (the mean over the 8
directions, and the fraction of images right in all 8) with the unshrunk images' accuracy for reference,
and tabulates every cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from shiftlab.core.identity import TranslationCell
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, table
from shiftlab.report.plots.lines import accuracy_lines
from shiftlab.report.values import Value, finite, missing
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register
from shiftlab.store import TaskRow

SUITE = "translation"
DEFAULT = (0.75, "zero")
MEAN, ALL = "mean over 8 directions", "all 8 directions"
Setting = tuple[float, str]


def setting(cell: TranslationCell) -> Setting:
    return (cell.scale, cell.fill)


def title(s: Setting) -> str:
    return f"object scale {s[0]:g}, {s[1]} fill"


def reader(cell: TranslationCell) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        if not ev.cells(TranslationCell):
            return missing("translation suite not run")
        return ev.value(ev.find(cell), "accuracy", f"no translation cell at {cell.distance} px for {title(setting(cell))}")

    return read


def translation_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """Per setting: the accuracy at the largest distance that the most evaluations have."""
    counts: dict[Setting, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for ev in evaluations:
        for cell, _ in ev.cells(TranslationCell):
            counts[setting(cell)][cell.distance] += 1
    columns = []
    for s in sorted(counts, key=lambda s: (s != DEFAULT, s)):
        top = max(counts[s].values())
        distance = max(d for d, c in counts[s].items() if c == top)
        suffix = "" if s == DEFAULT else f"_s{s[0]:g}_{s[1]}"
        columns.append(Column(f"translation_acc_d{distance}{suffix}",
                              f"shift {distance}px acc" + ("" if s == DEFAULT else f" ({s[0]:g}, {s[1]})"),
                              reader(TranslationCell(distance, *s)), quantity("accuracy"),
                              f"accuracy with the image shrunk to {s[0]:g} of the canvas and moved {distance} px in each "
                              "of 8 directions, averaged (Kauderer-Abrams 2017; Biscione & Bowers 2021)",
                              axis=(s == DEFAULT)))
    return columns


def worst_direction(row: TaskRow) -> float | None:
    values = [finite(v) for v in artifacts.mapping(row, "per_direction").values()]
    present = [v for v in values if v is not None]
    return min(present) if present else None


def translation_section(ev: Evaluation, ctx: CardContext) -> str:
    found = sorted(ev.cells(TranslationCell), key=lambda pair: (setting(pair[0]), pair[0].distance))
    if not found:
        return section("Translation on a canvas", note(run_hint(SUITE)), anchor=SUITE)
    panels: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: {MEAN: [], ALL: []})
    clean: dict[str, list[float]] = defaultdict(list)
    for cell, row in found:
        name = title(setting(cell))
        for label, metric in ((MEAN, "accuracy"), (ALL, "accuracy/all_directions")):
            value = finite(row.metrics.get(metric))
            if value is not None:
                panels[name][label].append((float(cell.distance), value))
        if (c := finite(row.metrics.get("clean_accuracy"))) is not None:
            clean[name].append(c)
    svg = accuracy_lines(ctx.figures, panels, {name: "shift d (pixels, L∞; 0 = centred)" for name in panels},
                         {name: sum(v) / len(v) for name, v in clean.items()}, dashed={ALL})
    rows = [[str(cell.distance), f"{cell.scale:g}", cell.fill, metric_cell("accuracy", row.metrics.get("accuracy")),
             metric_cell("accuracy", row.metrics.get("accuracy/all_directions")),
             metric_cell("accuracy", worst_direction(row)),
             metric_cell("clean_accuracy", row.metrics.get("clean_accuracy")), metric_cell("n", row.metrics.get("n"))]
            for cell, row in found]
    return section(
        "Translation on a canvas",
        figure(svg, "Accuracy against the shift of the shrunk image from the canvas centre: the mean over the 8 "
               "compass directions and the fraction of images right in all 8 (dashed); dotted: the unshrunk images "
               "(Kauderer-Abrams 2017, arXiv:1801.01450).", "no translation accuracies stored"),
        table(["shift (px)", "scale", "fill", "accuracy ↑", "all 8 directions ↑", "worst direction ↑",
               "unshrunk ↑", "images"], rows, text_columns=3),
        anchor=SUITE)


VIEW = register(SuiteView(SUITE, "Translation on a canvas", 24, translation_columns, translation_section))
