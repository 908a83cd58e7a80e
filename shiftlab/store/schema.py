"""The store's schema and its migrations, applied in one transaction each.

A new store is created at schema 1 and migrated forward like any old one, so there is exactly one
description of every version. Schema 2 (typed identities): task keys are the canonical encoding of
:mod:`shiftlab.core.identity`, structured columns (kind, suite, subject, variant, severity,
table_name, norm, eps, is_summary) come from the identity, every row names a dataset identity with
a content fingerprint, and the database carries shiftlab's SQLite application id.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from shiftlab.core.identity import DatasetIdentity, decode_v1

APPLICATION_ID = 0x73686C62  # "shlb": marks a SQLite file as a shiftlab results store
SCHEMA_VERSION = 2

SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE models (
        fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL,
        recipe TEXT NOT NULL, num_params INTEGER NOT NULL, card_json TEXT NOT NULL,
        checkpoint_path TEXT NOT NULL, created_at REAL NOT NULL)""",
    """CREATE TABLE tasks (
        id INTEGER PRIMARY KEY, model_fingerprint TEXT NOT NULL REFERENCES models(fingerprint),
        dataset TEXT NOT NULL, task_key TEXT NOT NULL, seed INTEGER NOT NULL, suite TEXT NOT NULL,
        params_json TEXT NOT NULL, run_id TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL NOT NULL,
        duration_s REAL NOT NULL, shiftlab_version TEXT NOT NULL,
        UNIQUE (model_fingerprint, dataset, task_key, seed))""",
    """CREATE TABLE results (
        task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, metric TEXT NOT NULL, value REAL,
        PRIMARY KEY (task_id, metric))""",
    """CREATE TABLE artifacts (
        task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, name TEXT NOT NULL, json TEXT NOT NULL,
        PRIMARY KEY (task_id, name))""",
    """CREATE TABLE batches (
        model_fingerprint TEXT NOT NULL, dataset TEXT NOT NULL, task_key TEXT NOT NULL, seed INTEGER NOT NULL,
        batch_index INTEGER NOT NULL, payload_json TEXT NOT NULL,
        PRIMARY KEY (model_fingerprint, dataset, task_key, seed, batch_index))""",
    "CREATE INDEX tasks_by_suite ON tasks (model_fingerprint, dataset, suite)",
    "INSERT INTO meta VALUES ('schema_version', '1')",
)


