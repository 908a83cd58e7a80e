"""The spatial suite: accuracy under rotations and translations, as in Engstrom et al. 2019, "Exploring
the Landscape of Spatial Robustness" (arXiv:1712.02779).

Every image is rotated about its centre by at most ``--spatial-rotation`` degrees (default 30) and moved
by at most ``--spatial-translation`` pixels *at 32 px* (default 3) along each axis, scaled to the image:
the limits are t·W/32 and t·H/32 pixels (2.625 px on 28-px Fashion-MNIST), so one setting means the same
fraction of the image at every size, as the paper's ±3 px on CIFAR's 32 px does. The warp is the
``spatial`` transform (bilinear, black outside the image). Three cells (``--spatial-modes``):

- ``random``: one uniformly random (angle, dx, dy) per image;
- ``worst-of-k``: ``--spatial-k`` (default 10) random transforms per image; an image counts as correct
  only if it is correct under all k (the paper's worst-of-10);
- ``grid``: every transform of the grid ``--spatial-grid RxT`` (default 5x5: R angles × T × T shifts, each
  axis ``linspace(-limit, limit, count)`` as in the authors' code; they use 31x5); correct only if
  correct under all of them.

Random transforms are drawn from per-image streams keyed by (seed, the two limits, image index), not by
the cell: the random cell's transform is the first of the worst-of-k draws and the worst of k draws is
a prefix of the worst of more, so worst-of-k ≤ random holds image by image. Images are evaluated in
blocks of ``SPATIAL_BLOCK``; every finished block is kept in the store, so a killed run resumes at the
first unfinished block. All transforms of a block are applied and classified ``--batch-size`` pairs
(image, transform) per forward pass, so no number depends on the batch size. A cell stores its accuracy,
the clean accuracy of the same images, the mean accuracy over all (image, transform) pairs, and per
image which transform broke it (the one with the highest cross-entropy among those misclassified: index,
angle, dx, dy) and how many did; a grid cell also stores the accuracy of every grid transform.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from shiftlab.core.errors import UserError
from shiftlab.core.identity import SPATIAL_MODES, SpatialCell
from shiftlab.core.seeding import ImageStreams
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.flags import Flag, items, parse_int, parse_number
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.shifts import TRANSFORMS
from shiftlab.shifts.spatial import affine_params, engstrom_grid

SUITE = "spatial"
SPATIAL_BLOCK = 64
"""Images per resumable unit (each image's transforms are its own, so this never changes a number)."""
REFERENCE_SIDE = 32
"""``--spatial-translation`` is in pixels of a 32-px image (Engstrom et al.'s CIFAR-10 setting)."""
DRAWS = "spatial-draws"

MakeBatch = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``make(images, t, b)``: the pairs' images (already gathered) under transform ``t`` of image ``b``."""


def parse_modes(value: Any) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(m.lower() for m in items(value, "--spatial-modes")))
    bad = [m for m in modes if m not in SPATIAL_MODES]
    if bad:
        raise UserError(f"--spatial-modes takes {', '.join(SPATIAL_MODES)}; got {bad[0]!r}")
    return modes


def parse_k(value: Any) -> int:
    return parse_int(value, "--spatial-k", 1, 10_000)


def parse_grid(value: Any) -> tuple[int, int]:
    """``RxT``: R rotation angles and T shifts per axis, e.g. 5x5 or 31x5."""
    text = str(value).strip().lower()
    parts = text.split("x")
    if len(parts) != 2:
        raise UserError(f"--spatial-grid expects ROTATIONSxTRANSLATIONS such as 5x5 or 31x5, got {value!r}")
    return parse_int(parts[0], "--spatial-grid rotations", 1, 1000), parse_int(parts[1], "--spatial-grid translations",
                                                                               1, 1000)


def parse_rotation(value: Any) -> float:
    degrees = parse_number(value, "--spatial-rotation")
    if not 0 <= degrees <= 180:
        raise UserError(f"--spatial-rotation must be a number of degrees in [0, 180], got {value!r}")
    return degrees


def parse_translation(value: Any) -> float:
    pixels = parse_number(value, "--spatial-translation")
    if not 0 <= pixels <= REFERENCE_SIDE:
        raise UserError(f"--spatial-translation must be in [0, {REFERENCE_SIDE}] pixels at 32 px, got {value!r}")
    return pixels


MODES = Flag("spatial_modes", "spatial cells to run: random, worst-of-k, grid (default all three)", parse_modes,
             metavar="LIST")
K = Flag("spatial_k", "random transforms per image of the worst-of-k cell (Engstrom et al.: 10)", parse_k, metavar="K")
GRID = Flag("spatial_grid", "grid size RxT: R angles × T×T shifts (default 5x5; the paper's code uses 31x5)", parse_grid,
            metavar="RxT")
