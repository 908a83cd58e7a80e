"""The one path that applies a corruption during an evaluation: corrupted test images and their
logits, shared by every suite and every model of one evaluation.

A :class:`~shiftlab.core.identity.CorruptionCell` (corruption, severity, parameter table) is one fixed
set of images for a dataset and seed: block b of the test set (``evaluation/blocks.py``) is corrupted
with the generator of (seed, cell identity, b), so the images do not depend on the batch size. The
corruptions, calibration and OOD (near-OOD) suites all read a cell here, so they see the same images,
and evaluating many models (the zoo, the demo) generates each corrupted block once:

* ``ctx.cache.images``: corrupted blocks, keyed by everything that determines them, shared by every
  context given the same :class:`~shiftlab.evaluation.cache.EvalCache`;
* ``ctx.cache.logits``: one model's logits on one cell, keyed additionally by its fingerprint.

Caching never changes a number: a cached block is the tensor the generator produced.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from shiftlab.core.identity import CorruptionCell
from shiftlab.core.seeding import make_generator
from shiftlab.data import ImageDataset
from shiftlab.evaluation.blocks import block_ranges, block_size, rebatch
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.forward import forward
from shiftlab.shifts import SHIFTS


def data_block_size(data: ImageDataset) -> int:
    info = data.info
    return block_size(info.channels, *info.image_size)


def cell_generator(cell: CorruptionCell, seed: int, block: int, device: torch.device) -> torch.Generator:
    """The generator of block ``block`` under ``cell``: the one source of a corrupted image's randomness,
    used by the evaluation and by ``shiftlab corrupt`` (``evaluation/export.py``)."""
    return make_generator(seed, cell.key(), "block", block, device=device)


def corrupt_block(cell: CorruptionCell, x: torch.Tensor, seed: int, block: int) -> torch.Tensor:
    """Block ``block`` of a dataset (its images ``x``) under ``cell``."""
    return SHIFTS.get(cell.corruption)(x, cell.severity, cell_generator(cell, seed, block, x.device), cell.table)


def corrupted_blocks(ctx: EvalContext, cell: CorruptionCell) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(start, corrupted images, labels) of every block of the test set, on the device (cached)."""
    size = data_block_size(ctx.data)
    for b, (start, stop) in enumerate(block_ranges(len(ctx.data), size)):
        x, y = ctx.data.get_batch(torch.arange(start, stop))
        key = (ctx.dataset.key(), ctx.run.seed, str(ctx.device), cell.key(), b)
        hit = ctx.cache.images.get(key)
        if hit is None:
            out = corrupt_block(cell, x.to(ctx.device), ctx.run.seed, b)
            ctx.cache.images.put(key, (out,))
        else:
            out = hit[0]
        yield start, out, y.to(ctx.device)


def corrupted_batches(ctx: EvalContext, cell: CorruptionCell) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """The corrupted test set in batches of ``--batch-size`` images (whatever the block size)."""
    return rebatch(corrupted_blocks(ctx, cell), ctx.run.batch_size)


def cell_logits(ctx: EvalContext, cell: CorruptionCell) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits and the labels on one corruption cell (computed once per model and cell)."""
    key = (ctx.fingerprint, ctx.dataset.key(), ctx.run.seed, str(ctx.device), cell.key())
    hit = ctx.cache.logits.get(key)
    if hit is not None:
        ctx.progress.advance(len(ctx.data))
        return hit[0], hit[1]
    out = forward(ctx, batches=corrupted_batches(ctx, cell))
    assert out.logits is not None
    ctx.cache.logits.put(key, (out.logits, out.labels))
    return out.logits, out.labels
