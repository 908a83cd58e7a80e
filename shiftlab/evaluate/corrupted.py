"""Corrupted test images and their logits, shared by every suite and every model of one process.

A (corruption, severity, parameter table) cell is one fixed set of images for a given dataset key,
seed and batch size: batch ``i`` is corrupted with the generator derived from
(seed, ``corruptions/<name>/<severity>[@table]``, i). So the corruptions suite and the calibration
suite see the same images, and evaluating many models (``shiftlab zoo evaluate``, the demo) needs
each corrupted batch generated only once:

* ``CORRUPTED``: corrupted batches, keyed by what determines them, bounded in bytes
  (``$SHIFTLAB_CORRUPTION_CACHE_MB``, default 1024; 0 disables it), least recently used evicted.
* ``LOGITS``: the logits of one model on one cell (a model's calibration task reuses the
  corruptions task's forward passes), keyed additionally by the model's fingerprint.

Caching never changes a number: a cached batch is the tensor the generator produced, and the
model sees it unchanged (evaluation runs under inference mode).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable

import torch

from shiftlab.evaluate.classification import collect_logits
from shiftlab.evaluate.tasks import EvalContext
from shiftlab.shifts import SHIFTS, resolve_table


class TensorCache:
    """Least-recently-used tensors (or tuples of tensors) up to ``max_bytes`` in total."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[torch.Tensor, ...]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(value: tuple[torch.Tensor, ...]) -> int:
        return sum(t.numel() * t.element_size() for t in value)

    def get(self, key: Hashable) -> tuple[torch.Tensor, ...] | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: Hashable, value: tuple[torch.Tensor, ...]) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._size(self._items.pop(key))
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= self._size(old)

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


def _megabytes(env: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(env, default))) * 2**20
    except ValueError:
        return default * 2**20


CORRUPTED = TensorCache(_megabytes("SHIFTLAB_CORRUPTION_CACHE_MB", 1024))
LOGITS = TensorCache(256 * 2**20)


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
    hit = CORRUPTED.get(key)
    if hit is not None:
        return hit[0]
    out = SHIFTS.get(name)(x, severity, ctx.generator(gen_key, batch_index, x.device), table)
    CORRUPTED.put(key, (out,))
    return out


def corrupted_logits(ctx: EvalContext, name: str, severity: int, table: str | None = None,
                     label: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits and the labels on one corrupted cell (computed once per model and cell)."""
    chosen = table_for(ctx, table)
    gen_key = corruption_key(ctx, name, severity, chosen)
    key = (ctx.fingerprint, ctx.dataset_key, str(ctx.data_root), ctx.options.seed, ctx.options.batch_size,
           str(ctx.device), gen_key)
    hit = LOGITS.get(key)
    if hit is not None:
        return hit[0], hit[1]
    logits, labels = collect_logits(
        ctx, lambda x, y, i: corrupted_batch(ctx, name, severity, chosen, x, i), label=label or gen_key)
    LOGITS.put(key, (logits, labels))
    return logits, labels
