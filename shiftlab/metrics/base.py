"""Streaming metric accumulators with declared states (design contract 4).

Each metric declares its states with a reduction (``sum``, ``max`` or ``cat``) and gets
``reset``, ``merge`` (for shards and Ray) and cached ``compute`` from this small base.
Fixed-size sufficient statistics are the default; only ranking metrics keep scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from shiftlab.core.registry import Registry

Reduction = Literal["sum", "max", "cat"]


@dataclass(frozen=True, slots=True)
class MetricMeta:
    """Registry metadata of a metric; its unit, direction and bounds are the :mod:`shiftlab.core.quantities`
    entry of the same name (one source of truth, read by the report for arrows and colour scales)."""

    description: str
    paper: str = ""


class Metric:
    """Base accumulator. Subclasses call ``add_state`` in ``__init__`` and implement update/compute."""

    def __init__(self) -> None:
        self._defaults: dict[str, tuple[Reduction, Callable[[], torch.Tensor]]] = {}
        self._cache: Any = None

    def add_state(self, name: str, default: Callable[[], torch.Tensor], reduction: Reduction) -> None:
        """Declare a state tensor; ``default`` makes its reset value (a fresh tensor each time)."""
        self._defaults[name] = (reduction, default)
        setattr(self, name, [] if reduction == "cat" else default())

    def reset(self) -> None:
        for name, (reduction, default) in self._defaults.items():
            setattr(self, name, [] if reduction == "cat" else default())
        self._cache = None

    def _touch(self) -> None:
        self._cache = None

    def update(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _compute(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def compute(self) -> Any:
        """The metric's value (cached until the next update/merge/reset)."""
        if self._cache is None:
            self._cache = self._compute()
        return self._cache

    def cat_state(self, name: str) -> torch.Tensor:
        """A ``cat`` state as one tensor."""
        parts = getattr(self, name)
        return torch.cat(parts) if parts else torch.empty(0)

    def merge(self, other: Metric) -> Metric:
        """Fold ``other`` (same type, another shard) into self."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for name, (reduction, _) in self._defaults.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if reduction == "sum":
                setattr(self, name, mine + theirs)
            elif reduction == "max":
                setattr(self, name, torch.maximum(mine, theirs))
            else:
                setattr(self, name, mine + list(theirs))
        self._touch()
        return self


MetricFactory = Callable[..., Metric]
METRICS: Registry[MetricFactory, MetricMeta] = Registry("metric")
