"""A concurrency limit that finds itself from latency.

A static limit is either too low (wasted capacity) or too high (queues
build, every request gets slow, the p99 blows the SLO). An adaptive limit
watches the round-trip time of finished requests and moves: when latency
rises above what the service does unloaded, requests are queueing, so the
limit comes down; when latency falls back, it goes up again. The two
algorithms follow Netflix's concurrency-limits library (re-implemented
here; nothing is copied):

``Gradient2Limit``
    Keeps a long-term EWMA of the RTT (the service's "normal") and compares
    each sample with it: ``gradient = clamp(tolerance x long / rtt, 0.5, 1)``
    and ``new = limit x gradient + queue_size``, smoothed. A gradient of 1
    (no queueing) lets the limit grow by ``queue_size``; a sample twice as
    slow as ``tolerance`` allows halves the target. Samples taken while the
    service is app-limited (fewer than half the limit in flight) do not
    move the limit, so an idle night does not inflate it. When the long RTT
    is far above the current RTT (recovering from an overload) it is decayed
    faster so the limit does not stay low. Deviation: a dropped request
    (timeout, overload error) counts as the steepest gradient (0.5), where
    the original ignores drops.

``AIMDLimit``
    TCP-style: +1 on a success while the limit is being used (in flight at
    least half of it), x ``backoff_ratio`` on a drop or a sample slower than
    ``timeout_s``.

"App-limited" is ``in_flight < limit x app_limited_ratio`` (0.5, as in the
original, for both); lower it to let the limit grow further above the
in-flight it has seen.

Both are sans-I/O: ``update(rtt_s, in_flight, dropped)`` takes one sample
(``in_flight`` is the count when the request was admitted) and returns the
new integer limit. :class:`AdaptiveConcurrencyLimiter` puts one to work in
front of requests: priority ceilings as in ``_priority``, refusals coded
``SHED_102``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._permit import ReleasedOnExit
from sloguard.resilience._priority import (
    DEFAULT_SHARES,
    Priority,
    PriorityShares,
    ShedDecision,
    ShedReason,
)
from sloguard.resilience._types import Outcome

__all__ = [
    "AIMDLimit",
    "AdaptiveConcurrencyLimiter",
    "AdaptivePermit",
    "AdaptiveSnapshot",
    "Gradient2Limit",
    "LimitAlgorithm",
]


class LimitAlgorithm(Protocol):
    """Turns request samples into a concurrency limit."""

    @property
    def limit(self) -> int: ...

    def update(self, rtt_s: float, in_flight: int, dropped: bool) -> int: ...


def _check_bounds(name: str, initial: int, minimum: int, maximum: int) -> None:
    if minimum < 1:
        raise ValueError(f"{name} 'min_limit': must be at least 1")
    if not minimum <= initial <= maximum:
        raise ValueError(f"{name} 'initial_limit': need min_limit <= initial_limit <= max_limit")


def _check_app_limited(name: str, ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{name} 'app_limited_ratio': must be in [0, 1]")


class Gradient2Limit:
    """Netflix's Gradient2 (see module doc). Not thread-safe: the limiter holds a lock."""

    __slots__ = (
        "_app_limited",
        "_estimate",
        "_long_alpha",
        "_long_rtt",
        "_long_samples",
        "_max",
        "_min",
        "_queue_size",
        "_smoothing",
        "_tolerance",
        "_warmup",
    )

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 4,
        max_limit: int = 1000,
        smoothing: float = 0.2,
        tolerance: float = 1.5,
        long_window: int = 600,
        warmup: int = 10,
        queue_size: float | Callable[[float], float] = 4.0,
        app_limited_ratio: float = 0.5,
    ) -> None:
        _check_bounds("gradient2 limit", initial_limit, min_limit, max_limit)
        _check_app_limited("gradient2 limit", app_limited_ratio)
        if not 0.0 < smoothing <= 1.0:
            raise ValueError("gradient2 limit 'smoothing': must be in (0, 1]")
        if not (math.isfinite(tolerance) and tolerance >= 1.0):
            raise ValueError("gradient2 limit 'tolerance': must be at least 1")
        if long_window < 1 or warmup < 1:
            raise ValueError("gradient2 limit 'long_window' and 'warmup': must be at least 1")
        self._estimate = float(initial_limit)
        self._min = float(min_limit)
        self._max = float(max_limit)
        self._smoothing = smoothing
        self._tolerance = tolerance
        self._long_alpha = 2.0 / (long_window + 1)
        self._warmup = warmup
        self._queue_size = queue_size
        self._app_limited = app_limited_ratio
        self._long_rtt = 0.0
        self._long_samples = 0

    @property
    def limit(self) -> int:
        return int(self._estimate)

    @property
    def estimate(self) -> float:
        return self._estimate

    @property
    def long_rtt_s(self) -> float:
        return self._long_rtt

    def update(self, rtt_s: float, in_flight: int, dropped: bool) -> int:
        estimate = self._estimate
        if dropped:
            # a drop's RTT (a timeout, a fast 503) says nothing about "normal"
            gradient = 0.5
        elif rtt_s <= 0.0:
            return int(estimate)
        else:
            long_rtt = self._observe_long_rtt(rtt_s)
            if in_flight < estimate * self._app_limited:
                return int(estimate)  # app-limited: the sample says nothing about the limit
            gradient = max(0.5, min(1.0, self._tolerance * long_rtt / rtt_s))
        queue = self._queue_size
        queue_size = queue(estimate) if callable(queue) else queue
        target = estimate * gradient + queue_size
        estimate = estimate + self._smoothing * (target - estimate)
        self._estimate = estimate = max(self._min, min(self._max, estimate))
        return int(estimate)

    def _observe_long_rtt(self, rtt_s: float) -> float:
        # a plain mean while warming up, an EWMA after
        n = self._long_samples
        if n < self._warmup:
            self._long_samples = n + 1
            long_rtt = (self._long_rtt * n + rtt_s) / (n + 1)
        else:
            long_rtt = self._long_rtt + self._long_alpha * (rtt_s - self._long_rtt)
        if long_rtt > 2.0 * rtt_s:
            # recovering from overload: let "normal" come back down faster
            long_rtt *= 0.95
        self._long_rtt = long_rtt
        return long_rtt


