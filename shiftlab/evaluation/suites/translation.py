"""The translation suite: accuracy against the distance an object moves on a larger canvas, the curve of
Kauderer-Abrams 2017, "Quantifying Translation-Invariance in Convolutional Neural Networks"
(arXiv:1801.01450) and Biscione & Bowers 2021, "Convolutional Neural Networks Are Not Invariant to
Translation, but They Can Learn to Be" (arXiv:2110.05861), with the canvas of Azulay & Weiss 2019
(arXiv:1805.12177).

The model's input size is fixed, so the canvas is the input and the object is the image shrunk by
``--translation-scale`` (default 0.75: 21 px on a 28-px canvas; the ``canvas-translate`` transform,
antialiased, the rest of the canvas black or the object's mirror image, ``--translation-fill``). At
distance d the object sits d pixels from the centre in each of the 8 compass directions — offsets with
max(|dx|, |dy|) = d (L∞), so every direction keeps the object whole exactly while d is within the
canvas's reach ((1 − scale)·side / 2) — and the cell's accuracy is the mean over the images and the 8
directions (one placement at d = 0). Averaging over fixed directions, rather than sampling one per image,
makes the curve deterministic and lets it separate directions. ``--translation-distances`` defaults to
every integer from 0 to the reach; larger distances cut the object (zero fill) or fill with its mirror.

One task per :class:`~shiftlab.core.identity.TranslationCell` (distance, scale, fill); it stores the
accuracy, the accuracy under all 8 directions at once, the accuracy per direction and the accuracy of
the same images unshrunk (``clean_accuracy``). Nothing is random, so nothing depends on the seed or the
batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.identity import TranslationCell
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.flags import Flag, items, parse_choice, parse_int, parse_number
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.evaluation.suites.spatial import clean_predictions, pair_outputs
from shiftlab.shifts import TRANSFORMS
from shiftlab.shifts.spatial import FILLS, CanvasParams, canvas_reach

SUITE = "translation"
COMPASS: tuple[tuple[str, int, int], ...] = (("E", 1, 0), ("SE", 1, 1), ("S", 0, 1), ("SW", -1, 1), ("W", -1, 0),
                                             ("NW", -1, -1), ("N", 0, -1), ("NE", 1, -1))
"""The 8 directions as (name, x sign, y sign), y down."""


def parse_distances(value: Any) -> tuple[int, ...]:
    distances = tuple(sorted(dict.fromkeys(parse_int(v, "--translation-distances", 0)
                                           for v in items(value, "--translation-distances"))))
    return distances


def parse_scale(value: Any) -> float:
    scale = parse_number(value, "--translation-scale")
    if not 0 < scale <= 1:
        raise UserError(f"--translation-scale (object side / canvas side) must be in (0, 1], got {value!r}")
    return scale


DISTANCES = Flag("translation_distances", "comma-separated shifts in pixels (L∞, 8 directions each); default every "
                 "integer from 0 to where the object would leave the canvas", parse_distances, metavar="LIST")
SCALE = Flag("translation_scale", "object side / canvas side: the image is shrunk by this and moved on a canvas of "
             "the input size (default 0.75)", parse_scale, metavar="S")
FILL = Flag("translation_fill", "the canvas around the object: zero (black) or reflect (the object's mirror image)",
            parse_choice(FILLS, "--translation-fill"), metavar="FILL")


@dataclass(frozen=True)
class TranslationOptions:
    """Distances (None: 0 to the canvas's reach), the object's scale and the fill."""

    translation_distances: tuple[int, ...] | None = None
    translation_scale: float = 0.75
    translation_fill: str = "zero"
    FLAGS = (DISTANCES, SCALE, FILL)


def directions(distance: int) -> list[tuple[str, int, int]]:
    """(name, dx, dy) of the placements at ``distance``: the centre alone at 0, else the 8 compass offsets."""
    if distance == 0:
        return [("centre", 0, 0)]
    return [(name, sx * distance, sy * distance) for name, sx, sy in COMPASS]


def translation_cells(ctx: EvalContext, opts: TranslationOptions) -> list[TranslationCell]:
    height, width = ctx.data.info.image_size
    reach = min(canvas_reach(height, width, opts.translation_scale))
    distances = opts.translation_distances if opts.translation_distances is not None else tuple(range(reach + 1))
    side = max(height, width)
    too_far = [d for d in distances if d >= side]
    if too_far:
        raise UserError(f"--translation-distances must be below the {side}-px canvas side (the object would be "
                        f"off the canvas), got {too_far[0]}; whole objects reach {reach} px at scale "
                        f"{opts.translation_scale:g}")
    return [TranslationCell(d, opts.translation_scale, opts.translation_fill) for d in distances]


def translation_result(ctx: EvalContext, cell: TranslationCell) -> TaskResult:
    placements = directions(cell.distance)
    offsets = torch.tensor([[dx, dy] for _, dx, dy in placements], dtype=torch.int64)
    transform = TRANSFORMS.get("canvas-translate")
    correct_per = torch.zeros(len(placements), dtype=torch.int64)
    all_correct = clean_correct = n = 0

    def make(images: torch.Tensor, t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return transform.apply(images, CanvasParams(offsets[t], cell.scale, cell.fill))

    for _, x, y in ctx.batches():
        preds, _ = pair_outputs(ctx, x, y, len(placements), make)
        labels = y.cpu()
        correct = preds == labels.view(1, -1)
        correct_per += correct.sum(1)
        all_correct += int(correct.all(0).sum())
        clean_correct += int((clean_predictions(ctx, x, y) == labels).sum())
        n += len(labels)
        ctx.progress.advance(len(labels))
    accuracy = float(correct_per.sum()) / (n * len(placements))
    metrics = {"accuracy": accuracy, "error": 1.0 - accuracy, "accuracy/all_directions": all_correct / n,
               "clean_accuracy": clean_correct / n, "n": float(n)}
    per_direction = {name: float(c) / n for (name, _, _), c in zip(placements, correct_per.tolist(), strict=True)}
    height, width = ctx.data.info.image_size
    return TaskResult(metrics, {"per_direction": per_direction,
                                "offsets": [[dx, dy] for _, dx, dy in placements],
                                "reach": min(canvas_reach(height, width, cell.scale))})


def translation_task(ctx: EvalContext, cell: TranslationCell) -> Task:
    height, width = ctx.data.info.image_size
    params = {"distance": cell.distance, "scale": cell.scale, "fill": cell.fill, "metric": "linf",
              "directions": len(directions(cell.distance)), "reach": min(canvas_reach(height, width, cell.scale))}
    return Task(cell, params, lambda c: translation_result(c, cell))


def build_translation(ctx: EvalContext, opts: TranslationOptions) -> list[Task]:
    return [translation_task(ctx, cell) for cell in translation_cells(ctx, opts)]


SUITES.add(SUITE, Suite(SUITE, "accuracy against the shift of a shrunk image on a canvas (8 directions per distance)",
                        TranslationOptions, build_translation),
           SuiteMeta(("Kauderer-Abrams 2017, arXiv:1801.01450", "Biscione & Bowers 2021, arXiv:2110.05861",
                      "Azulay & Weiss 2019, arXiv:1805.12177")))
