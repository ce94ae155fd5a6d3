"""The breaker's memory of recent calls: counters over a sliding time window.

The ratio and count trip strategies ask "of the calls in the last
``window_s`` seconds, how many failed, how many were slow?". Keeping every
call would cost memory and a scan per question; a ring of ``window_s /
bucket_s`` time buckets answers in O(1) with running totals, at the price of
forgetting a bucket's calls all at once when it leaves the window (so the
window really spans between ``window_s - bucket_s`` and ``window_s`` seconds).

Sans-I/O: every method takes ``now`` (monotonic seconds) and never reads a
clock. Recording into the current bucket is one comparison and one integer
add per count (the window totals; the current bucket's own counts are the
totals less the completed buckets', taken when it closes); moving to a
later bucket expires the buckets that fell out, at most one pass over the
ring however long the gap (amortised O(1) per bucket of elapsed time). A
``now`` earlier than the current bucket (a clock read before a concurrent,
later one took the lock) counts into the current bucket. Not thread-safe: its
owner (:class:`~sloguard.resilience._core.BreakerCore` under its driver's
lock) serialises access.
"""

from __future__ import annotations

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """Calls, failures and slow calls over the last ``buckets`` buckets of ``bucket_s``."""

    __slots__ = (
        "_bucket_s",
        "_buckets",
        "_calls_ring",
        "_completed_calls",
        "_completed_failures",
        "_completed_slow",
        "_current",
        "_failures_ring",
        "_roll_at",
        "_slow_ring",
        "calls",
        "expired",
        "failures",
        "slow",
    )

    def __init__(self, bucket_s: float, buckets: int) -> None:
        if not bucket_s > 0:
            raise ValueError(f"bucket_s must be positive, not {bucket_s!r}")
        if buckets < 1:
            raise ValueError(f"buckets must be at least 1, not {buckets!r}")
        self._bucket_s = bucket_s
        self._buckets = buckets
        # Completed buckets: bucket number k lives in slot k % buckets.
        self._calls_ring = [0] * buckets
        self._failures_ring = [0] * buckets
        self._slow_ring = [0] * buckets
        self._current = float("-inf")
        #: when the current bucket ends: earlier times need no roll
        self._roll_at = float("-inf")
        #: totals over the completed buckets still in the window
        self._completed_calls = self._completed_failures = self._completed_slow = 0
        #: totals over the window, the current bucket included
        self.calls = 0
        self.failures = 0
        self.slow = 0
        #: set when buckets leave the window (ratios may have risen); the reader clears it
        self.expired = False

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Count one finished call at time ``now``."""
        if now >= self._roll_at:
            self.roll(now)
        self.calls += 1
        if failed:
            self.failures += 1
        if slow:
            self.slow += 1

    def roll(self, now: float) -> None:
        """Expire the buckets that are out of the window at ``now``."""
        bucket = now // self._bucket_s
        current = self._current
        if bucket <= current:
            return
        # ``now // bucket_s`` is the floor of the exact quotient, and the product rounds to a
        # float next to the exact boundary: no float at or past the boundary is below it.
        self._roll_at = (bucket + 1) * self._bucket_s
        size = self._buckets
        self.expired = True
        if bucket - current >= size:
            self.clear()
            self._current = bucket
            return
        slot = int(current % size)
        self._calls_ring[slot] = self.calls - self._completed_calls
        self._failures_ring[slot] = self.failures - self._completed_failures
        self._slow_ring[slot] = self.slow - self._completed_slow
        # Buckets current-size+1 .. bucket-size leave the window (bucket - current of them).
        expired = current - size + 1
        while expired <= bucket - size:
            slot = int(expired % size)
            self.calls -= self._calls_ring[slot]
            self.failures -= self._failures_ring[slot]
            self.slow -= self._slow_ring[slot]
            self._calls_ring[slot] = self._failures_ring[slot] = self._slow_ring[slot] = 0
            expired += 1
        self._completed_calls, self._completed_failures = self.calls, self.failures
        self._completed_slow = self.slow
        self._current = bucket

    def clear(self) -> None:
        """Forget every call (the breaker closed or was reset)."""
        size = self._buckets
        self._calls_ring = [0] * size
        self._failures_ring = [0] * size
        self._slow_ring = [0] * size
        self._completed_calls = self._completed_failures = self._completed_slow = 0
        self.calls = self.failures = self.slow = 0

    def __repr__(self) -> str:
        return f"SlidingWindow(calls={self.calls}, failures={self.failures}, slow={self.slow})"
