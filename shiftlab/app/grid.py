"""An evaluation grid: models × suites, run by any executor, resumed from the store.

Each job evaluates one model on one suite. On the ``local`` and ``processes`` executors a job writes
the store itself (SQLite in WAL mode, or a PostgreSQL server; concurrent jobs split and wait for each
other's tasks through the store's claims). On the ``ray`` executor a job evaluates into an in-memory
store seeded with the rows the store already holds for its model, and returns what it computed; this
process alone writes the store. Either way a rerun computes only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiftlab.app.evaluate import evaluate_model, options_for
from shiftlab.core.identity import DatasetIdentity
from shiftlab.evaluation.executors import Outcome, make_executor
from shiftlab.models import checkpoint_fingerprint, is_named
from shiftlab.models.precision import precision_fingerprint
from shiftlab.store import ModelRow, Store, TaskRow


@dataclass(frozen=True)
class EvalJob:
    """One model on one or more suites, with the run's options (picklable, for any executor)."""

    model: str
    suites: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    data_root: str | None = None
    seed: int = 0
    limit: int | None = None
    batch_size: int = 256
    device: str = "auto"
    amp: str | None = None
    channels_last: bool = False

    def run(self, store: str | Path | Store) -> list[str]:
        report = evaluate_model(self.model, self.suites, store=store, options=options_for(self.suites, self.options),
                                dataset=self.dataset, data_root=self.data_root, seed=self.seed, limit=self.limit,
                                batch_size=self.batch_size, device=self.device, amp=self.amp,
                                channels_last=self.channels_last)
        return report.ran


@dataclass(frozen=True)
class Delta:
    """What a remote job computed: its model and dataset rows, and the task rows it wrote."""

    models: list[ModelRow]
    datasets: list[tuple[DatasetIdentity, str]]
    rows: list[TaskRow]


def job_into_store(payload: tuple[EvalJob, str]) -> list[str]:
    """A local worker's entry point: evaluate into the shared store; the labels of the tasks it ran."""
    job, store = payload
    return job.run(store)


def job_delta(payload: tuple[EvalJob, list[TaskRow], list[ModelRow]]) -> Delta:
    """A remote worker's entry point: evaluate into memory (seeded with the stored rows), return the delta."""
    job, seed_rows, seed_models = payload
    with Store(":memory:") as memory:
        for m in seed_models:
            memory.upsert_model(m.fingerprint, name=m.name, arch=m.arch, dataset=m.dataset, recipe=m.recipe,
                                num_params=m.num_params, card=m.card, checkpoint_path=m.checkpoint_path)
        copy_rows(memory, seed_rows)
        known = {r.id for r in seed_rows}
        job.run(memory)
        return Delta(memory.models(), list(memory.datasets().values()),
                     [r for r in memory.tasks() if r.id not in known])


def copy_rows(store: Store, rows: Sequence[TaskRow], replace_summaries: bool = False) -> int:
    """Write rows (from another store) into ``store``; the number newly written."""
    written = 0
    for r in rows:
        store.register_dataset(r.id.dataset, "")
        summary = r.id.task.columns().is_summary
        written += store.write_task(r.id, params=r.params, metrics=r.metrics, artifacts=r.artifacts, run_id=r.run_id,
                                    started_at=r.started_at, duration_s=r.duration_s,
                                    replace=summary and replace_summaries)
    return written


def apply_delta(store: Store, delta: Delta) -> int:
    """Write a remote job's results; summaries replace the stored ones (they were computed from all rows)."""
    for m in delta.models:
        store.upsert_model(m.fingerprint, name=m.name, arch=m.arch, dataset=m.dataset, recipe=m.recipe,
                           num_params=m.num_params, card=m.card, checkpoint_path=m.checkpoint_path)
    for identity, source in delta.datasets:
        store.register_dataset(identity, source)
    return copy_rows(store, delta.rows, replace_summaries=True)


def run_grid(jobs: Sequence[EvalJob], store: str | Path, executor: str = "local", workers: int = 1,
             ray_address: str | None = None, gpus: float = 0.0,
             on_done: Callable[[EvalJob, Outcome[Any]], None] | None = None) -> list[Outcome[Any]]:
    """Run every job of the grid on ``executor``; each job's outcome (failures are reported, not raised)."""
    runner = make_executor(executor, workers, ray_address, gpus)

    def done(outcome: Outcome[Any]) -> None:
        if on_done is not None:
            on_done(jobs[outcome.index], outcome)

    if executor != "ray":
        return runner.map(job_into_store, [(job, str(store)) for job in jobs], done)
    with Store(store) as db:
        models = {m.fingerprint: m for m in db.models()}
        payloads = []
        for job in jobs:
            fp = None if is_named(job.model) else precision_fingerprint(checkpoint_fingerprint(job.model), job.amp)
            seed = db.tasks(fp) if fp is not None else []
            payloads.append((job, seed, [models[fp]] if fp in models else []))

        written: dict[int, Outcome[Any]] = {}

        def write(outcome: Outcome[Any]) -> None:
            delta = outcome.result
            if outcome.ok and delta is not None:  # results are written as they arrive: a later failure loses nothing
                apply_delta(db, delta)
                outcome = Outcome(outcome.index, [r.id.task.label() for r in delta.rows
                                                  if not r.id.task.columns().is_summary])
            written[outcome.index] = outcome
            done(outcome)

        runner.map(job_delta, payloads, write)
        return [written[i] for i in sorted(written)]
