"""The store's schema and its migrations.

The schema version lives in a one-row table, ``sloguard_schema``. Each
migration is a list of statements run in the same ``BEGIN IMMEDIATE``
transaction that bumps the version, so several processes opening a fresh file
at once serialize on the write lock and only the first one migrates; the
others re-read the version inside their transaction and find nothing to do.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = ["LATEST_VERSION", "MIGRATIONS", "SchemaTooNewError", "ensure_schema", "schema_version"]

MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            """
            CREATE TABLE IF NOT EXISTS sloguard_schema (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            # The primary key doubles as the index for the (slo, minute range)
            # scans every read does.
            """
            CREATE TABLE IF NOT EXISTS sli_buckets (
                slo TEXT NOT NULL,
                minute INTEGER NOT NULL,
                route TEXT NOT NULL,
                status_class TEXT NOT NULL,
                error_code TEXT NOT NULL DEFAULT '',
                good INTEGER NOT NULL CHECK (good >= 0),
                total INTEGER NOT NULL CHECK (total >= good),
                PRIMARY KEY (slo, minute, route, status_class, error_code)
            ) WITHOUT ROWID
            """,
        ),
    ),
)
LATEST_VERSION: Final = MIGRATIONS[-1][0]


class SchemaTooNewError(Exception):
    """The file was migrated by a newer sloguard; carries the version found."""

    def __init__(self, found: int) -> None:
        super().__init__(f"schema version {found} is newer than this sloguard ({LATEST_VERSION})")
        self.found = found


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the file; 0 for a file sloguard never touched."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sloguard_schema'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT version FROM sloguard_schema WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Bring the file to :data:`LATEST_VERSION`; a no-op (one read) when it is there.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    found = schema_version(conn)
    if found == LATEST_VERSION:
        return
    if found > LATEST_VERSION:
        raise SchemaTooNewError(found)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)  # another process may have migrated meanwhile
        if found > LATEST_VERSION:
            raise SchemaTooNewError(found)
        for version, statements in MIGRATIONS:
            if version <= found:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO sloguard_schema (id, version) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (version,),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
