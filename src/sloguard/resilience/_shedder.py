"""The load-shedding admission chain: memory guard, then static limit, then adaptive limit.

One call per request, ``LoadShedder.admit(route, priority)``, runs the
stages cheapest-refusal first and returns either a :class:`ShedToken` (the
request goes ahead; release the token when it ends, with its outcome) or
the first stage's :class:`ShedDecision` (answer 503 with its code and
``Retry-After``). A stage that refuses undoes nothing: stages that already
admitted the request give their place back before the refusal returns.

Cost: the memory guard is read without a lock (a cached reading, refreshed
every ``interval_s``); both concurrency stages and the counters share the
shedder's one lock, taken once to admit and once to release. The counters
are plain ints behind that lock, read by :meth:`LoadShedder.stats` or
exported by :class:`ShedCollector` at scrape time, so metrics add nothing to
the request path. (``benchmarks/shedding.py`` measures the chain.)

A stage given to a shedder is guarded by the shedder's lock from then on;
it should not also serve another shedder.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sloguard.resilience._adaptive import AdaptiveConcurrencyLimiter
from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._concurrency import ConcurrencyLimiter
from sloguard.resilience._memory_guard import MemoryGuard, MemoryState, MemoryStatus
from sloguard.resilience._permit import ReleasedOnExit
from sloguard.resilience._priority import Priority, ShedDecision, ShedReason
from sloguard.resilience._types import Outcome

__all__ = ["LoadShedder", "ShedCollector", "ShedStats", "ShedToken"]

_REASONS = tuple(ShedReason)
_REASON_INDEX = {reason: index for index, reason in enumerate(_REASONS)}
_CLASSES = len(Priority)
#: offsets of each reason's row in the flat shed counters
_STATIC_ROW = _CLASSES * _REASON_INDEX[ShedReason.CONCURRENCY]
_ADAPTIVE_ROW = _CLASSES * _REASON_INDEX[ShedReason.ADAPTIVE]
_MEMORY_ROW = _CLASSES * _REASON_INDEX[ShedReason.MEMORY]


@dataclass(frozen=True, slots=True)
class ShedStats:
    """Counters since start, and the current levels, for metrics and ``explain``."""

    admitted: Mapping[Priority, int]
    shed: Mapping[tuple[ShedReason, Priority], int]
    in_flight: int
    concurrency_limit: int | None
    adaptive_limit: int | None
    memory: MemoryStatus | None


class LoadShedder:
    """Admission for one app; any stage may be left out."""

    __slots__ = (
        "_adaptive",
        "_admitted",
        "_concurrency",
        "_in_flight",
        "_lock",
        "_memory",
        "_now",
        "_shed",
    )

    def __init__(
        self,
        *,
        memory: MemoryGuard | None = None,
        concurrency: ConcurrencyLimiter | None = None,
        adaptive: AdaptiveConcurrencyLimiter | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._lock = threading.Lock()
        self._memory = memory
        self._concurrency = concurrency
        self._adaptive = adaptive
        for stage in (concurrency, adaptive):
            if stage is not None:
                stage._share_lock(self._lock)
        self._now = clock.monotonic
        self._admitted = [0] * _CLASSES
        self._shed = [0] * (_CLASSES * len(_REASONS))
        self._in_flight = 0

    @property
    def memory(self) -> MemoryGuard | None:
        return self._memory

    @property
    def concurrency(self) -> ConcurrencyLimiter | None:
        return self._concurrency

    @property
    def adaptive(self) -> AdaptiveConcurrencyLimiter | None:
        return self._adaptive

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(
        self, route: str | None = None, priority: Priority = Priority.NORMAL
    ) -> ShedToken | ShedDecision:
        """A token to release when the request ends, or the refusal to send."""
        memory = self._memory
        if memory is not None:
            refused = memory.check(priority)
            if refused is not None:
                with self._lock:
                    self._shed[_MEMORY_ROW + priority] += 1
                return refused
        static, adaptive = self._concurrency, self._adaptive
        in_flight = 0
        lock = self._lock
        lock.acquire()  # not ``with``: this is the hot path, and ``with`` costs ~50 ns more
        try:
            if static is not None:
                refused = static._admit(priority, route)
                if refused is not None:
                    self._shed[_STATIC_ROW + priority] += 1
                    return refused
            if adaptive is not None:
                refused = adaptive._admit(priority)
                if refused is not None:
                    if static is not None:
                        static._release(route)
                    self._shed[_ADAPTIVE_ROW + priority] += 1
                    return refused
                in_flight = adaptive._in_flight
            self._admitted[priority] += 1
            self._in_flight += 1
        finally:
            lock.release()
        started = self._now() if adaptive is not None else 0.0
        return ShedToken(self, priority, route, in_flight, started)

    def stats(self) -> ShedStats:
        with self._lock:
            admitted = {p: self._admitted[p] for p in Priority}
            shed = {
                (reason, p): self._shed[_CLASSES * index + p]
                for index, reason in enumerate(_REASONS)
                for p in Priority
            }
            in_flight = self._in_flight
            adaptive_limit = None if self._adaptive is None else self._adaptive._limit
        return ShedStats(
            admitted,
            shed,
            in_flight,
            None if self._concurrency is None else self._concurrency.limit,
            adaptive_limit,
            None if self._memory is None else self._memory.status,
        )


class ShedToken(ReleasedOnExit):
    """An admitted request. Release it exactly once (further calls do nothing),
    or use it as a context manager: leaving on an exception releases it as
    ``Outcome.IGNORED`` (no latency sample)."""

    __slots__ = ("_in_flight", "_released", "_route", "_shedder", "_started", "priority")

    def __init__(
        self,
        shedder: LoadShedder,
        priority: Priority,
        route: str | None,
        in_flight: int,
        started: float,
    ) -> None:
        self._shedder = shedder
        self.priority = priority
        self._route = route
        self._in_flight = in_flight
        self._started = started
        self._released = False

    @property
    def route(self) -> str | None:
        return self._route

    def release(self, outcome: Outcome = Outcome.SUCCESS, latency_s: float | None = None) -> None:
        """``outcome``: SUCCESS, FAILURE for an overload-like failure (timeout,
        upstream 503: the adaptive limit backs off), IGNORED for neither.
        ``latency_s`` defaults to the time since admission."""
        shedder = self._shedder
        adaptive = shedder._adaptive
        if latency_s is None:
            latency_s = shedder._now() - self._started if adaptive is not None else 0.0
        lock = shedder._lock
        lock.acquire()
        try:
            if self._released:
                return
            self._released = True
            shedder._in_flight -= 1
            if shedder._concurrency is not None:
                shedder._concurrency._release(self._route)
            if adaptive is not None:
                adaptive._release(self._in_flight, latency_s, outcome)
        finally:
            lock.release()


class ShedCollector(Collector):
    """Prometheus families read from a shedder at scrape time.

    ``registry.register(ShedCollector(shedder))``. Per process: under
    prometheus_client's multiprocess mode each worker's counts stay its own.
    """

    def __init__(self, shedder: LoadShedder, prefix: str = "sloguard") -> None:
        self._shedder = shedder
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        stats, prefix = self._shedder.stats(), self._prefix
        admitted = CounterMetricFamily(
            f"{prefix}_shed_admitted", "Requests the load shedder admitted.", labels=["priority"]
        )
        for priority, count in stats.admitted.items():
            admitted.add_metric([priority.name.lower()], count)
        shed = CounterMetricFamily(
            f"{prefix}_shed_rejected",
            "Requests the load shedder refused, by error code and priority.",
            labels=["code", "priority"],
        )
        for (reason, priority), count in stats.shed.items():
            shed.add_metric([reason.code, priority.name.lower()], count)
        yield admitted
        yield shed
        yield GaugeMetricFamily(
            f"{prefix}_shed_in_flight", "Requests admitted and not yet released.", stats.in_flight
        )
        if stats.adaptive_limit is not None:
            yield GaugeMetricFamily(
                f"{prefix}_shed_adaptive_limit",
                "The adaptive concurrency limit.",
                stats.adaptive_limit,
            )
        if stats.memory is not None:
            yield GaugeMetricFamily(
                f"{prefix}_shed_memory_usage_ratio",
                "Memory usage over the limit, as last sampled.",
                stats.memory.ratio,
            )
            yield GaugeMetricFamily(
                f"{prefix}_shed_memory_threshold_ratio",
                "The adaptive memory threshold in force.",
                stats.memory.threshold,
            )
            yield GaugeMetricFamily(
                f"{prefix}_shed_memory_shedding",
                "1 while the memory guard sheds.",
                1.0 if stats.memory.state is MemoryState.SHEDDING else 0.0,
            )
