"""A static cap on requests in flight, for the whole app and per route.

Admission never waits: a request over its class's ceiling (see
:mod:`sloguard.resilience._priority`) is refused at once with ``SHED_101``,
because a queue in front of an overloaded service only adds latency to the
requests it will serve anyway. There is deliberately no waiting queue.

Each route with a limit of its own (``route_limits``, or the
``route_limit`` resolver for globs) has its own counter with the same
priority ceilings; a request must fit under both the app-wide and its
route's ceiling. Route keys are route *templates* (``/items/{id}``), a
bounded set, so resolved routes are cached.

Thread-safe: one lock guards the counters. A permit is released exactly
once, whichever comes first of ``release()`` and leaving its ``with`` block.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sloguard.resilience._permit import ReleasedOnExit
from sloguard.resilience._priority import (
    DEFAULT_SHARES,
    Priority,
    PriorityShares,
    ShedDecision,
    ShedReason,
)
from sloguard.resilience._types import Outcome

__all__ = ["ConcurrencyLimiter", "ConcurrencyPermit", "ConcurrencySnapshot"]

_UNLIMITED = (sys.maxsize,) * len(Priority)


class _RouteSlot:
    __slots__ = ("ceilings", "in_flight", "limit")

    def __init__(self, limit: int, shares: PriorityShares) -> None:
        self.limit = limit
        self.ceilings = shares.ceilings(limit)
        self.in_flight = 0


@dataclass(frozen=True, slots=True)
class ConcurrencySnapshot:
    limit: int | None
    in_flight: int
    #: route template -> (its limit, in flight); only routes seen so far
    routes: Mapping[str, tuple[int, int]]


class ConcurrencyLimiter:
    """At most ``limit`` requests in flight (``None``: no app-wide cap), and at
    most ``route_limits[route]`` for each listed route."""

    __slots__ = (
        "_ceilings",
        "_has_routes",
        "_in_flight",
        "_limit",
        "_lock",
        "_resolve",
        "_retry_after_s",
        "_shares",
        "_slots",
    )

    def __init__(
        self,
        limit: int | None = None,
        *,
        route_limits: Mapping[str, int] | None = None,
        route_limit: Callable[[str], int | None] | None = None,
        shares: PriorityShares = DEFAULT_SHARES,
        retry_after_s: float = 1.0,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("concurrency limit 'limit': must be at least 1")
        if not (math.isfinite(retry_after_s) and retry_after_s > 0):
            raise ValueError("concurrency limit 'retry_after_s': must be a positive number")
        self._limit = limit
        self._shares = shares
        self._ceilings = _UNLIMITED if limit is None else shares.ceilings(limit)
        self._retry_after_s = retry_after_s
        self._slots: dict[str, _RouteSlot | None] = {}
        for route, route_cap in (route_limits or {}).items():
            if route_cap < 1:
                raise ValueError(f"concurrency limit 'route_limits[{route!r}]': must be >= 1")
            self._slots[route] = _RouteSlot(route_cap, shares)
        self._resolve = route_limit
        self._has_routes = bool(self._slots) or route_limit is not None
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int | None:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(
        self, priority: Priority = Priority.NORMAL, route: str | None = None
    ) -> ConcurrencyPermit | ShedDecision:
        """A permit to release when the request ends, or the refusal."""
        with self._lock:
            refused = self._admit(priority, route)
        if refused is not None:
            return refused
        return ConcurrencyPermit(self, route)

    def snapshot(self) -> ConcurrencySnapshot:
        with self._lock:
            routes = {
                route: (slot.limit, slot.in_flight)
                for route, slot in self._slots.items()
                if slot is not None
            }
            return ConcurrencySnapshot(self._limit, self._in_flight, routes)

    # -- the unlocked core; the caller holds ``_lock`` -------------------------

    def _share_lock(self, lock: threading.Lock) -> None:
        """Guard this limiter with ``lock`` (a LoadShedder's), so one lock covers the chain."""
        self._lock = lock

    def _admit(self, priority: int, route: str | None) -> ShedDecision | None:
        if self._in_flight >= self._ceilings[priority]:
            return self._refuse(priority, route, self._limit, self._ceilings[priority], False)
        if route is not None and self._has_routes:
            try:
                slot = self._slots[route]
            except KeyError:
                slot = self._resolve_route(route)
            if slot is not None:
                if slot.in_flight >= slot.ceilings[priority]:
                    return self._refuse(priority, route, slot.limit, slot.ceilings[priority], True)
                slot.in_flight += 1
        self._in_flight += 1
        return None

    def _release(self, route: str | None) -> None:
        self._in_flight -= 1
        if route is not None and self._has_routes:
            slot = self._slots.get(route)
            if slot is not None:
                slot.in_flight -= 1

    def _resolve_route(self, route: str) -> _RouteSlot | None:
        route_cap = self._resolve(route) if self._resolve is not None else None
        slot = None if route_cap is None else _RouteSlot(route_cap, self._shares)
        self._slots[route] = slot
        return slot

    def _refuse(
        self, priority: int, route: str | None, limit: int | None, ceiling: int, per_route: bool
    ) -> ShedDecision:
        level = Priority(priority)
        where = f"route {route}" if per_route else "the service"
        detail = (
            f"{where} is at its concurrency limit ({limit}); "
            f"{level.name.lower()} priority requests are admitted below {ceiling} in flight"
        )
        return ShedDecision(ShedReason.CONCURRENCY, level, detail, self._retry_after_s, route)


class ConcurrencyPermit(ReleasedOnExit):
    """One admitted request's place; ``release()`` (or ``with``) gives it back once."""

    __slots__ = ("_limiter", "_released", "_route")

    def __init__(self, limiter: ConcurrencyLimiter, route: str | None) -> None:
        self._limiter = limiter
        self._route = route
        self._released = False

    def release(self, outcome: Outcome = Outcome.SUCCESS, latency_s: float | None = None) -> None:
        """Give the place back (once). ``outcome`` and ``latency_s`` are taken as every
        shedding token takes them, and unused: a static limit learns nothing from them."""
        limiter = self._limiter
        with limiter._lock:
            if self._released:
                return
            self._released = True
            limiter._release(self._route)
