"""Corrupted test images and their logits, shared by the suites and the models of one evaluation.

A (corruption, severity, parameter table) cell is one fixed set of images for a given dataset key,
seed and batch size: batch ``i`` is corrupted with the generator derived from
(seed, ``corruptions/<name>/<severity>[@table]``, i). So the corruptions suite and the calibration
suite see the same images, and evaluating many models (``shiftlab zoo evaluate``, the demo) needs
each corrupted batch generated only once:

* ``ctx.cache.images``: corrupted batches, keyed by everything that determines them, shared by
  every context given the same :class:`~shiftlab.evaluate.cache.EvalCache`;
* ``ctx.cache.logits``: the logits of one model on one cell (a model's calibration task reuses the
  corruptions task's forward passes), keyed additionally by the model's fingerprint.

Caching never changes a number: a cached batch is the tensor the generator produced, and the
model sees it unchanged (evaluation runs under inference mode).
"""

from __future__ import annotations

import torch

from shiftlab.evaluate.classification import collect_logits
from shiftlab.evaluate.tasks import EvalContext
from shiftlab.shifts import SHIFTS, resolve_table


def table_for(ctx: EvalContext, table: str | None = None) -> str:
    """The parameter table asked for (``table`` or ``--params``), else the one the image size picks."""
    h, w = ctx.data.info.image_size
    return resolve_table(table if table is not None else ctx.options.params, h, w)


def corruption_key(ctx: EvalContext, name: str, severity: int, table: str | None = None) -> str:
    """``corruptions/<name>/<severity>``, with ``@<table>`` appended when the table is not the one the
    image size picks (so both can live in one store). Also the generator key of the cell's images."""
    h, w = ctx.data.info.image_size
    chosen = table_for(ctx, table)
    suffix = "" if chosen == resolve_table(None, h, w) else f"@{chosen}"
    return f"corruptions/{name}/{severity}{suffix}"


def corrupted_batch(ctx: EvalContext, name: str, severity: int, table: str, x: torch.Tensor, batch_index: int) -> torch.Tensor:
    """Batch ``batch_index`` of the test data corrupted with (name, severity, table), cached."""
    gen_key = corruption_key(ctx, name, severity, table)
    key = (ctx.dataset_key, str(ctx.data_root), ctx.options.seed, ctx.options.batch_size, str(x.device), gen_key, batch_index)
    hit = ctx.cache.images.get(key)
    if hit is not None:
        return hit[0]
    out = SHIFTS.get(name)(x, severity, ctx.generator(gen_key, batch_index, x.device), table)
    ctx.cache.images.put(key, (out,))
    return out


def corrupted_logits(ctx: EvalContext, name: str, severity: int, table: str | None = None,
                     label: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits and the labels on one corrupted cell (computed once per model and cell)."""
    chosen = table_for(ctx, table)
    gen_key = corruption_key(ctx, name, severity, chosen)
    key = (ctx.fingerprint, ctx.dataset_key, str(ctx.data_root), ctx.options.seed, ctx.options.batch_size,
           str(ctx.device), gen_key)
    hit = ctx.cache.logits.get(key)
    if hit is not None:
        return hit[0], hit[1]
    logits, labels = collect_logits(
        ctx, lambda x, y, i: corrupted_batch(ctx, name, severity, chosen, x, i), label=label or gen_key)
    ctx.cache.logits.put(key, (logits, labels))
    return logits, labels
