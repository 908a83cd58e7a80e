"""The databases a store can live in: an embedded SQLite file (the default) or a PostgreSQL server
(for a cluster whose workers report to one writer, or several writers on several hosts).

Both speak through :class:`Database`: SQL written once with ``?`` placeholders and standard upserts
(``ON CONFLICT``, ``RETURNING``), run on one connection, with atomic transactions. Each backend owns
its schema: SQLite files are created at schema 1 and migrated (so stores of every release open), a
PostgreSQL database is created at the current schema. Neither writes to a database that is not a
shiftlab store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from shiftlab.core.errors import UserError
from shiftlab.store.schema import APPLICATION_ID, MIGRATIONS, POSTGRES_SCHEMA, SCHEMA_1, SCHEMA_VERSION

POSTGRES_PREFIXES = ("postgresql://", "postgres://")


class Database(Protocol):
    """One connection to a store's database."""

    location: str

    def run(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def transaction(self) -> Any: ...
    def close(self) -> None: ...


def is_url(target: str | Path) -> bool:
    return str(target).startswith(POSTGRES_PREFIXES)


class SqliteDatabase:
    """A SQLite file in WAL mode (several local processes may write at once)."""

    def __init__(self, path: str | Path, create: bool) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        if str(path) == ":memory:":
            self.location = ":memory:"
        elif self.path.is_dir():
            raise UserError(f"store path {self.path} is a directory; pass a file such as {self.path / 'results.db'}")
        exists = self.location != ":memory:" and self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise UserError(f"no results store at {self.path}; run `shiftlab evaluate` first or pass --store")
        if not exists and self.location != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.location, timeout=60.0, isolation_level=None)
            if exists:
                self._check_ours()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._upgrade()
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a shiftlab results store ({exc})") from None

    def run(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, tuple(args)).fetchall()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write; BEGIN IMMEDIATE takes the write lock up front, so checks inside hold."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    def _tables(self) -> set[str]:
        return {r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type='table'")}

    def _check_ours(self) -> None:
        app_id = int(self.run("PRAGMA application_id")[0][0])
        if app_id == APPLICATION_ID:
            return
        if app_id == 0 and not self._tables():
            return  # an empty file, or a store another process is creating right now: _upgrade waits for it
        legacy = {"meta", "models", "tasks", "results", "artifacts", "batches"} <= self._tables() and app_id == 0
        if legacy and self.run("SELECT value FROM meta WHERE key='schema_version'") == [("1",)]:
            return
        self.conn.close()
        raise UserError(f"{self.path} is a SQLite database of another application, not a shiftlab results store; "
                        "shiftlab will not write to it: pass another --store")

    def _version(self) -> int:
        if "meta" not in self._tables():
            return 0
        row = self.run("SELECT value FROM meta WHERE key='schema_version'")
        return int(row[0][0]) if row else 0

    def _upgrade(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise UserError(f"store {self.path} has schema {version}, newer than this shiftlab ({SCHEMA_VERSION}); "
                            "upgrade shiftlab")
        if version == SCHEMA_VERSION:
            return
        self.conn.execute("PRAGMA foreign_keys=OFF")  # migrations re-key rows; ids never change
        with self.transaction():
            version = self._version()  # another process may have migrated meanwhile
            if version == 0:
                for statement in SCHEMA_1:
                    self.conn.execute(statement)
                version = 1
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](self.conn)
                version += 1
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class PostgresDatabase:
    """A PostgreSQL database reached by URL (``postgresql://user@host:port/db``), through psycopg 3.

    The database must be empty or already hold a shiftlab store (its ``meta`` table says so).
    """

    def __init__(self, url: str, create: bool) -> None:
        try:
            import psycopg
        except ImportError:
            raise UserError("a PostgreSQL store needs psycopg: pip install 'shiftlab[cluster]'") from None
        self.location = url.split("@")[-1]  # never echo a password
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise UserError(f"cannot connect to the PostgreSQL store at {self.location}: "
                            f"{str(exc).strip().splitlines()[0]}") from None
        self._error = psycopg.Error
        self._ensure_schema(create)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def run(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(self._sql(sql), tuple(args))
        return list(cur.fetchall()) if cur.description is not None else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def close(self) -> None:
        self.conn.close()

    def _ensure_schema(self, create: bool) -> None:
        tables = {r[0] for r in self.run("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                         "current_schema()")}
        if "meta" in tables:
            marks = dict(self.run("SELECT key, value FROM meta"))
            if marks.get("application") != "shiftlab":
                raise UserError(f"the PostgreSQL database at {self.location} is not a shiftlab results store")
            if int(marks.get("schema_version", 0)) > SCHEMA_VERSION:
                raise UserError(f"the store at {self.location} is newer than this shiftlab; upgrade shiftlab")
            return
        if tables:
            raise UserError(f"the PostgreSQL database at {self.location} holds other tables; use an empty database")
        if not create:
            raise UserError(f"no results store at {self.location}; run `shiftlab evaluate` first")
        with self.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(7310)")  # one creator when several start at once
            if not self.run("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                            "AND table_name = 'meta'"):
                for statement in POSTGRES_SCHEMA:
                    self.conn.execute(statement)
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', %s), ('application', 'shiftlab')",
                                  (str(SCHEMA_VERSION),))


def connect(target: str | Path, create: bool = True) -> Database:
    """The database of a store: a PostgreSQL URL, or a SQLite file path (``:memory:`` for none)."""
    if is_url(target):
        return PostgresDatabase(str(target), create)
    return SqliteDatabase(target, create)