ROTATION = Flag("spatial_rotation", "largest rotation in degrees (default 30)", parse_rotation, metavar="DEG")
TRANSLATION = Flag("spatial_translation", "largest shift per axis in pixels at 32 px, scaled to the image side "
                   "(default 3)", parse_translation, metavar="PX")


@dataclass(frozen=True)
class SpatialOptions:
    """Which cells, k, the grid and the limits (rotation in degrees, translation in pixels at 32 px)."""

    spatial_modes: tuple[str, ...] = SPATIAL_MODES
    spatial_k: int = 10
    spatial_grid: tuple[int, int] = (5, 5)
    spatial_rotation: float = 30.0
    spatial_translation: float = 3.0
    FLAGS = (MODES, K, GRID, ROTATION, TRANSLATION)


def spatial_cells(opts: SpatialOptions) -> list[SpatialCell]:
    rot, trans = opts.spatial_rotation, opts.spatial_translation
    make = {"random": lambda: SpatialCell("random", rot, trans),
            "worst-of-k": lambda: SpatialCell("worst-of-k", rot, trans, k=opts.spatial_k),
            "grid": lambda: SpatialCell("grid", rot, trans, rotations=opts.spatial_grid[0],
                                        translations=opts.spatial_grid[1])}
    return [make[m]() for m in SPATIAL_MODES if m in opts.spatial_modes]


def pixel_limits(cell: SpatialCell, height: int, width: int) -> tuple[float, float, float]:
    """(degrees, dx, dy): the cell's limits, the translation scaled from 32 px to the image."""
    return cell.max_rotation, cell.max_translation * width / REFERENCE_SIDE, cell.max_translation * height / REFERENCE_SIDE


def draws(seed: int, cell: SpatialCell, indices: torch.Tensor, count: int, height: int, width: int) -> torch.Tensor:
    """B×count×3 (angle, dx, dy), float64: the first ``count`` random transforms of each image, uniform in the
    limits, from its own stream keyed by (seed, limits, image index) (the same for the random and the
    worst-of-k cell)."""
    limits = torch.tensor(pixel_limits(cell, height, width), dtype=torch.float64)
    streams = ImageStreams.for_images(seed, f"{DRAWS}/{cell.max_rotation!r}/{cell.max_translation!r}", indices)
    u = streams.rand("transform", (count, 3), dtype=torch.float64)
    return limits * (2.0 * u - 1.0)


def grid_transforms(cell: SpatialCell, height: int, width: int) -> torch.Tensor:
    """T×3 (angle, dx, dy) of the cell's grid, angle-major as ``engstrom_grid`` lists it."""
    assert cell.rotations is not None and cell.translations is not None
    rot, dx, dy = pixel_limits(cell, height, width)
    return torch.tensor(engstrom_grid(rot, dx, dy, cell.rotations, cell.translations), dtype=torch.float64)


def block_transforms(ctx: EvalContext, cell: SpatialCell, indices: torch.Tensor) -> torch.Tensor:
    """B×T×3 (angle, dx, dy) of every image of a block."""
    height, width = ctx.data.info.image_size
    if cell.mode == "grid":
        grid = grid_transforms(cell, height, width)
        return grid.unsqueeze(0).expand(len(indices), *grid.shape)
    return draws(ctx.run.seed, cell, indices, 1 if cell.mode == "random" else int(cell.k or 1), height, width)


