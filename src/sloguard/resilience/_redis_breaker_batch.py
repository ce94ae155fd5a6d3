"""The closed-state outcomes a Redis-shared breaker has counted and not yet pushed.

A :class:`~sloguard.resilience._redis_breaker.RedisBreakerBackend` never
sends a closed-state outcome on its own: it adds it to a :class:`Batch`, and
its Redis agent pushes the batch every ``sync_interval_s`` (sooner once it
holds a failure: :meth:`OutcomeBatcher.count` says when to hurry the agent).
A batch carries what the shared window needs (calls, failures, slow calls)
and what the shared consecutive-failure count needs (whether a success came,
and the failures after the last one).

With no window strategy a closed-state success is not counted here at all:
it is a lock-free tick of the core's
:attr:`~sloguard.resilience._core.BreakerCore.closed_success`.
:meth:`OutcomeBatcher.fold` reads the ticks as a count before a failure is
added and when the batch is taken, so the counts stay exact and so does their
order: ticks read before a failure ended the streak before it; ticks read at
the push came after the last failure.

Sans-I/O bookkeeping: every method runs under the backend's lock.
"""

from __future__ import annotations

import dataclasses

from sloguard.resilience._core import BreakerCore

__all__ = ["Batch", "OutcomeBatcher"]


@dataclasses.dataclass(slots=True)
class Batch:
    """Closed-state outcomes not yet pushed, with what the consecutive count needs."""

    episode: int
    calls: int = 0
    failures: int = 0
    slow: int = 0
    had_success: bool = False
    trailing: int = 0

    def merge_older(self, older: Batch) -> None:
        self.calls += older.calls
        self.failures += older.failures
        self.slow += older.slow
        if not self.had_success:
            self.trailing += older.trailing
        self.had_success = self.had_success or older.had_success

    def sync_fields(self) -> tuple[int, int, int, int, int]:
        """The batch as the sync script's arguments."""
        return (self.calls, self.failures, self.slow, int(self.had_success), self.trailing)


class OutcomeBatcher:
    """The batch being filled for one breaker, and the lock-free success ticks folded into it."""

    __slots__ = ("_core", "_hurried", "_slow_call_s", "_success", "_ticks_read", "batch")

    def __init__(self, core: BreakerCore) -> None:
        self._core = core
        self._slow_call_s = core.policy.slow_call_s
        #: the core's lock-free success counter (None with a window strategy) and how many
        #: of its ticks are already in a batch
        self._success = core.closed_success
        self._ticks_read = 0
        self._hurried = False
        self.batch = Batch(0)

    def count(self, failed: bool, duration_s: float) -> bool:
        """Add one closed-state outcome; True the first time a batch gets a failure
        (hurry the agent)."""
        batch = self.batch
        batch.calls += 1
        if duration_s >= self._slow_call_s:
            batch.slow += 1
        if not failed:
            batch.had_success = True
            batch.trailing = 0
            return False
        batch.failures += 1
        batch.trailing += 1
        if self._hurried:
            return False
        self._hurried = True
        return True

    def fold(self, *, keep: bool = True) -> None:
        """Move the lock-free successes ticked since the last fold into the batch; with
        ``keep`` false they are only marked read (their episode's batch is dropped).

        ``core.closed_successes()`` tells the tick count and also ends the core's own failure
        streak when there are new ticks (degraded mode counts on it); paid per failure and per
        look of the agent, never per success.
        """
        if self._success is None:
            return
        ticks = self._core.closed_successes()
        new = ticks - self._ticks_read
        if not new:
            return
        self._ticks_read = ticks
        if keep:
            batch = self.batch
            batch.calls += new
            batch.had_success = True
            batch.trailing = 0

    def has_outcomes(self) -> bool:
        self.fold()
        return self.batch.calls > 0

    def take(self) -> Batch:
        """The batch to push, with the ticks so far; a new one for the core's episode starts."""
        self.fold()
        batch, self.batch = self.batch, Batch(self._core.episode)
        self._hurried = False
        return batch

    def restart(self) -> None:
        """Start an empty batch for the core's (new) episode; the old one is dropped."""
        self.batch = Batch(self._core.episode)

    def give_back(self, batch: Batch) -> None:
        """A push failed: its outcomes join the current batch if the episode is the same."""
        if batch.episode == self.batch.episode:
            self.batch.merge_older(batch)
