"""The store's file: where it lives, its journal mode, its schema, and its failures."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.store import (
    SCHEMA_VERSION,
    BucketRow,
    SQLiteStore,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
)

ROW = BucketRow("api", 100, "/a", "2xx", "", 1, 1)


@contextlib.contextmanager
def raw_db(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection that commits and, unlike ``with sqlite3.connect()``, closes."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def test_the_default_file_is_dot_sloguard_sli_db_in_the_working_directory() -> None:
    with SQLiteStore() as store:
        store.add([ROW])
    assert Path(".sloguard/sli.db").is_file()


def test_the_file_runs_in_wal_mode_with_its_parent_directories_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "sli.db"
    SQLiteStore(path).close()
    with raw_db(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_schema_version_table_records_the_latest_version(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "sli.db").close()
    with raw_db(tmp_path / "sli.db") as raw:
        assert raw.execute("SELECT version FROM sloguard_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_a_file_from_a_newer_sloguard_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "sli.db").close()
    with raw_db(tmp_path / "sli.db") as raw:
        raw.execute("UPDATE sloguard_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreSchemaError, match="newer"):
        SQLiteStore(tmp_path / "sli.db")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sli.db").write_bytes(b"certainly not sqlite " * 100)
    with pytest.raises(StoreSchemaError) as caught:
        SQLiteStore(tmp_path / "sli.db")
    assert caught.value.code == "SQLITE_NOTADB"
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_sqlite_errors_surface_as_store_errors_with_the_original_as_cause(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    with raw_db(tmp_path / "sli.db") as raw:
        raw.execute("DROP TABLE sli_buckets")
    with pytest.raises(StoreError, match="no such table") as caught:
        store.totals("api", 0, 10)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert caught.value.path == str(tmp_path / "sli.db")


def test_a_write_lock_held_past_every_retry_raises_store_locked_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db", timeout_s=0.02, retries=1)
    holder = sqlite3.connect(tmp_path / "sli.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreLockedError, match="locked") as caught:
        store.add([ROW])
    assert caught.value.code == "SQLITE_BUSY"
    holder.execute("ROLLBACK")
    assert store.add([ROW]) == 1
    holder.close()
    store.close()


def test_a_write_lock_released_while_retrying_lets_the_write_through(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db", timeout_s=0.02, retries=30)
    holder = sqlite3.connect(tmp_path / "sli.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    # A real lock held by another connection: no fake clock can stand in for it.
    release = threading.Timer(0.15, lambda: holder.execute("ROLLBACK"))
    release.start()
    started = time.monotonic()
    assert store.add([ROW]) == 1
    assert time.monotonic() - started >= 0.1
    release.join()
    assert store.totals("api", 0, 1000) == (1, 1)
    holder.close()
    store.close()


def test_a_closed_store_refuses_further_use_and_closes_idempotently(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.add([ROW])


@pytest.mark.parametrize(
    "path", [pytest.param(":memory:", id="memory"), pytest.param("file:x", id="uri")]
)
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="file path"):
        SQLiteStore(path)


@pytest.mark.parametrize(
    ("good", "total"),
    [pytest.param(2, 1, id="good-above-total"), pytest.param(-1, 0, id="negative")],
)
def test_a_bucket_row_rejects_impossible_counts(good: int, total: int) -> None:
    with pytest.raises(ValueError, match="good <= total"):
        BucketRow("api", 1, "/a", "2xx", "", good, total)