class AIMDLimit:
    """Additive increase, multiplicative decrease (see module doc)."""

    __slots__ = ("_app_limited", "_backoff", "_estimate", "_max", "_min", "_timeout_s")

    def __init__(
        self,
        *,
        initial_limit: int = 20,
        min_limit: int = 4,
        max_limit: int = 1000,
        backoff_ratio: float = 0.9,
        timeout_s: float = 5.0,
        app_limited_ratio: float = 0.5,
    ) -> None:
        _check_bounds("aimd limit", initial_limit, min_limit, max_limit)
        _check_app_limited("aimd limit", app_limited_ratio)
        if not 0.5 <= backoff_ratio < 1.0:
            raise ValueError("aimd limit 'backoff_ratio': must be in [0.5, 1)")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError("aimd limit 'timeout_s': must be a positive number of seconds")
        self._estimate = float(initial_limit)
        self._min = float(min_limit)
        self._max = float(max_limit)
        self._backoff = backoff_ratio
        self._timeout_s = timeout_s
        self._app_limited = app_limited_ratio

    @property
    def limit(self) -> int:
        return int(self._estimate)

    def update(self, rtt_s: float, in_flight: int, dropped: bool) -> int:
        estimate = self._estimate
        if dropped or rtt_s > self._timeout_s:
            estimate = max(self._min, estimate * self._backoff)
        elif in_flight >= estimate * self._app_limited:
            estimate = min(self._max, estimate + 1.0)
        self._estimate = estimate
        return int(estimate)


