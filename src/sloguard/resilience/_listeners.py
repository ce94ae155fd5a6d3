"""A breaker's transition listeners: stamped, called in order, never allowed to break the caller.

Both breaker backends (:mod:`._local`, :mod:`._redis_breaker`) hand every
transition their core reports to a :class:`ListenerSet`. It stamps the
transition with the wall clock (the core only knows monotonic time) and
calls each listener with it; a listener that raises is logged with the
breaker's name and dropped for that transition, so a broken metrics hook
cannot turn a protected call into an error or keep the next listener from
hearing of the change.

The listeners are a tuple replaced on every ``add`` (copy on write): ``emit``
iterates whatever tuple it read, without a lock, so a listener may add
another listener or read its breaker. The backend serialises ``add`` with
its own lock.
"""

from __future__ import annotations

import dataclasses
import logging

from sloguard.resilience._clock import Clock
from sloguard.resilience._types import Listener, Transition

__all__ = ["ListenerSet"]

logger = logging.getLogger("sloguard.resilience")


class ListenerSet:
    """The listeners of one breaker, and how a transition reaches them."""

    __slots__ = ("_clock", "_listeners")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._listeners: tuple[Listener, ...] = ()

    def add(self, listener: Listener) -> None:
        """Call ``listener`` on every later transition (the caller holds the backend's lock)."""
        self._listeners = (*self._listeners, listener)

    def emit(self, transition: Transition | None) -> None:
        """Stamp ``transition`` with the wall clock and call each listener (None: nothing)."""
        if transition is None:
            return
        stamped = dataclasses.replace(transition, at=self._clock.wall())
        for listener in self._listeners:
            try:
                listener(stamped)
            except Exception:
                logger.exception(
                    "breaker listener %r failed on %s -> %s",
                    listener,
                    stamped.old.value,
                    stamped.new.value,
                    extra={"breaker": stamped.name},
                )
