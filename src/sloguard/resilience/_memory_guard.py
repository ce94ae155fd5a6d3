"""Refuse low-priority work before the container runs out of memory.

An OOM kill drops every request in flight and the restart drops the ones
after; refusing some requests early (503 + ``Retry-After``) is cheaper. The
guard compares usage with the limit (see :mod:`._cgroup` for where both come
from) and sheds requests below ``keep_priority`` while usage is high.

The threshold adapts to how fast memory grows. The guard keeps an EWMA of
the growth rate (bytes/s, half-life ``growth_half_life_s``) and lowers the
threshold by the share of the limit that rate would add within
``horizon_s``::

    threshold = max(min_threshold,
                    base - growth_weight x max(0, growth) x horizon_s / limit)

so a slow drift sheds at 85 % while a leak racing upwards sheds earlier,
while there is still room. Shedding starts when ``usage / limit >=
threshold`` and stops only once usage is below ``threshold - hysteresis``
*and* shedding has lasted ``min_shed_s``, so the guard does not flap around
the line. A reading that fails (the cgroup file vanished) fails open: the
guard stops shedding and logs once per failure streak.

:class:`MemoryPressure` is the sans-I/O core (readings and times in, status
out). :class:`MemoryGuard` drives it: it samples the reader at most every
``interval_s`` -- the request that finds the cached reading stale takes the
sample, the others never wait for it -- so the request path costs one
clock read and two comparisons.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from sloguard.resilience._cgroup import MemoryReader, MemoryReading
from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._priority import Priority, ShedDecision, ShedReason

__all__ = ["MemoryGuard", "MemoryPolicy", "MemoryPressure", "MemoryState", "MemoryStatus"]

logger = logging.getLogger("sloguard.resilience.memory")


class MemoryState(enum.Enum):
    NORMAL = "normal"
    SHEDDING = "shedding"


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    threshold: float = 0.85
    min_threshold: float = 0.6
    hysteresis: float = 0.05
    #: how far ahead the growth rate is projected when lowering the threshold
    horizon_s: float = 30.0
    growth_weight: float = 1.0
    growth_half_life_s: float = 5.0
    interval_s: float = 0.5
    min_shed_s: float = 5.0
    #: requests of this priority and above are never shed by the memory guard
    keep_priority: Priority = Priority.HIGH
    retry_after_s: float = 5.0
    #: a cap on top of the source's limit (the only limit for process RSS)
    limit_bytes: int | None = None

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> ValueError:
            return ValueError(f"memory guard field {field!r}: {why}")

        for field in ("threshold", "min_threshold"):
            if not 0.0 < getattr(self, field) <= 1.0:
                raise bad(field, "must be in (0, 1]")
        if self.min_threshold > self.threshold:
            raise bad("min_threshold", "must not exceed threshold")
        if not 0.0 <= self.hysteresis < self.threshold:
            raise bad("hysteresis", "must be in [0, threshold)")
        for field in ("horizon_s", "growth_half_life_s", "interval_s", "retry_after_s"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise bad(field, "must be a positive number of seconds")
        if not (math.isfinite(self.min_shed_s) and self.min_shed_s >= 0):
            raise bad("min_shed_s", "must be zero or a positive number of seconds")
        if not (math.isfinite(self.growth_weight) and self.growth_weight >= 0):
            raise bad("growth_weight", "must be zero or positive")
        if self.limit_bytes is not None and self.limit_bytes < 1:
            raise bad("limit_bytes", "must be at least 1")


@dataclass(frozen=True, slots=True)
class MemoryStatus:
    state: MemoryState
    usage_bytes: int
    #: the limit in force: the source's, capped by ``MemoryPolicy.limit_bytes``
    limit_bytes: int | None
    ratio: float
    threshold: float
    growth_bytes_per_s: float
    #: monotonic time of the reading, and of the last change of ``state``
    at: float
    since: float
    error: str | None = None


class MemoryPressure:
    """The guard's decision logic: feed readings with their times (no I/O, no clock)."""

    __slots__ = ("_last", "_policy", "_status")

    def __init__(self, policy: MemoryPolicy) -> None:
        self._policy = policy
        self._last: tuple[float, int] | None = None
        self._status = MemoryStatus(MemoryState.NORMAL, 0, None, 0.0, policy.threshold, 0.0, 0, 0)

    @property
    def status(self) -> MemoryStatus:
        return self._status

    def observe(self, now: float, reading: MemoryReading) -> MemoryStatus:
        policy, previous = self._policy, self._status
        growth = previous.growth_bytes_per_s
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            rate = (reading.usage_bytes - self._last[1]) / dt
            alpha = 1.0 - math.exp(-dt * math.log(2) / policy.growth_half_life_s)
            growth += alpha * (rate - growth)
        self._last = (now, reading.usage_bytes)
        limits = [x for x in (reading.limit_bytes, policy.limit_bytes) if x is not None]
        limit = min(limits) if limits else None
        threshold, ratio = policy.threshold, 0.0
        if limit is not None:
            ratio = reading.usage_bytes / limit
            lowered = policy.growth_weight * max(0.0, growth) * policy.horizon_s / limit
            threshold = max(policy.min_threshold, policy.threshold - lowered)
        state, since = previous.state, previous.since
        if state is MemoryState.NORMAL and limit is not None and ratio >= threshold:
            state, since = MemoryState.SHEDDING, now
        elif (
            state is MemoryState.SHEDDING
            and ratio < threshold - policy.hysteresis
            and now - since >= policy.min_shed_s
        ):
            state, since = MemoryState.NORMAL, now
        self._status = MemoryStatus(
            state, reading.usage_bytes, limit, ratio, threshold, growth, now, since
        )
        return self._status

    def fail(self, now: float, error: str) -> MemoryStatus:
        """A reading could not be taken: fail open (stop shedding), forget the rate."""
        previous = self._status
        since = now if previous.state is MemoryState.SHEDDING else previous.since
        self._last = None
        self._status = replace(
            previous, state=MemoryState.NORMAL, growth_bytes_per_s=0.0, at=now, since=since,
            error=error,
        )  # fmt: skip
        return self._status


