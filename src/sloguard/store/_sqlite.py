"""The embedded SLI store: per-minute buckets in one SQLite file.

Several worker processes (``uvicorn --workers 4``, gunicorn) flush into the
same file, so the file runs in WAL mode (readers never block the writer), every
write takes the write lock up front (``BEGIN IMMEDIATE``, which waits out
``busy_timeout`` instead of failing on a lock upgrade), and a write that still
meets ``database is locked`` is retried with backoff. One flush is one
transaction of upserts that add to the stored counts, so concurrent writers
never lose each other's increments.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from sloguard.store._bucket import DIMENSIONS, BucketRow, Dimension
from sloguard.store._connections import ConnectionPool, TrackedConnection
from sloguard.store._errors import (
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
)
from sloguard.store._schema import SchemaTooNewError, ensure_schema

__all__ = ["DEFAULT_STORE_PATH", "SQLiteStore"]

T = TypeVar("T")

DEFAULT_STORE_PATH: Final = Path(".sloguard/sli.db")
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_RANGE: Final = "slo = ? AND minute >= ? AND minute < ?"
_TOTALS: Final = """
    SELECT COALESCE(SUM(good), 0), COALESCE(SUM(total), 0) FROM sli_buckets
    WHERE slo = ? AND minute >= ? AND minute < ?
"""
_SERIES: Final = """
    SELECT minute, SUM(good), SUM(total) FROM sli_buckets
    WHERE slo = ? AND minute >= ? AND minute < ?
    GROUP BY minute ORDER BY minute
"""
_UPSERT: Final = """
    INSERT INTO sli_buckets (slo, minute, route, status_class, error_code, good, total)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (slo, minute, route, status_class, error_code)
    DO UPDATE SET good = good + excluded.good, total = total + excluded.total
"""


class SQLiteStore:
    """Per-minute SLI buckets in a SQLite file shared by threads and processes."""

    __slots__ = ("_closed", "_path", "_pool", "_retries", "_timeout_s")

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_STORE_PATH,
        *,
        timeout_s: float = 5.0,
        retries: int = 4,
    ) -> None:
        self._path = os.fspath(path)
        if self._path == ":memory:" or self._path.startswith("file:"):
            raise ValueError("SQLiteStore needs a file path (each thread opens its own connection)")
        self._timeout_s = timeout_s
        self._retries = retries
        self._closed = False
        try:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory: {exc}", path=self._path) from exc
        self._pool = ConnectionPool(self._open)
        self._run(lambda conn: None)  # open now: a bad path or schema fails here, not mid-flush

    @property
    def path(self) -> str:
        return self._path

    def add(self, rows: Iterable[BucketRow]) -> int:
        """Add ``rows`` to the stored counts in one transaction; returns rows written."""
        params = [
            (r.slo, r.minute, r.route, r.status_class, r.error_code, r.good, r.total) for r in rows
        ]
        if not params:
            return 0

        def write(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return len(params)

        return self._run(write)

    def totals(self, slo: str, start_minute: int, end_minute: int) -> tuple[int, int]:
        """``(good, total)`` over ``[start_minute, end_minute)``."""
        row = self._run(
            lambda conn: conn.execute(_TOTALS, (slo, start_minute, end_minute)).fetchone()
        )
        return int(row[0]), int(row[1])

    def series(self, slo: str, start_minute: int, end_minute: int) -> list[tuple[int, int, int]]:
        """``(minute, good, total)`` for each minute in ``[start, end)`` that has data."""
        rows = self._run(
            lambda conn: conn.execute(_SERIES, (slo, start_minute, end_minute)).fetchall()
        )
        return [(int(m), int(g), int(t)) for m, g, t in rows]

    def breakdown(
        self, slo: str, start_minute: int, end_minute: int, by: Sequence[Dimension]
    ) -> list[tuple[tuple[str, ...], int, int]]:
        """``(dims, good, total)`` grouped by ``by``, largest bad count first.

        Ties go to the larger total, then to the dimension values in order.
        """
        columns = tuple(by)
        unknown = [c for c in columns if c not in DIMENSIONS]
        if unknown or len(set(columns)) != len(columns):
            raise ValueError(f"breakdown dimensions must be distinct and in {DIMENSIONS}: {by!r}")
        if not columns:
            good, total = self.totals(slo, start_minute, end_minute)
            return [((), good, total)] if total else []
        # Column names come from DIMENSIONS only, so the SQL built here is fixed text.
        names = ", ".join(columns)
        sql = (
            f"SELECT {names}, SUM(good) AS g, SUM(total) AS t FROM sli_buckets "  # noqa: S608
            f"WHERE {_RANGE} GROUP BY {names} ORDER BY t - g DESC, t DESC, {names}"
        )
        rows = self._run(lambda conn: conn.execute(sql, (slo, start_minute, end_minute)).fetchall())
        width = len(columns)
        return [(tuple(row[:width]), int(row[width]), int(row[width + 1])) for row in rows]

    def slos(self) -> list[str]:
        """Every SLO name with at least one bucket, sorted."""
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT DISTINCT slo FROM sli_buckets ORDER BY slo"
            ).fetchall()
        )
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        """Close every connection this process opened. Idempotent; later calls raise."""
        if not self._closed:
            self._closed = True
            self._pool.close_all()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> TrackedConnection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._timeout_s,
            isolation_level=None,  # autocommit: transactions are explicit
            check_same_thread=False,  # the pool closes other threads' connections at fork
            factory=TrackedConnection,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only an OS
            # crash or power loss can drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` on this thread's connection, retrying while the file is locked."""
        delay = 0.01
        for attempt in range(self._retries + 1):
            if self._closed:
                raise StoreClosedError("the store is closed", path=self._path)
            try:
                with self._pool.connection() as conn:
                    return operation(conn)
            except SchemaTooNewError as exc:
                raise StoreSchemaError(str(exc), path=self._path) from exc
            except sqlite3.Error as exc:
                code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
                name = getattr(exc, "sqlite_errorname", None)
                if code not in _BUSY_CODES:
                    error = StoreSchemaError if code == sqlite3.SQLITE_NOTADB else StoreError
                    raise error(str(exc), path=self._path, code=name) from exc
                if attempt == self._retries:
                    raise StoreLockedError(
                        f"still locked after {attempt + 1} attempts: {exc}",
                        path=self._path,
                        code=name,
                    ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")  # pragma: no cover
