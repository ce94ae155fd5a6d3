"""What every breaker backend that drives a :class:`~sloguard.resilience._core.BreakerCore` shares.

The in-memory backend (:mod:`._local`) and the Redis-shared one
(:mod:`._redis_breaker`) both keep the breaker's state in a core, update it
under a ``threading.Lock`` held for microseconds (never during the protected
call, never across an ``await``), read time from a
:class:`~sloguard.resilience._clock.Clock` and tell a
:class:`~sloguard.resilience._listeners.ListenerSet` of each transition once
the lock is released. :class:`CoreBackend` holds those parts and answers the
read side of :class:`~sloguard.resilience._types.BreakerBackend` from the
core; each backend adds how it admits and records.

The lock's ``acquire`` and ``release`` are also kept as bound methods, for
the record paths that avoid a ``with`` block (see :mod:`._local`).
"""

from __future__ import annotations

import threading

from sloguard.resilience._clock import Clock
from sloguard.resilience._core import BreakerCore, BreakerSnapshot
from sloguard.resilience._listeners import ListenerSet
from sloguard.resilience._types import BreakerPolicy, BreakerState, Listener

__all__ = ["CoreBackend"]


class CoreBackend:
    """A breaker core behind a lock, with its clock and listeners."""

    __slots__ = ("_acquire", "_clock", "_core", "_listeners", "_lock", "_monotonic", "_release")

    def __init__(self, core: BreakerCore, clock: Clock) -> None:
        self._core = core
        self._clock = clock
        self._monotonic = clock.monotonic
        self._listeners = ListenerSet(clock)
        self._new_lock()

    def _new_lock(self) -> None:
        """A fresh lock (also in a forked child, where the parent's may be held forever)."""
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def policy(self) -> BreakerPolicy:
        return self._core.policy

    @property
    def state(self) -> BreakerState:
        return self._core.state

    @property
    def core(self) -> BreakerCore:
        """The state machine (read it under no lock only for a rough look; see ``snapshot``)."""
        return self._core

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.add(listener)

    def snapshot(self) -> BreakerSnapshot:
        now = self._monotonic()
        with self._lock:
            return self._core.snapshot(now)
