"""The resumable runner: build each suite's tasks, skip those in the store, run the rest in order,
write each finished task in one transaction, then refresh the suite's summaries.

A crash or Ctrl-C keeps every task already written; a rerun resumes. Two runs of the same tasks
into one store coordinate through claims: a task claimed by another live run is left to it and
waited for at the end (taken over if that run dies), so nothing is computed twice or lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.flags import make_options
from shiftlab.evaluation.suite import SUITES, Suite, Task
from shiftlab.store import ResultKey, Store, TaskRow

log = logging.getLogger(__name__)
WAIT_POLL_S = 1.0
HEARTBEAT_S = 30.0


@dataclass
class RunReport:
    """What a run did: the labels of tasks run, reused from the store and waited for; every stored
    row of the suites (tasks, then summaries)."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    rows: list[TaskRow] = field(default_factory=list)


def suite_requests(suites: Sequence[str], values: Mapping[str, Any]) -> list[tuple[Suite[Any], Any]]:
    """(suite, its options) for each name; unknown suites and bad option values fail before any work."""
    chosen = [SUITES.get(name) for name in dict.fromkeys(suites)]
    return [(suite, make_options(suite.options, values)) for suite in chosen]


def run_task(ctx: EvalContext, task: Task) -> bool:
    """Run one task and write it (metrics + artifacts) in one transaction; False when another run
    wrote the same row first."""
    started = time.time()
    t0 = time.perf_counter()
    ctx.progress.task_start(task.identity.label(), len(ctx.data))
    result = task.run(ctx)
    duration = time.perf_counter() - t0
    metrics = dict(result.metrics)
    metrics.setdefault("seconds", duration)
    return ctx.store.write_task(ctx.key(task.identity), params=task.params, metrics=metrics,
                                artifacts=result.artifacts, run_id=ctx.run_id, started_at=started,
                                duration_s=duration)


class Heartbeat:
    """Refreshes a run's claims from a background thread (its own connection) while it computes."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.path, self.run_id = store.path, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        beat = Store(self.path, create=False) if str(self.path) != ":memory:" else None
        try:
            while not self._stop.wait(HEARTBEAT_S):
                if beat is not None:
                    beat.heartbeat(self.run_id)
        finally:
            if beat is not None:
                beat.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_tasks(ctx: EvalContext, tasks: list[Task], report: RunReport) -> None:
    """Run what the store lacks; tasks another live run holds are waited for after the rest."""
    deferred: list[tuple[Task, ResultKey]] = []
    for task in tasks:
        key = ctx.key(task.identity)
        label = task.identity.label()
        if ctx.store.has_task(key):
            report.skipped.append(label)
            ctx.progress.task_end(label, "reused")
        elif ctx.store.claim(key, ctx.run_id):
            log.info("running %s", label)
            outcome = "ran" if run_task(ctx, task) else "written by another run"
            report.ran.append(label)
            ctx.progress.task_end(label, outcome)
        else:
            deferred.append((task, key))
    for task, key in deferred:
        label = task.identity.label()
        while not ctx.store.has_task(key):
            if ctx.store.claim(key, ctx.run_id):  # its run died: take it over
                run_task(ctx, task)
                report.ran.append(label)
                break
            time.sleep(WAIT_POLL_S)
        else:
            report.waited.append(label)
        ctx.progress.task_end(label, "computed by another run")


def run_suites(ctx: EvalContext, requests: list[tuple[Suite[Any], Any]]) -> RunReport:
    """Run every task of the requested suites that the store lacks, then refresh their summaries."""
    report = RunReport()
    built = [(suite, opts, suite.build(ctx, opts)) for suite, opts in requests]  # all validation before work
    ctx.progress.run_start(f"{ctx.card.name or ctx.fingerprint[:12]} on {ctx.dataset.label}",
                           sum(len(tasks) for _, _, tasks in built))
    try:
        with Heartbeat(ctx.store, ctx.run_id):
            for suite, opts, tasks in built:
                run_tasks(ctx, tasks, report)
                write_summaries(ctx, suite, opts)
    finally:
        ctx.store.release(ctx.run_id)
    for suite, _, _ in built:
        report.rows.extend(ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset, suite=suite.name, seed=ctx.run.seed))
    return report


def write_summaries(ctx: EvalContext, suite: Suite[Any], opts: Any) -> None:
    if suite.summarize is None:
        return
    rows = ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset, suite=suite.name, summaries=False, seed=ctx.run.seed)
    for identity, result in suite.summarize(ctx, opts, rows):
        params = {"summary_of": [r.id.task.key() for r in rows if r.id.task.suite == suite.name]}
        ctx.store.write_task(ctx.key(identity), params=params, metrics=result.metrics, artifacts=result.artifacts,
                             run_id=ctx.run_id, started_at=time.time(), duration_s=0.0, replace=True)