@dataclass(frozen=True, slots=True)
class AdaptiveSnapshot:
    limit: int
    in_flight: int
    #: in-flight ceiling per priority class, indexed by ``int(priority)``
    ceilings: tuple[int, ...]


class AdaptiveConcurrencyLimiter:
    """An algorithm's limit applied to requests in flight, priority-aware.

    ``acquire`` returns an :class:`AdaptivePermit`; releasing it with the
    request's outcome feeds the algorithm one sample (``Outcome.FAILURE``
    counts as a drop: pass it for overload-like failures only, such as a
    timeout or a 503 from upstream; ``Outcome.IGNORED`` frees the slot
    without a sample).
    """

    __slots__ = (
        "_algorithm",
        "_ceilings",
        "_clock",
        "_in_flight",
        "_limit",
        "_lock",
        "_retry_after_s",
        "_shares",
    )

    def __init__(
        self,
        algorithm: LimitAlgorithm | None = None,
        *,
        shares: PriorityShares = DEFAULT_SHARES,
        retry_after_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not (math.isfinite(retry_after_s) and retry_after_s > 0):
            raise ValueError("adaptive limit 'retry_after_s': must be a positive number")
        self._algorithm: LimitAlgorithm = algorithm if algorithm is not None else Gradient2Limit()
        self._shares = shares
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._limit = self._algorithm.limit
        self._ceilings = shares.ceilings(self._limit)
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def algorithm(self) -> LimitAlgorithm:
        return self._algorithm

    def acquire(self, priority: Priority = Priority.NORMAL) -> AdaptivePermit | ShedDecision:
        with self._lock:
            refused = self._admit(priority)
            in_flight = self._in_flight
        if refused is not None:
            return refused
        return AdaptivePermit(self, in_flight, self._clock.monotonic())

    def snapshot(self) -> AdaptiveSnapshot:
        with self._lock:
            return AdaptiveSnapshot(self._limit, self._in_flight, self._ceilings)

    # -- the unlocked core; the caller holds ``_lock`` -------------------------

    def _share_lock(self, lock: threading.Lock) -> None:
        """Guard this limiter with ``lock`` (a LoadShedder's), so one lock covers the chain."""
        self._lock = lock

    def _admit(self, priority: int) -> ShedDecision | None:
        if self._in_flight >= self._ceilings[priority]:
            level = Priority(priority)
            detail = (
                f"the service is at its adaptive concurrency limit ({self._limit}); "
                f"{level.name.lower()} priority requests are admitted below "
                f"{self._ceilings[priority]} in flight"
            )
            return ShedDecision(ShedReason.ADAPTIVE, level, detail, self._retry_after_s)
        self._in_flight += 1
        return None

    def _release(self, in_flight_at_admission: int, rtt_s: float, outcome: Outcome) -> None:
        self._in_flight -= 1
        if outcome is Outcome.IGNORED:
            return
        limit = self._algorithm.update(rtt_s, in_flight_at_admission, outcome is Outcome.FAILURE)
        if limit != self._limit:
            self._limit = limit
            self._ceilings = self._shares.ceilings(limit)


class AdaptivePermit(ReleasedOnExit):
    """One admitted request; release it with the outcome (latency is measured if omitted)."""

    __slots__ = ("_in_flight", "_limiter", "_released", "_started")

    def __init__(self, limiter: AdaptiveConcurrencyLimiter, in_flight: int, started: float) -> None:
        self._limiter = limiter
        self._in_flight = in_flight
        self._started = started
        self._released = False

    def release(self, outcome: Outcome = Outcome.SUCCESS, latency_s: float | None = None) -> None:
        limiter = self._limiter
        if latency_s is None:
            latency_s = limiter._clock.monotonic() - self._started
        with limiter._lock:
            if self._released:
                return
            self._released = True
            limiter._release(self._in_flight, latency_s, outcome)
