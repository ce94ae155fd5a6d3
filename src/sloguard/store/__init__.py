"""The embedded time-series store: per-minute SLI buckets in SQLite.

The SLI flusher writes here in the background; the SLO engine, the dashboard
and the CLI read budgets and breakdowns back. One file (default
``.sloguard/sli.db``) is shared by every worker process of a service: WAL mode,
a busy timeout, retries on ``database is locked`` and additive upserts keep the
counts exact under concurrent writers. Connections are per thread and never
cross a fork.

Exceptions::

    StoreError                 anything the store could not do (.path, .code)
     ├── StoreLockedError      still locked after the busy timeout and every retry
     ├── StoreSchemaError      the file is not a sloguard store, or a newer one
     └── StoreClosedError      used after close()

Errors from :mod:`sqlite3` never escape: they are raised as one of these, with
the original as ``__cause__``.
"""

from sloguard.store._bucket import DIMENSIONS, BucketRow, Dimension, minute_of
from sloguard.store._errors import (
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreSchemaError,
)
from sloguard.store._schema import LATEST_VERSION as SCHEMA_VERSION
from sloguard.store._sqlite import DEFAULT_STORE_PATH, SQLiteStore

__all__ = [
    "DEFAULT_STORE_PATH",
    "DIMENSIONS",
    "SCHEMA_VERSION",
    "BucketRow",
    "Dimension",
    "SQLiteStore",
    "StoreClosedError",
    "StoreError",
    "StoreLockedError",
    "StoreSchemaError",
    "minute_of",
]
