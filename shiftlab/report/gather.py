"""Gather what the report shows from the results store, and nothing else (design contract 5).

An :class:`Evaluation` is one model evaluated on one dataset key (a dataset name, plus ``[:N]``
when only the first N test images were used). Every accessor returns ``None`` for a suite that was
not run or a value that is missing or NaN, so every page degrades gracefully.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shiftlab.store import ModelRow, Store, TaskRow

SUITE_NAMES = ("clean", "corruptions", "adversarial", "calibration", "ood")


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass(frozen=True)
class Source:
    """Where a number comes from: one metric of one stored task."""

    fingerprint: str
    dataset: str
    task_key: str
    metric: str
    seed: int
    shiftlab_version: str

    def to_json(self) -> dict[str, Any]:
        return {"model_fingerprint": self.fingerprint, "dataset": self.dataset, "task_key": self.task_key,
                "metric": self.metric, "seed": self.seed, "shiftlab_version": self.shiftlab_version}


@dataclass(frozen=True)
class Value:
    """A reported number with its provenance; ``value`` is None when it cannot be reported."""

    value: float | None
    sources: tuple[Source, ...] = ()
    why: str = ""


@dataclass
class Evaluation:
    """One model on one dataset key: its stored tasks by task key (lowest seed wins)."""

    model: ModelRow
    dataset: str
    tasks: dict[str, TaskRow] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    @property
    def label(self) -> str:
        return self.model.name or self.fingerprint[:12]

    def suites(self) -> set[str]:
        return {row.suite for row in self.tasks.values()}

    def has(self, suite: str) -> bool:
        return suite in self.suites()

    def rows(self, suite: str) -> list[TaskRow]:
        """The suite's task rows, summaries excluded, in stored order."""
        return [r for k, r in self.tasks.items() if r.suite == suite and not k.endswith("/summary")]

    def summary(self, suite: str) -> TaskRow | None:
        return self.tasks.get(f"{suite}/summary")

    def source(self, row: TaskRow, metric: str) -> Source:
        return Source(self.fingerprint, self.dataset, row.id.task_key, metric, row.id.seed, row.shiftlab_version)

    def value(self, task_key: str, metric: str, missing: str = "") -> Value:
        """One stored metric with its provenance; None (with the reason) when absent or NaN."""
        row = self.tasks.get(task_key)
        if row is None:
            return Value(None, (), missing or f"task {task_key!r} is not in the store")
        if metric not in row.metrics:
            return Value(None, (), f"task {task_key!r} has no metric {metric!r}")
        v = finite(row.metrics[metric])
        return Value(v, (self.source(row, metric),), "" if v is not None else f"{metric} is undefined (NaN)")

    def mean_of(self, rows: list[TaskRow], metric: str, missing: str) -> Value:
        """The mean of one metric over rows, with every row as a source."""
        pairs = [(finite(r.metrics.get(metric)), r) for r in rows if metric in r.metrics]
        kept = [(v, r) for v, r in pairs if v is not None]
        if not kept:
            return Value(None, (), missing)
        return Value(sum(v for v, _ in kept) / len(kept), tuple(self.source(r, metric) for _, r in kept))

    def finished_at(self) -> float | None:
        times = [r.started_at + r.duration_s for r in self.tasks.values()]
        return max(times) if times else None


def split_key(key: str) -> list[str]:
    return key.split("/")


def parse_severity(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def gather(store: Store) -> list[Evaluation]:
    """Every (model, dataset key) pair that has at least one stored task, in fingerprint order."""
    models = {m.fingerprint: m for m in store.models()}
    grouped: dict[tuple[str, str], dict[str, TaskRow]] = defaultdict(dict)
    for row in store.tasks():
        if row.id.fingerprint not in models:
            continue
        slot = grouped[(row.id.fingerprint, row.id.dataset)]
        held = slot.get(row.id.task_key)
        if held is None or row.id.seed < held.id.seed:
            slot[row.id.task_key] = row
    evaluations = [Evaluation(models[fp], ds, tasks) for (fp, ds), tasks in grouped.items()]
    return sorted(evaluations, key=lambda e: (e.fingerprint, e.dataset))
