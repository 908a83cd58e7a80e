"""Bounded in-memory caches an evaluation can share across suites and models (``EvalCache``).

An :class:`~shiftlab.evaluation.context.EvalContext` gets a fresh cache by default; a caller that
evaluates many models on the same data (``shiftlab zoo evaluate``, the demo) passes one cache to
every context so each corrupted batch is generated once. Caching never changes a number: a cached
value is exactly the tensor that was computed.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import torch


class TensorCache:
    """Least-recently-used tuples of tensors, at most ``max_bytes`` in total (0 disables it)."""

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


def budget_bytes(default_mb: int = 1024) -> int:
    """``$SHIFTLAB_CACHE_MB`` (default 1024) in bytes; 0 turns caching off."""
    text = os.environ.get("SHIFTLAB_CACHE_MB", str(default_mb))
    try:
        return max(0, int(text)) * 2**20
    except ValueError:
        return default_mb * 2**20


@dataclass
class EvalCache:
    """Corrupted image batches (shared by every model) and per-model logits of corrupted cells."""

    images: TensorCache
    logits: TensorCache

    @classmethod
    def create(cls, max_bytes: int | None = None) -> EvalCache:
        total = budget_bytes() if max_bytes is None else max_bytes
        return cls(TensorCache(total * 7 // 8), TensorCache(total // 8))
