"""The fourier suite: the Fourier heat map of Yin et al. 2019, "A Fourier Perspective on Model Robustness
in Computer Vision" (arXiv:1906.08988).

For every basis frequency (i, j) of the centred spectrum (signed cycles per image), the model's error on
x + r·v·U_{i,j}, clipped to [0, 1], where U_{i,j} is the unit-L2 Fourier basis image of the
``fourier-basis`` transform and v ∈ {−1, +1} a random sign per image, frequency and channel. The norm r
(``--fourier-norm``, one cell per value) defaults to the paper's value for the image scale: 4 at up to
32 px (their CIFAR-10 value), 8 at up to 64 px (the CIFAR value scaled with the side, so the per-pixel
amplitude is the same), 15.7 above (their ImageNet value). ``--fourier-stride s`` keeps the frequencies
that are multiples of s (default: 1 up to 32 px, else ⌈side / 32⌉, a grid of about 32 × 32). U_{i,j} and
U_{−i,−j} are the same sinusoid up to a phase, so one of each mirror pair is evaluated and the heat map
is symmetric by construction, as the paper's figures are.

Signs come from per-image streams keyed by (seed, image index) and the frequency, not by the cell, so
the cells of two norms perturb each image with the same signs and differ only by r. Images are
evaluated in blocks of ``FOURIER_BLOCK``: a block classifies every (frequency, image) pair, ``--batch-size``
pairs per forward pass, and keeps its per-frequency error counts in the store, so a killed run resumes
at the first unfinished block (a block of images rather than a row of frequencies, because every
frequency's error needs all images and the per-block payload is the same size, one count per
frequency, whatever the image size). A cell stores the heat map (error per (i, j)) and its mean, its
mean over the low and the high frequencies (max(|i|/H, |j|/W) below and from 1/4 cycle per pixel,
the two halves of each axis up to the Nyquist frequency 1/2), its maximum, and the clean error of the
same images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.identity import FourierCell, table_for_size
from shiftlab.core.seeding import ImageStreams
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.flags import Flag, items, parse_int, parse_number
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.evaluation.suites.spatial import clean_predictions, pair_outputs
from shiftlab.shifts import TRANSFORMS
from shiftlab.shifts.fourier import FourierParams, basis_frequencies, frequency_range, mirror

SUITE = "fourier"
FOURIER_BLOCK = 32
"""Images per resumable unit (each image's signs are its own, so this never changes a number)."""
DEFAULT_NORMS = {"cifar": 4.0, "tiny": 8.0, "imagenet": 15.7}
"""r by the image scale's parameter table: Yin et al.'s CIFAR-10 and ImageNet values, CIFAR's scaled to 64 px."""
LOW_HIGH_SPLIT = 0.25
"""Cycles per pixel where the high-frequency half of each axis starts (Nyquist is 0.5)."""
SIGNS = "fourier-signs"


def parse_norms(value: Any) -> tuple[float, ...]:
    norms = tuple(parse_number(v, "--fourier-norm") for v in items(value, "--fourier-norm"))
    bad = [r for r in norms if r < 0]
    if bad:
        raise UserError(f"--fourier-norm values must be non-negative L2 norms, got {bad[0]:g}")
    return tuple(dict.fromkeys(norms))


def parse_stride(value: Any) -> int:
    return parse_int(value, "--fourier-stride", 1, 4096)


NORM = Flag("fourier_norm", "comma-separated L2 norms r of the Fourier-basis noise (default by image size: 4 up to "
            "32 px, as Yin et al. on CIFAR-10)", parse_norms, metavar="LIST")
STRIDE = Flag("fourier_stride", "evaluate the frequencies that are multiples of this (default 1 up to 32 px, else "
              "about a 32×32 grid)", parse_stride, metavar="S")


@dataclass(frozen=True)
class FourierOptions:
    """Norms and frequency stride (None: chosen by the image size)."""

    fourier_norm: tuple[float, ...] | None = None
    fourier_stride: int | None = None
    FLAGS = (NORM, STRIDE)


def default_stride(height: int, width: int) -> int:
    return max(1, math.ceil(max(height, width) / 32))


def fourier_cells(ctx: EvalContext, opts: FourierOptions) -> list[FourierCell]:
    height, width = ctx.data.info.image_size
    norms = opts.fourier_norm or (DEFAULT_NORMS[table_for_size(height, width)],)
    stride = opts.fourier_stride or default_stride(height, width)
    if len(basis_frequencies(height, width, stride)) <= 1:
        raise UserError(f"--fourier-stride {stride} leaves only the zero frequency of a {height}×{width} image; "
                        f"use at most {max(height, width) // 2}")
    return [FourierCell(r, stride) for r in norms]


def frequency_codes(freqs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A number per frequency, the same whatever the stride (its index in the uncentred spectrum)."""
    return (freqs[:, 0] % height) * width + freqs[:, 1] % width


def block_errors(ctx: EvalContext, cell: FourierCell, freqs: torch.Tensor, start: int, x: torch.Tensor,
                 y: torch.Tensor) -> dict[str, Any]:
    """One block's payload: per frequency the number of misclassified images, and the clean errors."""
    channels, height, width = x.shape[1:]
    streams = ImageStreams.for_images(ctx.run.seed, SIGNS, torch.arange(start, start + len(y)))
    codes = frequency_codes(freqs, height, width)
    transform = TRANSFORMS.get("fourier-basis")

    def make(images: torch.Tensor, t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        bits = streams.subset(b).derive(codes[t]).bits("sign", (channels,))
        sign = ((bits >> 31) & 1).to(torch.float32) * 2 - 1
        norm = torch.full((len(t),), cell.norm, dtype=torch.float64)
        return transform.apply(images, FourierParams(freqs[t], norm, sign))

    preds, _ = pair_outputs(ctx, x, y, len(freqs), make)
    labels = y.cpu()
    return {"start": start, "n": len(labels), "errors": (preds != labels.view(1, -1)).sum(1).tolist(),
            "clean_errors": int((clean_predictions(ctx, x, y) != labels).sum())}


def fourier_blocks(ctx: EvalContext, cell: FourierCell, freqs: torch.Tensor) -> list[dict[str, Any]]:
    """Every block's payload (finished blocks are read back from the store, the rest computed and saved)."""
    return list(ctx.stored_blocks(cell, FOURIER_BLOCK,
                                  lambda b, start, stop: block_errors(ctx, cell, freqs, start, *ctx.images(start, stop))))


def heatmap_grid(errors: dict[tuple[int, int], float], height: int, width: int,
                 stride: int) -> tuple[list[int], list[int], list[list[float]]]:
    """(row frequencies i, column frequencies j, error per (i, j)): the evaluated representative of every
    mirror pair fills both of its cells."""
    rows = [i for i in range(frequency_range(height)[0], frequency_range(height)[1] + 1) if i % stride == 0]
    cols = [j for j in range(frequency_range(width)[0], frequency_range(width)[1] + 1) if j % stride == 0]
    grid = [[errors[(i, j)] if (i, j) in errors else errors[(mirror(i, height), mirror(j, width))] for j in cols]
            for i in rows]
    return rows, cols, grid


def is_low(i: int, j: int, height: int, width: int) -> bool:
    return max(abs(i) / height, abs(j) / width) < LOW_HIGH_SPLIT


def fourier_result(ctx: EvalContext, cell: FourierCell, frequencies: list[tuple[int, int]],
                   blocks: list[dict[str, Any]]) -> TaskResult:
    height, width = ctx.data.info.image_size
    n = sum(int(blk["n"]) for blk in blocks)
    counts = [sum(int(blk["errors"][k]) for blk in blocks) for k in range(len(frequencies))]
    errors = {f: c / n for f, c in zip(frequencies, counts, strict=True)}
    rows, cols, grid = heatmap_grid(errors, height, width, cell.stride)
    cells = [(i, j, grid[r][c]) for r, i in enumerate(rows) for c, j in enumerate(cols)]
    low = [e for i, j, e in cells if is_low(i, j, height, width)]
    high = [e for i, j, e in cells if not is_low(i, j, height, width)]
    metrics = {"error": sum(e for _, _, e in cells) / len(cells), "error/max": max(e for _, _, e in cells),
               "clean_error": sum(int(blk["clean_errors"]) for blk in blocks) / n, "n": float(n)}
    if low:
        metrics["error/low"] = sum(low) / len(low)
    if high:
        metrics["error/high"] = sum(high) / len(high)
    heatmap = {"rows": rows, "cols": cols, "error": grid, "shape": [height, width], "norm": cell.norm,
               "stride": cell.stride, "low_high_split": LOW_HIGH_SPLIT}
    return TaskResult(metrics, {"heatmap": heatmap})


def fourier_task(ctx: EvalContext, cell: FourierCell) -> Task:
    height, width = ctx.data.info.image_size
    frequencies = basis_frequencies(height, width, cell.stride)
    params = {"norm": cell.norm, "stride": cell.stride, "frequencies": len(frequencies), "seed": ctx.run.seed,
              "block": FOURIER_BLOCK, "sign": "per image, frequency and channel", "clip": [0.0, 1.0]}

    def run(ctx: EvalContext) -> TaskResult:
        started = time.perf_counter()
        freqs = torch.tensor(frequencies, dtype=torch.int64)
        result = fourier_result(ctx, cell, frequencies, fourier_blocks(ctx, cell, freqs))
        result.metrics["seconds"] = time.perf_counter() - started
        return result

    return Task(cell, params, run)


def build_fourier(ctx: EvalContext, opts: FourierOptions) -> list[Task]:
    return [fourier_task(ctx, cell) for cell in fourier_cells(ctx, opts)]


SUITES.add(SUITE, Suite(SUITE, "Fourier heat map (Yin et al. 2019): error under Fourier-basis noise of L2 norm r at "
                               "every frequency; mean, low- and high-frequency error", FourierOptions, build_fourier),
           SuiteMeta(("Yin et al. 2019, arXiv:1906.08988",)))
