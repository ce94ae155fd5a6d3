"""The store's exceptions; sqlite3 errors are translated into these at the boundary."""

from __future__ import annotations

__all__ = ["StoreClosedError", "StoreError", "StoreLockedError", "StoreSchemaError"]


class StoreError(Exception):
    """The SLI store could not do what was asked.

    ``path`` is the database file; ``code`` is SQLite's error name
    (``SQLITE_BUSY``, ``SQLITE_NOTADB`` ...) when SQLite reported one.
    """

    def __init__(self, message: str, *, path: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.code = code

    def __str__(self) -> str:
        suffix = f" [{self.code}]" if self.code else ""
        return f"{self.message} ({self.path}){suffix}"


class StoreLockedError(StoreError):
    """Another writer kept the database locked past the busy timeout and every retry."""


class StoreSchemaError(StoreError):
    """The file holds a schema this sloguard cannot use (newer, or not a sloguard store)."""


class StoreClosedError(StoreError):
    """The store was used after :meth:`SQLiteStore.close`."""
