"""SQLite results store (WAL mode): every result is a row keyed by
(model fingerprint, dataset, task key, seed) — design contract 5.

Each finished task is written in one transaction, so a crash or Ctrl-C keeps every
task already written and a rerun skips them. Per-batch partial results (long attacks)
live in ``batches`` until their task is written.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiftlab import __version__
from shiftlab.errors import UserError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    fingerprint TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    arch TEXT NOT NULL,
    dataset TEXT NOT NULL,
    recipe TEXT NOT NULL,
    num_params INTEGER NOT NULL,
    card_json TEXT NOT NULL,
    checkpoint_path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    model_fingerprint TEXT NOT NULL REFERENCES models(fingerprint),
    dataset TEXT NOT NULL,
    task_key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    suite TEXT NOT NULL,
    params_json TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    duration_s REAL NOT NULL,
    shiftlab_version TEXT NOT NULL,
    UNIQUE (model_fingerprint, dataset, task_key, seed)
);
CREATE TABLE IF NOT EXISTS results (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (task_id, metric)
);
CREATE TABLE IF NOT EXISTS artifacts (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (task_id, name)
);
CREATE TABLE IF NOT EXISTS batches (
    model_fingerprint TEXT NOT NULL,
    dataset TEXT NOT NULL,
    task_key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    batch_index INTEGER NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (model_fingerprint, dataset, task_key, seed, batch_index)
);
CREATE INDEX IF NOT EXISTS tasks_by_suite ON tasks (model_fingerprint, dataset, suite);
"""


@dataclass(frozen=True, slots=True)
class TaskId:
    """The identity of a task result (design contract 5)."""

    fingerprint: str
    dataset: str
    task_key: str
    seed: int


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

    id: TaskId
    suite: str
    params: dict[str, Any]
    metrics: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    shiftlab_version: str = ""


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _finite_or_none(value: float) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


class Store:
    """A results database on disk. Use as a context manager or call ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if self.path.exists() and self.path.is_dir():
            raise UserError(f"store path {self.path} is a directory; pass a file such as {self.path / 'results.db'}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a shiftlab results store ({exc})") from None

    def _migrate(self) -> None:
        self._conn.executescript(SCHEMA)
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise UserError(
                f"store {self.path} has schema {row[0]}, newer than this shiftlab ({SCHEMA_VERSION}); upgrade shiftlab"
            )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # models -------------------------------------------------------------------------
    def upsert_model(
        self,
        fingerprint: str,
        *,
        name: str,
        arch: str,
        dataset: str,
        recipe: str,
        num_params: int,
        card: Mapping[str, Any],
        checkpoint_path: str,
    ) -> None:
        """Insert or refresh a model row."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(fingerprint) DO UPDATE SET name=excluded.name, card_json=excluded.card_json,
                   checkpoint_path=excluded.checkpoint_path, recipe=excluded.recipe""",
                (fingerprint, name, arch, dataset, recipe, num_params, json.dumps(dict(card)), checkpoint_path, time.time()),
            )

    def models(self) -> list[ModelRow]:
        rows = self._conn.execute("SELECT * FROM models ORDER BY created_at, name").fetchall()
        return [
            ModelRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), json.loads(r[6]), r[7], float(r[8])) for r in rows
        ]

    # tasks --------------------------------------------------------------------------
    def has_task(self, task: TaskId) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM tasks WHERE model_fingerprint=? AND dataset=? AND task_key=? AND seed=?",
            (task.fingerprint, task.dataset, task.task_key, task.seed),
        ).fetchone()
        return row is not None

    def write_task(
        self,
        task: TaskId,
        *,
        suite: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        artifacts: Mapping[str, Any] | None = None,
        run_id: str,
        started_at: float,
        duration_s: float,
        replace: bool = False,
    ) -> None:
        """Write one finished task (its metrics and artifacts) in a single transaction.

        Partial batches of the task are dropped in the same transaction.
        """
        key = (task.fingerprint, task.dataset, task.task_key, task.seed)
        with self.transaction() as conn:
            if replace:
                conn.execute(
                    "DELETE FROM tasks WHERE model_fingerprint=? AND dataset=? AND task_key=? AND seed=?", key
                )
            cur = conn.execute(
                "INSERT INTO tasks (model_fingerprint, dataset, task_key, seed, suite, params_json, run_id, "
                "started_at, finished_at, duration_s, shiftlab_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, suite, json.dumps(dict(params), sort_keys=True), run_id, started_at, started_at + duration_s,
                 duration_s, __version__),
            )
            task_id = cur.lastrowid
            conn.executemany(
                "INSERT INTO results VALUES (?, ?, ?)",
                [(task_id, name, _finite_or_none(value)) for name, value in metrics.items()],
            )
            conn.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?)",
                [(task_id, name, json.dumps(value)) for name, value in (artifacts or {}).items()],
            )
            conn.execute(
                "DELETE FROM batches WHERE model_fingerprint=? AND dataset=? AND task_key=? AND seed=?", key
            )

    def tasks(
        self,
        fingerprint: str | None = None,
        *,
        dataset: str | None = None,
        suite: str | None = None,
        with_artifacts: bool = True,
    ) -> list[TaskRow]:
        """Finished tasks, optionally filtered, in the order they were written."""
        clauses, args = [], []
        for column, value in (("model_fingerprint", fingerprint), ("dataset", dataset), ("suite", suite)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            "SELECT id, model_fingerprint, dataset, task_key, seed, suite, params_json, run_id, started_at, "
            f"duration_s, shiftlab_version FROM tasks {where} ORDER BY id",
            args,
        ).fetchall()
        out: list[TaskRow] = []
        for r in rows:
            metrics = {
                m: _num(v) for m, v in self._conn.execute("SELECT metric, value FROM results WHERE task_id=?", (r[0],))
            }
            artifacts: dict[str, Any] = {}
            if with_artifacts:
                artifacts = {
                    n: json.loads(j)
                    for n, j in self._conn.execute("SELECT name, json FROM artifacts WHERE task_id=?", (r[0],))
                }
            out.append(
                TaskRow(
                    TaskId(r[1], r[2], r[3], int(r[4])), r[5], json.loads(r[6]), metrics, artifacts,
                    r[7], float(r[8]), float(r[9]), r[10],
                )
            )
        return out

    # partial batches ----------------------------------------------------------------
    def save_batch(self, task: TaskId, batch_index: int, payload: Mapping[str, Any]) -> None:
        """Keep the result of one batch of a long task, so a killed run can resume."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                (task.fingerprint, task.dataset, task.task_key, task.seed, batch_index, json.dumps(dict(payload))),
            )

    def load_batches(self, task: TaskId) -> dict[int, dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT batch_index, payload_json FROM batches WHERE model_fingerprint=? AND dataset=? AND task_key=? "
            "AND seed=?",
            (task.fingerprint, task.dataset, task.task_key, task.seed),
        ).fetchall()
        return {int(i): json.loads(p) for i, p in rows}
