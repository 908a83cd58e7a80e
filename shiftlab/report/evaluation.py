"""What the report shows, gathered from the results store and nothing else (design contract 5).

An :class:`Evaluation` is one model evaluated on one dataset identity (name, split, limit and
content fingerprint), with the data's recorded source. Rows are selected by the type of their task
identity, never by reading key strings. Every accessor degrades to a :class:`~shiftlab.report.values.Value`
that says why it is missing, so a suite that is absent or partial never breaks a page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from shiftlab.core.identity import DatasetIdentity, Summary, TaskIdentity
from shiftlab.report.values import Source, Value, finite, missing, proportion
from shiftlab.store import ModelRow, Store, TaskRow

IdentityT = TypeVar("IdentityT", bound=TaskIdentity)

UNKNOWN_SOURCE = "not recorded"


@dataclass(frozen=True)
class Evaluation:
    """One model on one dataset identity: its stored rows (the lowest seed of each task), in stored order."""

    model: ModelRow
    dataset: DatasetIdentity
    source: str
    rows: tuple[TaskRow, ...]

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    @property
    def label(self) -> str:
        """The model's name (its fingerprint prefix when it has none)."""
        return self.model.name or self.fingerprint[:12]

    @property
    def dataset_label(self) -> str:
        """Which data, as people read it: ``fashion-mnist[:200] (aa6abdea8deb)``; "unknown" for migrated rows."""
        return f"{self.dataset.label} ({self.dataset.short_content})"

    def suites(self) -> list[str]:
        """The suites with at least one stored row, in first-stored order."""
        return list(dict.fromkeys(row.suite for row in self.rows))

    def cells(self, kind: type[IdentityT]) -> list[tuple[IdentityT, TaskRow]]:
        """(identity, row) of every row whose task identity is a ``kind``."""
        out: list[tuple[IdentityT, TaskRow]] = []
        for row in self.rows:
            task = row.id.task
            if isinstance(task, kind):
                out.append((task, row))
        return out

    def find(self, identity: TaskIdentity) -> TaskRow | None:
        """The row of exactly this task identity, if stored."""
        return next((row for row in self.rows if row.id.task == identity), None)

    def summaries(self, suite: str) -> list[tuple[Summary, TaskRow]]:
        """The summary rows of ``suite`` (one per parameter table for some suites)."""
        return [(s, row) for s, row in self.cells(Summary) if s.of == suite]

    def source_of(self, row: TaskRow, metric: str) -> Source:
        return Source(self.fingerprint, self.dataset, row.id.task, metric, row.id.seed, row.shiftlab_version)

    def value(self, row: TaskRow | None, metric: str, why_absent: str) -> Value:
        """One stored metric with its provenance; missing (with the reason) when the row, the metric or a
        finite value is absent."""
        if row is None:
            return missing(why_absent)
        if metric not in row.metrics:
            return missing(f"{row.id.task.label()} has no stored {metric}")
        number = finite(row.metrics[metric])
        if number is None:
            return missing(f"{metric} of {row.id.task.label()} is undefined (NaN)")
        return Value(number, (self.source_of(row, metric),))

    def accuracy(self, row: TaskRow | None, metric: str, why_absent: str) -> Value:
        """Like :meth:`value`, for an accuracy over the row's ``n`` images: adds n and the Wilson interval."""
        plain = self.value(row, metric, why_absent)
        if plain.value is None or row is None:
            return plain
        return proportion(plain.value, row.metrics.get("n"), plain.sources)

    def mean_of(self, rows: Iterable[TaskRow], metric: str, why_absent: str) -> Value:
        """The mean of one metric over rows, every row a source (rows without a finite value are skipped)."""
        kept = [(number, row) for row in rows if (number := finite(row.metrics.get(metric))) is not None]
        if not kept:
            return missing(why_absent)
        return Value(sum(v for v, _ in kept) / len(kept), tuple(self.source_of(r, metric) for _, r in kept))

    def finished_at(self) -> float | None:
        """When the last row of this evaluation was stored (seconds since the epoch)."""
        times = [row.started_at + row.duration_s for row in self.rows]
        return max(times) if times else None


def gather(store: Store) -> list[Evaluation]:
    """Every (model, dataset identity) pair with at least one stored row, by fingerprint then dataset."""
    models = {m.fingerprint: m for m in store.models()}
    sources = {key: source for key, (_, source) in store.datasets().items()}
    grouped: dict[tuple[str, DatasetIdentity], dict[TaskIdentity, TaskRow]] = {}
    for row in store.tasks():
        if row.id.fingerprint not in models:
            continue
        slot = grouped.setdefault((row.id.fingerprint, row.id.dataset), {})
        held = slot.get(row.id.task)
        if held is None or row.id.seed < held.id.seed:
            slot[row.id.task] = row
    evaluations = [
        Evaluation(models[fp], dataset, sources.get(dataset.key(), UNKNOWN_SOURCE), tuple(rows.values()))
        for (fp, dataset), rows in grouped.items()
    ]
    return sorted(evaluations, key=lambda ev: (ev.fingerprint, ev.dataset.key()))
