"""Executors: run a list of independent jobs in-process, on local worker processes, or on a Ray
cluster (the ``cluster`` extra), behind one interface.

A job is a picklable value and the function a top-level (importable) function, so the same job
list runs anywhere; workers are library entry points, never the CLI. Each job's outcome is its
result or a one-line error; a failed job never stops the others, and because every job resumes
from the store, rerunning the list finishes what failed.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from shiftlab.core.errors import UserError

J = TypeVar("J")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """A job's result, or the one-line error it ended with."""

    index: int
    result: R | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Executor(Protocol):
    """Runs ``fn(job)`` for every job; ``on_done`` is called in the caller's process as jobs finish."""

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
            on_done: Callable[[Outcome[Any]], None] | None = None) -> list[Outcome[Any]]: ...


def error_line(exc: BaseException) -> str:
    """One line for a failed job: a user error's message, else the exception with its last frame."""
    if isinstance(exc, UserError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _call(payload: tuple[Callable[[Any], Any], int, Any]) -> Outcome[Any]:
    fn, index, job = payload
    try:
        return Outcome(index, fn(job))
    except Exception as exc:  # noqa: BLE001 - a worker reports every failure as its job's outcome
        return Outcome(index, error=error_line(exc))


class LocalExecutor:
    """Jobs one after another in this process (the default)."""

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
            on_done: Callable[[Outcome[Any]], None] | None = None) -> list[Outcome[Any]]:
        outcomes = []
        for i, job in enumerate(jobs):
            outcome = _call((fn, i, job))
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return outcomes


def _worker_init(threads: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


class ProcessExecutor:
    """Jobs on ``workers`` local processes (spawned, ``threads`` torch threads each).

    Small models use a CPU better as one single-threaded process per core than as one process with
    intra-op threads (OpenMP barriers dominate at these sizes).
    """

    def __init__(self, workers: int, threads: int = 1) -> None:
        if workers < 1:
            raise UserError(f"--jobs must be at least 1, got {workers}")
        self.workers, self.threads = workers, threads

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
            on_done: Callable[[Outcome[Any]], None] | None = None) -> list[Outcome[Any]]:
        context = multiprocessing.get_context("spawn")
        outcomes: list[Outcome[Any]] = []
        with context.Pool(min(self.workers, max(len(jobs), 1)), initializer=_worker_init,
                          initargs=(self.threads,), maxtasksperchild=1) as pool:
            for outcome in pool.imap_unordered(_call, [(fn, i, job) for i, job in enumerate(jobs)]):
                outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)
        return sorted(outcomes, key=lambda o: o.index)


EXECUTORS = ("local", "processes", "ray")


def make_executor(kind: str, jobs: int = 1, ray_address: str | None = None, gpus: float = 0.0) -> Executor:
    """``local`` (in-process), ``processes`` (``jobs`` local worker processes) or ``ray`` (a Ray cluster at
    ``ray_address``, or a local one with ``jobs`` workers)."""
    if kind == "local":
        return LocalExecutor()
    if kind == "processes":
        return ProcessExecutor(jobs)
    if kind == "ray":
        return RayExecutor(ray_address, jobs, gpus)
    raise UserError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")


def raise_failures(outcomes: Sequence[Outcome[Any]], what: str) -> None:
    """A UserError naming the failed jobs' first error lines, when any failed."""
    failed = [o for o in outcomes if not o.ok]
    if failed:
        lines = " | ".join(sorted({str(o.error) for o in failed}))
        raise UserError(f"{what} failed in {len(failed)} of {len(outcomes)} job(s) (rerun to resume): {lines}")


class RayExecutor:
    """Jobs as Ray tasks on a Ray cluster (``address``: "auto", "ray://host:port", or None to start a
    local Ray with ``workers`` CPUs). Each task may own ``gpus`` GPUs; a task that fails is retried up
    to ``retries`` times before its failure is reported. Results come back to this process, which
    alone writes the store (so a SQLite store is never written from several hosts).
    """

    def __init__(self, address: str | None = None, workers: int = 1, gpus: float = 0.0, retries: int = 2) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("the Ray executor needs Ray: pip install 'shiftlab[cluster]'") from None
        self.ray = ray
        self.address, self.workers, self.gpus, self.retries = address, workers, gpus, retries

    def _init(self) -> None:
        if self.ray.is_initialized():
            return
        if self.address:
            self.ray.init(address=self.address, log_to_driver=False)
        else:
            self.ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)

    def map(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
            on_done: Callable[[Outcome[Any]], None] | None = None) -> list[Outcome[Any]]:
        self._init()
        remote = self.ray.remote(num_cpus=1, num_gpus=self.gpus, max_retries=self.retries,
                                 retry_exceptions=True)(_ray_call)
        pending = {remote.remote(fn, i, job): i for i, job in enumerate(jobs)}
        outcomes: list[Outcome[Any]] = []
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            ref = done[0]
            index = pending.pop(ref)
            try:
                outcome = Outcome(index, self.ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a job that failed after its retries is reported, not raised
                cause = getattr(exc, "cause", None) or exc
                outcome = Outcome(index, error=error_line(cause if isinstance(cause, BaseException) else exc))
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
        return sorted(outcomes, key=lambda o: o.index)


def _ray_call(fn: Callable[[Any], Any], index: int, job: Any) -> Any:
    """A job on a Ray worker (one torch thread per CPU Ray gives it)."""
    import torch

    torch.set_num_threads(1)
    return fn(job)
