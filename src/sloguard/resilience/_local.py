"""The in-memory breaker backend: one process's breaker, shared by its threads and tasks.

:class:`LocalBreaker` drives a :class:`~sloguard.resilience._core.BreakerCore`:
it reads the clock, serialises state updates with a ``threading.Lock`` and
runs listeners. The lock is held only while the core updates its counters --
never during the protected call, so a slow dependency does not serialise its
callers (pybreaker holds its lock around the call) -- and listeners run after
it is released, so a listener may read the breaker without deadlocking.

The closed-state hot path is what every protected call pays. ``admit``
reads one attribute (the core's shared closed-state admission) without the
lock. A success admitted that way, with no window strategy enabled (only
``consecutive_failures``, the default), takes no lock and reads no clock
either: it is one atomic ``next()`` on the core's success counter
(:attr:`~sloguard.resilience._core.BreakerCore.closed_success`; see the
core's "Lock-free successes" for why the counts stay exact). Every other
outcome -- failures, probes, and every call when a window strategy is on
(which then also reads the clock once) -- is one lock acquire and a few
integer adds. A call admitted just before another thread trips the breaker
carries the old episode, so its outcome is dropped as if it had been
admitted before the trip. The lock is a plain ``threading.Lock`` held for
microseconds with no ``await`` inside, so the same breaker serves threads
and asyncio tasks.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._core import BreakerCore
from sloguard.resilience._core_backend import CoreBackend
from sloguard.resilience._types import Admission, BreakerPolicy, Outcome, Transition

__all__ = ["LocalBreaker"]

SUCCESS = Outcome.SUCCESS
FAILURE = Outcome.FAILURE


class LocalBreaker(CoreBackend):
    """An in-memory :class:`~sloguard.resilience._types.BreakerBackend`."""

    __slots__ = ("_record", "_success", "_windowed")

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(BreakerCore(name, policy or BreakerPolicy(), rng=rng), clock)
        self._record = self._core.record
        self._windowed = self._core.windowed
        self._success = self._core.closed_success

    def admit(self) -> Admission:
        admission = self._core.closed_admission
        if admission is not None:
            return admission
        now = self._monotonic()
        with self._lock:
            admission, transition = self._core.admit(now)
        if transition is not None:
            self._listeners.emit(transition)
        return admission

    async def admit_async(self) -> Admission:
        return self.admit()

    def record(self, admission: Admission, outcome: Outcome, duration_s: float) -> None:
        success = self._success
        if success is not None and outcome is SUCCESS and admission is self._core.closed_admission:
            success()  # no lock, no clock: see the module docstring
            return
        # Without a window strategy only a failure can need the time (to open).
        now = self._monotonic() if self._windowed or outcome is FAILURE else 0.0
        # acquire/release, not ``with``: a third of the cost on the hot path (measured)
        self._acquire()
        try:
            transition = self._record(admission, outcome, duration_s, now)
        finally:
            self._release()
        if transition is not None:
            self._listeners.emit(transition)

    def force_open(self) -> None:
        self._operate(self._core.force_open)

    def reset(self) -> None:
        self._operate(self._core.reset)

    def _operate(self, action: Callable[[float], Transition | None]) -> None:
        """Run an operator's ``action`` on the core now, then tell the listeners."""
        now = self._monotonic()
        with self._lock:
            transition = action(now)
        self._listeners.emit(transition)

    def __repr__(self) -> str:
        return f"LocalBreaker({self._core.name!r}, state={self._core.state.value})"
