"""Moving counts from the recorder to the store, in the background.

A daemon thread drains the :class:`SLIRecorder` every ``interval_s`` and adds
the rows to the store in one transaction. Nothing the store does reaches the
request path: a failed write (locked file, full disk) keeps the drained rows
and retries them, merged with newer ones, at the next flush, and is logged at
most once per interval.

Processes: ``start()`` is idempotent and safe across ``fork()``. In a forked
child (gunicorn ``--preload``) an at-fork hook drops the rows and thread handle
inherited from the parent -- the parent flushes its own counts -- and, if the
parent's flusher was running, starts a fresh thread in the child. ``close()``
stops the thread and flushes what is left; it is registered with
:mod:`atexit`, so a graceful exit loses nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from sloguard.sli._recorder import SLIRecorder
from sloguard.store import DEFAULT_STORE_PATH, BucketRow, SQLiteStore

__all__ = ["BucketSink", "SLIFlusher", "StoreFactory", "merge_rows"]

_LOG = logging.getLogger("sloguard.sli")


class BucketSink(Protocol):
    """Where flushed rows go: :class:`~sloguard.store.SQLiteStore`, or a test double."""

    def add(self, rows: Iterable[BucketRow]) -> int: ...

    def close(self) -> None: ...


StoreFactory = Callable[[Path], BucketSink]


def merge_rows(*batches: Iterable[BucketRow]) -> list[BucketRow]:
    """One row per bucket key, counts summed, in key order."""
    sums: dict[tuple[str, int, str, str, str], list[int]] = {}
    for batch in batches:
        for row in batch:
            cell = sums.setdefault(row.key, [0, 0])
            cell[0] += row.good
            cell[1] += row.total
    return [BucketRow(*key, good, total) for key, (good, total) in sorted(sums.items())]


class SLIFlusher:
    """Drains a recorder into a store every ``interval_s`` on a daemon thread."""

    def __init__(
        self,
        recorder: SLIRecorder,
        store_path: str | os.PathLike[str] = DEFAULT_STORE_PATH,
        interval_s: float = 5.0,
        *,
        store_factory: StoreFactory = SQLiteStore,
        clock: Callable[[], float] = time.monotonic,
        join_timeout_s: float = 10.0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._recorder = recorder
        self._store_path = Path(store_path)
        self._interval_s = interval_s
        self._store_factory = store_factory
        self._clock = clock
        self._join_timeout_s = join_timeout_s
        self._store: BucketSink | None = None
        self._pending: list[BucketRow] = []
        self._last_logged: float | None = None
        self._closed = False
        self._exit_hook = False
        self._init_process_state()
        _FLUSHERS.add(self)

    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._state_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether this process has a live flusher thread."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    @property
    def pending(self) -> int:
        """Rows drained but not yet written (kept after a failed flush)."""
        return len(self._pending)

    def start(self) -> None:
        """Start the background thread. Idempotent; after a fork, starts one in the child."""
        if os.getpid() != self._pid:
            # Forked without Python's at-fork hooks (a C-level fork).
            self._after_fork_in_child(restart=False)
            self._recorder.reset_after_fork()
        with self._state_lock:
            if self._closed:
                raise RuntimeError("the SLI flusher is closed")
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="sloguard-sli-flusher", daemon=True
            )
            self._thread.start()
            if not self._exit_hook:
                atexit.register(self.close)
                self._exit_hook = True

    def flush(self) -> int:
        """Drain and write now; returns rows written (0 when the store failed)."""
        with self._flush_lock:
            rows = self._recorder.drain()
            if self._pending:
                rows = merge_rows(self._pending, rows)
            if not rows:
                return 0
            # Held until the write succeeds, so no exception can lose them.
            self._pending = rows
            try:
                if self._store is None:
                    self._store = self._store_factory(self._store_path)
                written = self._store.add(rows)
            except Exception as exc:  # any store failure: keep the rows, retry later
                self._log_failure(exc, len(rows))
                return 0
            self._pending = []
            return written

    def close(self) -> None:
        """Stop the thread, flush the remainder and close the store. Idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            stop, thread = self._stop, self._thread
        stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._join_timeout_s)
        self.flush()
        with self._flush_lock:
            if self._pending:
                _LOG.error(
                    "sloguard: %d SLI bucket rows could not be written to %s and are lost",
                    len(self._pending),
                    self._store_path,
                )
                self._pending = []
            if self._store is not None:
                try:
                    self._store.close()
                except Exception:
                    _LOG.exception("sloguard: closing the SLI store %s failed", self._store_path)
                self._store = None
        if self._exit_hook:
            atexit.unregister(self.close)
            self._exit_hook = False

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval_s):
            try:
                self.flush()
            except Exception:  # a bug must not kill the thread and silently stop flushing
                _LOG.exception("sloguard: the SLI flush failed unexpectedly")

    def _log_failure(self, exc: Exception, rows: int) -> None:
        now = self._clock()
        if self._last_logged is not None and now - self._last_logged < self._interval_s:
            return
        self._last_logged = now
        _LOG.warning(
            "sloguard: writing %d SLI bucket rows to %s failed; retrying at the next flush: %s",
            rows,
            self._store_path,
            exc,
        )

    def _after_fork_in_child(self, *, restart: bool) -> None:
        was_running = self._thread is not None and not self._closed
        self._init_process_state()
        self._pending = []
        self._last_logged = None
        if restart and was_running:
            self.start()


_FLUSHERS: weakref.WeakSet[SLIFlusher] = weakref.WeakSet()


def _restart_flushers_in_child() -> None:
    for flusher in list(_FLUSHERS):
        flusher._after_fork_in_child(restart=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_flushers_in_child)
