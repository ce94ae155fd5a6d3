"""Per-thread SQLite connections that never cross a fork.

A sqlite3 connection must not be used by two threads at once, and SQLite's
own guidance is blunt about ``fork()``: a connection carried into a child
process breaks SQLite's locking and can corrupt the file ("How To Corrupt An
SQLite Database File", section 2.6). So every thread opens its own connection
(threads still read and write concurrently, as WAL allows), and around each
fork:

* before it: shut the gate -- wait until no operation is in flight and hold
  new ones back -- then close every connection, so the child inherits nothing
  SQLite holds open;
* in the parent afterwards: open the gate; threads reopen on next use;
* in the child: a fresh gate, and every thread reopens on first use.

A fork that bypasses Python's hooks (a C extension calling ``fork()``) is
caught by a pid check on each use: the inherited connections are then parked
forever, neither used nor closed, because closing them in the child could drop
locks the parent still holds.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["ConnectionPool", "TrackedConnection"]

# How long a fork waits for in-flight store operations before giving up on
# closing that pool's connections (they are then parked in the child).
_FORK_WAIT_S: Final = 10.0


class TrackedConnection(sqlite3.Connection):
    """A sqlite3 connection that can be weakly referenced (the base class cannot).

    It closes itself when collected: a thread's connection lives in that
    thread's locals, and when the thread ends nobody else will close it
    (Python 3.13 warns about a connection collected open). Connections
    inherited across a fork are parked, never collected, so this never
    closes the parent's handle from a child.
    """

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class _Gate:
    """Operations pass through together; shutting it waits for them and holds new ones."""

    __slots__ = ("_active", "_changed", "_shut")

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._active = 0
        self._shut = False

    @contextlib.contextmanager
    def passing(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def shut(self, timeout: float | None = None) -> bool:
        """Hold new operations back and wait for running ones; False if they outlast ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)
            self._shut = True
            if self._changed.wait_for(lambda: self._active == 0, timeout):
                return True
            self._shut = False
            self._changed.notify_all()
            return False

    def open(self) -> None:
        with self._changed:
            self._shut = False
            self._changed.notify_all()


class ConnectionPool:
    """One connection per thread for one database file, reopened after a fork."""

    __slots__ = (
        "__weakref__",
        "_connections",
        "_epoch",
        "_gate",
        "_local",
        "_open",
        "_pid",
        "_registry",
    )

    def __init__(self, open_connection: Callable[[], TrackedConnection]) -> None:
        self._open = open_connection
        self._gate = _Gate()
        self._registry = threading.Lock()  # guards _connections, _epoch and _pid
        self._local = threading.local()
        # Weak: a thread's connection lives in its thread-local and closes with it.
        self._connections: weakref.WeakSet[TrackedConnection] = weakref.WeakSet()
        self._epoch = 0
        self._pid = os.getpid()
        _POOLS.add(self)

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, for the duration of the ``with`` block."""
        with self._gate.passing():
            yield self._current()

    def close_all(self) -> None:
        """Close every thread's connection once in-flight operations finish."""
        self._gate.shut()
        try:
            self._close_all()
        finally:
            self._gate.open()

    def _current(self) -> TrackedConnection:
        held: tuple[int, TrackedConnection] | None = getattr(self._local, "held", None)
        with self._registry:
            pid = os.getpid()
            if pid != self._pid:
                self._park_inherited(pid)
            if held is not None and held[0] == self._epoch:
                return held[1]
            epoch = self._epoch
        conn = self._open()  # outside the registry lock: opening may wait on a busy file
        with self._registry:
            self._connections.add(conn)
        self._local.held = (epoch, conn)
        return conn

    def _close_all(self) -> None:
        with self._registry:
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
            self._epoch += 1
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _park_inherited(self, pid: int) -> None:
        _PARKED.extend(self._connections)
        self._connections = weakref.WeakSet()
        self._epoch += 1
        self._pid = pid

    def _reset_in_child(self) -> None:
        self._gate = _Gate()
        self._registry = threading.Lock()
        self._park_inherited(os.getpid())


_POOLS: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
_PARKED: list[TrackedConnection] = []
_SHUT: list[ConnectionPool] = []


def _before_fork() -> None:
    for pool in list(_POOLS):
        if pool._gate.shut(_FORK_WAIT_S):
            _SHUT.append(pool)
            pool._close_all()


def _after_fork_in_parent() -> None:
    while _SHUT:
        _SHUT.pop()._gate.open()


def _after_fork_in_child() -> None:
    _SHUT.clear()
    for pool in list(_POOLS):
        pool._reset_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