def _v1_image_size(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    for fingerprint, card in conn.execute("SELECT fingerprint, card_json FROM models"):
        size = json.loads(card).get("config", {}).get("image_size", [32, 32])
        sizes[str(fingerprint)] = (int(size[0]), int(size[1]))
    return sizes


def _v1_dataset(text: str, n: int) -> DatasetIdentity:
    name, _, limit = text.partition("[:")
    return DatasetIdentity(name, "test", int(limit.rstrip("]")) if limit else None, "", n)


def migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Typed identities: re-key every task row, add the structured columns and the dataset table.

    Rows keep their ids, metrics and artifacts (the corruption summary's ``mce``/``relative_mce`` become
    ``mean_ce``/``relative_mean_ce``: ``mce`` is the calibration suite's maximum calibration error). Their dataset identity has no content fingerprint
    (schema 1 did not record one), so they are reported but never reused by a new run. Partial
    per-batch results are dropped: their batch numbering depended on the batch size.
    """
    sizes = _v1_image_size(conn)
    conn.execute("ALTER TABLE tasks RENAME COLUMN dataset TO dataset_key")
    for column in ("kind TEXT NOT NULL DEFAULT ''", "subject TEXT", "variant TEXT", "severity INTEGER",
                   "table_name TEXT", "norm TEXT", "eps REAL", "is_summary INTEGER NOT NULL DEFAULT 0"):
        conn.execute(f"ALTER TABLE tasks ADD COLUMN {column}")
    conn.execute("""CREATE TABLE datasets (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, split TEXT NOT NULL, limit_n INTEGER, content TEXT NOT NULL,
        size INTEGER NOT NULL, source TEXT NOT NULL, created_at REAL NOT NULL)""")
    conn.execute("""CREATE TABLE fingerprints (
        signature TEXT PRIMARY KEY, content TEXT NOT NULL, size INTEGER NOT NULL, created_at REAL NOT NULL)""")
    conn.execute("""CREATE TABLE claims (
        model_fingerprint TEXT NOT NULL, dataset_key TEXT NOT NULL, task_key TEXT NOT NULL, seed INTEGER NOT NULL,
        run_id TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL,
        PRIMARY KEY (model_fingerprint, dataset_key, task_key, seed))""")
    rows = conn.execute("SELECT id, model_fingerprint, dataset_key, task_key, params_json, started_at FROM tasks"
                        ).fetchall()
    protocols = dict(conn.execute("SELECT task_id, json FROM artifacts WHERE name = 'protocol'").fetchall())
    for task_id, fingerprint, dataset_text, key, params_json, started in rows:
        params = json.loads(params_json)
        summary_table = json.loads(protocols[task_id]).get("table") if task_id in protocols else None
        n = int(params.get("n") or params.get("n_in") or 0)
        dataset = _v1_dataset(str(dataset_text), n)
        identity = decode_v1(str(key), params, sizes.get(str(fingerprint), (32, 32)), summary_table)
        cols = identity.columns()
        conn.execute(
            "INSERT OR IGNORE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (dataset.key(), dataset.name, dataset.split, dataset.limit, dataset.content, dataset.size,
             "migrated from schema 1 (no content fingerprint)", float(started)))
        conn.execute(
            "UPDATE tasks SET dataset_key=?, task_key=?, kind=?, suite=?, subject=?, variant=?, severity=?, "
            "table_name=?, norm=?, eps=?, is_summary=? WHERE id=?",
            (dataset.key(), identity.key(), cols.kind, cols.suite, cols.subject, cols.variant, cols.severity,
             cols.table, cols.norm, cols.eps, int(cols.is_summary), task_id))
    conn.execute("UPDATE results SET metric = 'mean_ce' WHERE metric = 'mce' AND task_id IN "
                 "(SELECT id FROM tasks WHERE kind = 'summary' AND suite = 'corruptions')")
    conn.execute("UPDATE results SET metric = 'relative_mean_ce' WHERE metric = 'relative_mce' AND task_id IN "
                 "(SELECT id FROM tasks WHERE kind = 'summary' AND suite = 'corruptions')")
    conn.execute("DROP TABLE batches")
    conn.execute("""CREATE TABLE batches (
        model_fingerprint TEXT NOT NULL, dataset_key TEXT NOT NULL, task_key TEXT NOT NULL, seed INTEGER NOT NULL,
        block INTEGER NOT NULL, payload_json TEXT NOT NULL,
        PRIMARY KEY (model_fingerprint, dataset_key, task_key, seed, block))""")
    conn.execute("ALTER TABLE results ADD COLUMN position INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE results SET position = rowid")  # metrics keep the order they were written in
    conn.execute("DROP INDEX tasks_by_suite")
    conn.execute("CREATE INDEX tasks_by_suite ON tasks (model_fingerprint, dataset_key, suite)")
    conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: migrate_1_to_2}


POSTGRES_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE models (
        fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, arch TEXT NOT NULL, dataset TEXT NOT NULL,
        recipe TEXT NOT NULL, num_params BIGINT NOT NULL, card_json TEXT NOT NULL, checkpoint_path TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE tasks (
        id BIGSERIAL PRIMARY KEY, model_fingerprint TEXT NOT NULL REFERENCES models(fingerprint),
        dataset_key TEXT NOT NULL, task_key TEXT NOT NULL, seed BIGINT NOT NULL, suite TEXT NOT NULL,
        params_json TEXT NOT NULL, run_id TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL, duration_s DOUBLE PRECISION NOT NULL, shiftlab_version TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT '', subject TEXT, variant TEXT, severity BIGINT, table_name TEXT, norm TEXT,
        eps DOUBLE PRECISION, is_summary BIGINT NOT NULL DEFAULT 0,
        UNIQUE (model_fingerprint, dataset_key, task_key, seed))""",
    """CREATE TABLE results (
        task_id BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, metric TEXT NOT NULL,
        value DOUBLE PRECISION, position BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (task_id, metric))""",
    """CREATE TABLE artifacts (
        task_id BIGINT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, name TEXT NOT NULL, json TEXT NOT NULL,
        PRIMARY KEY (task_id, name))""",
    """CREATE TABLE batches (
        model_fingerprint TEXT NOT NULL, dataset_key TEXT NOT NULL, task_key TEXT NOT NULL, seed BIGINT NOT NULL,
        block BIGINT NOT NULL, payload_json TEXT NOT NULL,
        PRIMARY KEY (model_fingerprint, dataset_key, task_key, seed, block))""",
    """CREATE TABLE datasets (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, split TEXT NOT NULL, limit_n BIGINT, content TEXT NOT NULL,
        size BIGINT NOT NULL, source TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE fingerprints (
        signature TEXT PRIMARY KEY, content TEXT NOT NULL, size BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE claims (
        model_fingerprint TEXT NOT NULL, dataset_key TEXT NOT NULL, task_key TEXT NOT NULL, seed BIGINT NOT NULL,
        run_id TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL, heartbeat DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model_fingerprint, dataset_key, task_key, seed))""",
    "CREATE INDEX tasks_by_suite ON tasks (model_fingerprint, dataset_key, suite)",
)
"""Schema 2 as a PostgreSQL database is created directly (no PostgreSQL store predates it)."""
