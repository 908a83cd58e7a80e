"""The results store: every result is a row keyed by (model fingerprint, dataset identity, task
identity, seed) — design contract 5. SQLite (WAL mode) embedded by default, PostgreSQL by URL.

Each finished task is written in one transaction, so a crash or Ctrl-C keeps every task already
written and a rerun skips them. Long tasks keep per-block partial results in ``batches`` until
their row is written. Concurrent runs coordinate through ``claims``: a run claims a task before
computing it, another run skips (and later waits for) a task claimed by a live run, and a claim
whose process died or stopped sending heartbeats is taken over.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiftlab.core.identity import DatasetIdentity, TaskIdentity, decode_stored
from shiftlab.core.version import __version__
from shiftlab.store.backends import Database, connect, is_url

LEASE_S = 120.0
"""A claim whose heartbeat is older than this is stale (its run is presumed dead)."""


@dataclass(frozen=True, slots=True)
class ResultKey:
    """The identity of one stored result (design contract 5)."""

    fingerprint: str
    dataset: DatasetIdentity
    task: TaskIdentity
    seed: int

    def sql(self) -> tuple[str, str, str, int]:
        return (self.fingerprint, self.dataset.key(), self.task.key(), self.seed)


@dataclass(frozen=True, slots=True)
class ModelRow:
    """A model known to the store."""

    fingerprint: str
    name: str
    arch: str
    dataset: str
    recipe: str
    num_params: int
    card: dict[str, Any]
    checkpoint_path: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A finished task with its metrics and artifacts."""

    id: ResultKey
    params: dict[str, Any]
    metrics: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    shiftlab_version: str = ""

    @property
    def task(self) -> TaskIdentity:
        return self.id.task

    @property
    def suite(self) -> str:
        return self.id.task.suite


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _finite_or_none(value: float) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """A results database. Use as a context manager or call ``close``.

    Args:
        target: a SQLite file path (``:memory:`` keeps results in memory only) or a PostgreSQL URL
            (``postgresql://user@host:port/db``).
        create: create the store when it does not exist; otherwise a missing store is a UserError. An
            existing database that is not a shiftlab store is always refused, never written.
    """

    def __init__(self, target: str | Path, *, create: bool = True) -> None:
        self.target = str(target) if is_url(target) else Path(target).expanduser()
        self.db: Database = connect(target, create)
        self.host = socket.gethostname()
        self.pid = os.getpid()

    @property
    def path(self) -> str | Path:
        """Where the store is: its file, or its URL (what another process opens to reach it)."""
        return self.target

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> Any:
        """One atomic write: everything inside commits together or not at all."""
        return self.db.transaction()

    # models ---------------------------------------------------------------------------
    def upsert_model(self, fingerprint: str, *, name: str, arch: str, dataset: str, recipe: str, num_params: int,
                     card: Mapping[str, Any], checkpoint_path: str) -> None:
        """Insert or refresh a model row."""
        with self.transaction():
            self.db.run(
                """INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(fingerprint) DO UPDATE SET name=excluded.name, card_json=excluded.card_json,
                   checkpoint_path=excluded.checkpoint_path, recipe=excluded.recipe""",
                (fingerprint, name, arch, dataset, recipe, num_params, json.dumps(dict(card)), checkpoint_path,
                 time.time()),
            )

    def models(self) -> list[ModelRow]:
        rows = self.db.run("SELECT fingerprint, name, arch, dataset, recipe, num_params, card_json, checkpoint_path, "
                           "created_at FROM models ORDER BY created_at, name")
        return [ModelRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), json.loads(r[6]), r[7], float(r[8])) for r in rows]

    # datasets -------------------------------------------------------------------------
    def register_dataset(self, dataset: DatasetIdentity, source: str) -> None:
        """Record a dataset identity (and where its data was read from, for the report)."""
        with self.transaction():
            self.db.run("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                        "source=excluded.source WHERE excluded.source != ''",
                        (dataset.key(), dataset.name, dataset.split, dataset.limit, dataset.content, dataset.size,
                         source, time.time()))

    def datasets(self) -> dict[str, tuple[DatasetIdentity, str]]:
        """dataset key -> (identity, source) of every dataset a row was computed on."""
        out: dict[str, tuple[DatasetIdentity, str]] = {}
        for key, name, split, limit, content, size, source in self.db.run(
                "SELECT key, name, split, limit_n, content, size, source FROM datasets"):
            out[str(key)] = (DatasetIdentity(str(name), str(split), None if limit is None else int(limit),
                                             str(content), int(size)), str(source))
        return out

    def cached_content(self, signature: str) -> tuple[str, int] | None:
        """The content fingerprint cached for a data source signature (path + size + mtime), if any."""
        rows = self.db.run("SELECT content, size FROM fingerprints WHERE signature=?", (signature,))
        return None if not rows else (str(rows[0][0]), int(rows[0][1]))

    def cache_content(self, signature: str, content: str, size: int) -> None:
        with self.transaction():
            self.db.run("INSERT INTO fingerprints VALUES (?, ?, ?, ?) ON CONFLICT(signature) DO UPDATE SET "
                        "content=excluded.content, size=excluded.size", (signature, content, size, time.time()))

    # tasks ----------------------------------------------------------------------------
    def has_task(self, key: ResultKey) -> bool:
        return bool(self.db.run("SELECT 1 FROM tasks WHERE model_fingerprint=? AND dataset_key=? AND task_key=? "
                                "AND seed=?", key.sql()))

    def write_task(self, key: ResultKey, *, params: Mapping[str, Any], metrics: Mapping[str, float],
                   artifacts: Mapping[str, Any] | None = None, run_id: str, started_at: float, duration_s: float,
                   replace: bool = False) -> bool:
        """Write one finished task (its metrics and artifacts) in a single transaction.

        Returns False, writing nothing, when the row exists already (another run wrote it first) and
        ``replace`` is not set. Partial blocks and the claim of the task go in the same transaction.
        """
        cols = key.task.columns()
        with self.transaction():
            if replace:
                self.db.run("DELETE FROM tasks WHERE model_fingerprint=? AND dataset_key=? AND task_key=? AND seed=?",
                            key.sql())
            inserted = self.db.run(
                "INSERT INTO tasks (model_fingerprint, dataset_key, task_key, seed, suite, params_json, run_id, "
                "started_at, finished_at, duration_s, shiftlab_version, kind, subject, variant, severity, table_name, "
                "norm, eps, is_summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (*key.sql(), cols.suite, json.dumps(dict(params), sort_keys=True), run_id, started_at,
                 started_at + duration_s, duration_s, __version__, cols.kind, cols.subject, cols.variant,
                 cols.severity, cols.table, cols.norm, cols.eps, int(cols.is_summary)),
            )
            if inserted:
                task_id = inserted[0][0]
                self.db.many("INSERT INTO results VALUES (?, ?, ?, ?)",
                             [(task_id, name, _finite_or_none(value), i) for i, (name, value) in
                              enumerate(metrics.items())])
                self.db.many("INSERT INTO artifacts VALUES (?, ?, ?)",
                             [(task_id, name, json.dumps(value)) for name, value in (artifacts or {}).items()])
            self.db.run("DELETE FROM batches WHERE model_fingerprint=? AND dataset_key=? AND task_key=? AND seed=?",
                        key.sql())
            self.db.run("DELETE FROM claims WHERE model_fingerprint=? AND dataset_key=? AND task_key=? AND seed=?",
                        key.sql())
        return bool(inserted)

    def tasks(self, fingerprint: str | None = None, *, dataset: DatasetIdentity | None = None,
              suite: str | None = None, summaries: bool | None = None, seed: int | None = None,
              with_artifacts: bool = True) -> list[TaskRow]:
        """Finished tasks, optionally filtered (``summaries``: only summaries / only non-summaries),
        in the order they were written."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("model_fingerprint", fingerprint), ("dataset_key", dataset.key() if dataset else None),
                              ("suite", suite), ("seed", seed)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if summaries is not None:
            clauses.append("is_summary = ?")
            args.append(int(summaries))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.run(
            "SELECT id, model_fingerprint, dataset_key, task_key, seed, params_json, run_id, started_at, duration_s, "
            f"shiftlab_version, suite FROM tasks {where} ORDER BY id", args)
        chosen = f"SELECT id FROM tasks {where}"
        metrics: dict[int, dict[str, float]] = {int(r[0]): {} for r in rows}
        for task_id, name, value in self.db.run(f"SELECT task_id, metric, value FROM results WHERE task_id IN "
                                                f"({chosen}) ORDER BY task_id, position", args):
            metrics[int(task_id)][str(name)] = _num(value)
        artifacts: dict[int, dict[str, Any]] = {int(r[0]): {} for r in rows}
        if with_artifacts:
            for task_id, name, text in self.db.run(f"SELECT task_id, name, json FROM artifacts WHERE task_id IN "
                                                   f"({chosen})", args):
                artifacts[int(task_id)][str(name)] = json.loads(text)
        known = self.datasets()
        out: list[TaskRow] = []
        for r in rows:
            ds = known[r[2]][0] if r[2] in known else DatasetIdentity.from_key(r[2])
            key = ResultKey(r[1], ds, decode_stored(r[3], r[10]), int(r[4]))
            out.append(TaskRow(key, json.loads(r[5]), metrics[int(r[0])], artifacts[int(r[0])], r[6], float(r[7]),
                               float(r[8]), r[9]))
        return out

    # claims (concurrent runs) ---------------------------------------------------------
    def claim(self, key: ResultKey, run_id: str) -> bool:
        """Claim a task for ``run_id``; False while another live run holds it (a stale claim is taken over)."""
        now = time.time()
        with self.transaction():
            if self.db.run("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING pid",
                           (*key.sql(), run_id, self.host, self.pid, now)):
                return True
            row = self.db.run("SELECT run_id, host, pid, heartbeat FROM claims WHERE model_fingerprint=? AND "
                              "dataset_key=? AND task_key=? AND seed=?", key.sql())[0]
            if row[0] != run_id:
                dead = (row[1] == self.host and not _pid_alive(int(row[2]))) or now - float(row[3]) > LEASE_S
                if not dead:
                    return False
            self.db.run("UPDATE claims SET run_id=?, host=?, pid=?, heartbeat=? WHERE model_fingerprint=? AND "
                        "dataset_key=? AND task_key=? AND seed=?", (run_id, self.host, self.pid, now, *key.sql()))
        return True

    def release(self, run_id: str) -> None:
        """Drop every claim of ``run_id`` (a run that stops, finished or interrupted)."""
        with self.transaction():
            self.db.run("DELETE FROM claims WHERE run_id=?", (run_id,))

    def heartbeat(self, run_id: str) -> None:
        """Keep the claims of a live run fresh."""
        with self.transaction():
            self.db.run("UPDATE claims SET heartbeat=? WHERE run_id=?", (time.time(), run_id))

    # partial blocks -------------------------------------------------------------------
    def save_batch(self, key: ResultKey, block: int, payload: Mapping[str, Any]) -> None:
        """Keep the result of one block of a long task, so a killed run can resume."""
        with self.transaction():
            self.db.run("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_fingerprint, dataset_key, "
                        "task_key, seed, block) DO UPDATE SET "
                        "payload_json=excluded.payload_json", (*key.sql(), block, json.dumps(dict(payload))))

    def load_batches(self, key: ResultKey) -> dict[int, dict[str, Any]]:
        rows = self.db.run("SELECT block, payload_json FROM batches WHERE model_fingerprint=? AND dataset_key=? AND "
                           "task_key=? AND seed=?", key.sql())
        return {int(i): json.loads(p) for i, p in rows}