Listener = Callable[[MemoryStatus, MemoryStatus], None]


class MemoryGuard:
    """Samples a :class:`MemoryReader` on an interval; ``check`` is the request path."""

    __slots__ = (
        "_core",
        "_decisions",
        "_keep",
        "_listeners",
        "_next_at",
        "_now",
        "_policy",
        "_reader",
        "_sampling",
        "_shedding",
    )

    def __init__(
        self,
        reader: MemoryReader,
        policy: MemoryPolicy | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._reader = reader
        self._policy = policy = policy if policy is not None else MemoryPolicy()
        self._core = MemoryPressure(policy)
        self._now = clock.monotonic
        self._keep = int(policy.keep_priority)
        self._next_at = -math.inf
        self._shedding = False
        self._sampling = threading.Lock()
        self._listeners: list[Listener] = []
        self._decisions = tuple(
            ShedDecision(
                ShedReason.MEMORY,
                p,
                f"the service is under memory pressure; {p.name.lower()} priority requests "
                "are refused until it recovers",
                policy.retry_after_s,
            )
            for p in Priority
        )

    @property
    def reader(self) -> MemoryReader:
        return self._reader

    @property
    def policy(self) -> MemoryPolicy:
        return self._policy

    @property
    def status(self) -> MemoryStatus:
        return self._core.status

    @property
    def shedding(self) -> bool:
        return self._shedding

    def add_listener(self, listener: Listener) -> None:
        """Called with (old, new) status on every change of state; must not raise."""
        self._listeners.append(listener)

    def check(self, priority: int) -> ShedDecision | None:
        """None to admit, or the refusal; samples the reader when the reading is stale."""
        if self._now() >= self._next_at:
            self._sample()
        if self._shedding and priority < self._keep:
            return self._decisions[priority]
        return None

    def refresh(self) -> MemoryStatus:
        """Take a reading now, whatever the interval says."""
        self._next_at = -math.inf
        self._sample()
        return self._core.status

    def _sample(self) -> None:
        if not self._sampling.acquire(blocking=False):
            return  # another thread is sampling; use the reading we have
        try:
            now = self._now()
            if now < self._next_at:
                return
            self._next_at = now + self._policy.interval_s
            old = self._core.status
            try:
                reading = self._reader.read()
            except (OSError, ValueError) as exc:
                if old.error is None:
                    logger.warning(
                        "memory guard: cannot read %s (%s); not shedding until it can",
                        self._reader.describe(),
                        exc,
                    )
                new = self._core.fail(now, f"{type(exc).__name__}: {exc}")
            else:
                new = self._core.observe(now, reading)
            self._shedding = new.state is MemoryState.SHEDDING
            if new.state is not old.state:
                self._announce(old, new)
        finally:
            self._sampling.release()

    def _announce(self, old: MemoryStatus, new: MemoryStatus) -> None:
        if new.state is MemoryState.SHEDDING:
            logger.warning(
                "memory guard: shedding requests below %s priority: usage %.1f%% of %s bytes, "
                "threshold %.1f%% (growth %.0f B/s)",
                self._policy.keep_priority.name.lower(),
                new.ratio * 100,
                new.limit_bytes,
                new.threshold * 100,
                new.growth_bytes_per_s,
            )
        else:
            logger.info("memory guard: stopped shedding: usage %.1f%%", new.ratio * 100)
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                logger.exception("memory guard: a transition listener raised")
