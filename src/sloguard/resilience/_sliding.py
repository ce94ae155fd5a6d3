"""The sliding window counter: two fixed windows, the older one weighted by overlap.

A fixed window lets a client spend its whole limit at the end of one window
and again at the start of the next (twice the limit in a moment). A true
sliding log fixes that but stores every request. The counter keeps two
numbers per key, the count of the current fixed window and of the previous
one, and estimates the requests in the last ``period_s`` as
``previous x (share of the previous window still inside the sliding window)
+ current``, which assumes the previous window's requests were spread evenly.
Cloudflare measured the estimate within 0.003 % of the exact count on real
traffic; the ``limits`` library offers the same algorithm.

Windows are aligned to multiples of ``period_s`` on whatever clock the store
uses (Redis ``TIME`` in the Redis store), so every instance agrees on them.

Sans-I/O: :meth:`SlidingWindow.decide` takes the stored state and the time
and returns the new state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["EMPTY_STATE", "SlidingDecision", "SlidingState", "SlidingWindow"]

_EMPTY_INDEX = -1


class SlidingState(NamedTuple):
    #: which fixed window ``current`` counts: floor(time / period_s)
    window: int
    previous: int
    current: int


EMPTY_STATE = SlidingState(_EMPTY_INDEX, 0, 0)


class SlidingDecision(NamedTuple):
    allowed: bool
    state: SlidingState
    remaining: int
    #: seconds until every counted unit has left the sliding window
    reset_after_s: float
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """At most ``limit`` units in any ``period_s`` seconds (estimated)."""

    limit: int
    period_s: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("sliding window field 'limit': must be at least 1")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(
                "sliding window field 'period_s': must be a positive number of seconds"
            )

    def roll(self, state: SlidingState, now: float) -> SlidingState:
        """The state seen from ``now``: older windows shifted out."""
        window = int(now // self.period_s)
        if window == state.window:
            return state
        if window == state.window + 1:
            return SlidingState(window, state.current, 0)
        return SlidingState(window, 0, 0)

    def decide(self, state: SlidingState, now: float, cost: int = 1) -> SlidingDecision:
        """Admit ``cost`` units at ``now`` given the stored ``state`` (``EMPTY_STATE`` if new)."""
        period = self.period_s
        limit = self.limit
        rolled = self.roll(state, now)
        window_end = (rolled.window + 1) * period
        elapsed = now - rolled.window * period
        weight = 1.0 - elapsed / period
        used = rolled.previous * weight + rolled.current
        if used + cost <= limit + 1e-6:
            current = rolled.current + cost
            new_state = SlidingState(rolled.window, rolled.previous, current)
            remaining = int(limit - used - cost + 1e-6)
            return SlidingDecision(True, new_state, remaining, window_end + period - now, 0.0)
        remaining = max(0, int(limit - used + 1e-6))
        retry = self._retry_after(rolled, elapsed, cost)
        return SlidingDecision(False, rolled, remaining, retry, retry)

    def _retry_after(self, rolled: SlidingState, elapsed: float, cost: int) -> float:
        """Seconds until ``cost`` more units fit, if nothing else arrives."""
        period = self.period_s
        room = self.limit - cost
        if room < 0:
            return period
        if rolled.current <= room and rolled.previous > 0:
            # the previous window's weight must fall to (room - current) / previous
            needed = period * (1.0 - (room - rolled.current) / rolled.previous)
            return max(0.0, needed - elapsed)
        # wait for the next window, where today's count becomes the weighted one
        to_next = period - elapsed
        if rolled.current <= room:
            return to_next
        needed = period * (1.0 - room / rolled.current)
        return to_next + needed