def pair_outputs(ctx: EvalContext, x: torch.Tensor, y: torch.Tensor, count: int,
                 make: MakeBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and cross-entropy losses (count × B, on the CPU) of ``count`` transforms of every image of
    ``x``: the pairs (transform t, image b), transform-major, are built by ``make`` and classified
    ``--batch-size`` pairs per forward pass (each pair's output is its own, so the batch never matters)."""
    n = len(x)
    total = count * n
    preds, losses = [], []
    for first in range(0, total, ctx.run.batch_size):
        pair = torch.arange(first, min(first + ctx.run.batch_size, total))
        t, b = pair // n, pair % n
        with torch.inference_mode():
            images = make(x[b.to(x.device)], t, b)
            logits = ctx.model(images).float()
            target = y[b.to(y.device)]
            losses.append(F.cross_entropy(logits, target, reduction="none").cpu())
            preds.append(logits.argmax(1).cpu())
    return torch.cat(preds).view(count, n), torch.cat(losses).view(count, n)


def clean_predictions(ctx: EvalContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The model's predictions (B, on the CPU) on the untransformed images."""
    return pair_outputs(ctx, x, y, 1, lambda images, t, b: images)[0][0]


def worst_transform(correct: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """Per image (column), the index of the misclassified transform with the highest loss; −1 when none is."""
    wrong = losses.masked_fill(correct, float("-inf"))
    return torch.where(correct.all(0), torch.full_like(wrong[0], -1, dtype=torch.int64), wrong.argmax(0))


def block_result(ctx: EvalContext, cell: SpatialCell, start: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """One block's payload: per image its label, clean and transformed correctness and what broke it; per
    grid transform its correct count."""
    indices = torch.arange(start, start + len(y))
    params = block_transforms(ctx, cell, indices)  # B×T×3
    transform = TRANSFORMS.get("spatial")

    def make(images: torch.Tensor, t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        chosen = params[b, t]
        return transform.apply(images, affine_params(degrees=chosen[:, 0], dx=chosen[:, 1], dy=chosen[:, 2]))

    preds, losses = pair_outputs(ctx, x, y, params.shape[1], make)
    labels = y.cpu()
    correct = preds == labels.view(1, -1)
    broken_by = worst_transform(correct, losses)
    picked = params[torch.arange(len(y)), broken_by.clamp_min(0)]
    broken = broken_by >= 0
    payload: dict[str, Any] = {
        "start": start, "label": labels.tolist(), "clean_correct": (clean_predictions(ctx, x, y) == labels).tolist(),
        "correct": correct.all(0).tolist(), "broken_by": broken_by.tolist(), "n_broken": (~correct).sum(0).tolist(),
        "pairs_correct": int(correct.sum()), "pairs": int(correct.numel()),
    }
    for k, name in enumerate(("angle", "dx", "dy")):
        payload[name] = [float(v) if hit else None for v, hit in zip(picked[:, k].tolist(), broken.tolist(), strict=True)]
    if cell.mode == "grid":
        payload["transform_correct"] = correct.sum(1).tolist()
    return payload


def spatial_blocks(ctx: EvalContext, cell: SpatialCell) -> list[dict[str, Any]]:
    """Every block's payload (finished blocks are read back from the store, the rest computed and saved)."""
    return list(ctx.stored_blocks(cell, SPATIAL_BLOCK,
                                  lambda b, start, stop: block_result(ctx, cell, start, *ctx.images(start, stop))))


def spatial_result(ctx: EvalContext, cell: SpatialCell, blocks: list[dict[str, Any]]) -> TaskResult:
    """Metrics and artifacts of one cell from its blocks."""
    names = ("label", "clean_correct", "correct", "broken_by", "n_broken", "angle", "dx", "dy")
    images: dict[str, list[Any]] = {name: [v for blk in blocks for v in blk[name]] for name in names}
    n = len(images["label"])
    pairs = sum(int(blk["pairs"]) for blk in blocks)
    accuracy = sum(images["correct"]) / n if n else float("nan")
    metrics = {"accuracy": accuracy, "error": 1.0 - accuracy, "n": float(n),
               "clean_accuracy": sum(images["clean_correct"]) / n if n else float("nan"),
               "accuracy/average": sum(int(blk["pairs_correct"]) for blk in blocks) / pairs if pairs else float("nan")}
    height, width = ctx.data.info.image_size
    rot, dx, dy = pixel_limits(cell, height, width)
    artifacts: dict[str, Any] = {"per_image": {"index": list(range(n)), **images},
                                 "limits": {"degrees": rot, "dx": dx, "dy": dy}}
    if cell.mode == "grid":
        grid = grid_transforms(cell, height, width)
        counts = [sum(int(blk["transform_correct"][t]) for blk in blocks) for t in range(len(grid))]
        artifacts["per_transform"] = {"angle": grid[:, 0].tolist(), "dx": grid[:, 1].tolist(), "dy": grid[:, 2].tolist(),
                                      "accuracy": [c / n if n else float("nan") for c in counts]}
    return TaskResult(metrics, artifacts)


def spatial_task(ctx: EvalContext, cell: SpatialCell) -> Task:
    height, width = ctx.data.info.image_size
    rot, dx, dy = pixel_limits(cell, height, width)
    params: dict[str, Any] = {"mode": cell.mode, "max_rotation": cell.max_rotation,
                              "max_translation_at_32px": cell.max_translation, "max_dx": dx, "max_dy": dy,
                              "k": cell.k, "rotations": cell.rotations, "translations": cell.translations,
                              "interpolation": "bilinear", "fill": "zero", "seed": ctx.run.seed, "block": SPATIAL_BLOCK}

    def run(ctx: EvalContext) -> TaskResult:
        started = time.perf_counter()
        result = spatial_result(ctx, cell, spatial_blocks(ctx, cell))
        result.metrics["seconds"] = time.perf_counter() - started
        return result

    return Task(cell, params, run)


def build_spatial(ctx: EvalContext, opts: SpatialOptions) -> list[Task]:
    return [spatial_task(ctx, cell) for cell in spatial_cells(opts)]


SUITES.add(SUITE, Suite(SUITE, "rotations and translations (Engstrom et al. 2019): random, worst-of-k and grid "
                               "accuracy, and which transform broke each image", SpatialOptions, build_spatial),
           SuiteMeta(("Engstrom et al. 2019, arXiv:1712.02779",)))
