"""The circuit breaker's state machine, sans-I/O.

:class:`BreakerCore` decides; its drivers (:class:`~sloguard.resilience._local.LocalBreaker`
in memory, the Redis-shared backend) hold the lock, read the clock and run
the listeners. Every method takes ``now`` (monotonic seconds) and returns the
decision and the :class:`~sloguard.resilience._types.Transition` it caused,
if any. Transitions come out with ``at=0.0``: the core has no wall clock, so
the driver stamps them (``dataclasses.replace(t, at=clock.wall())``) before
emitting them.

Semantics
---------

CLOSED
    Every call is allowed (:attr:`BreakerCore.closed_admission` is the one
    shared answer, so a driver can admit without a lock). Each SUCCESS or
    FAILURE goes into the sliding window; IGNORED outcomes (cancelled calls,
    exceptions the classifier does not count) change nothing. A call is slow
    when ``duration_s >= policy.slow_call_s``, whatever its outcome. A
    success resets the consecutive-failure counter. After each record the
    breaker trips to OPEN when an enabled strategy is met, checked in this
    order (the transition's reason names the first met):

    * ``consecutive_failures``: that many failures in a row;
    * ``failure_count``: that many failures in the window. It does *not* wait
      for ``min_calls``: an absolute count is already its own minimum, and
      "5 failures a minute" must trip on a quiet service too;
    * ``failure_ratio``: failures / calls >= ratio, once the window holds
      ``min_calls`` calls;
    * ``slow_call_ratio``: slow / calls >= ratio, once the window holds
      ``min_calls`` calls.

OPEN
    Calls are rejected with ``retry_after_s`` = time left in the open period.
    The open period is ``min(open_s * backoff**level, max_open_s)``, then
    scaled by a factor drawn uniformly from ``[1 - jitter, 1 + jitter]`` (the
    random source is injected). ``level`` counts re-openings since the last
    close: 0 for a trip from CLOSED, +1 for each failed half-open episode.
    ``force_open`` holds the breaker open until ``reset`` (``opened_until`` is
    infinite; rejected callers are told to retry after ``max_open_s``).

HALF_OPEN
    The first admit after the open period moves the breaker to HALF_OPEN
    (reason ``open_elapsed``) and is the first probe. Exactly
    ``half_open_probes`` (N) probes are admitted per episode; every other
    caller is rejected with ``retry_after_s = policy.bucket_s`` (a probe
    result is expected soon; the caller should not wait a whole open period).
    ``half_open_successes`` (M) probe successes close the breaker (reason
    ``probes_succeeded``; window, counters and level reset). A probe failure
    -- or a slow probe when ``slow_call_ratio`` is enabled -- reopens at once
    (reason ``probe_failed``, level + 1). A probe whose outcome is IGNORED
    gives its slot back. A probe that never reports keeps its slot: the
    drivers always report (``finally``), so only a caller that admits by hand
    and forgets can wedge an episode.

Episodes
    ``episode`` increments on every transition to OPEN. An outcome is dropped
    (not counted, no transition) when its admission belongs to an older
    episode (a call admitted before the breaker tripped, a slow probe ending
    after another probe reopened it), when it is a probe's but the breaker is
    no longer HALF_OPEN (the episode closed), or a non-probe's while the
    breaker is not CLOSED. Rejected admissions are never recorded.

Window
    The sliding window (:mod:`~sloguard.resilience._window`) is kept only
    when a window strategy (``failure_count``, ``failure_ratio``,
    ``slow_call_ratio``) is enabled; with ``consecutive_failures`` alone the
    snapshot's window counts stay 0 and :meth:`BreakerCore.record` reads
    ``now`` only for a FAILURE, so a driver may pass 0.0 for a SUCCESS or
    IGNORED outcome when :attr:`BreakerCore.windowed` is false (the in-memory
    driver then reads no clock at all on success).

Lock-free successes
    Without a window strategy, a success admitted by the current
    ``closed_admission`` changes only two things: the success total, and the
    end of any failure streak. :attr:`BreakerCore.closed_success` records one
    with a single ``next()`` on an :func:`itertools.count` -- atomic in
    CPython, with or without the GIL (3.13's free-threaded build makes it an
    atomic compare-and-swap) -- so a driver calls it without its lock, from
    any thread. The core folds those ticks in under the driver's lock when it
    counts a failure or takes a snapshot: any tick since the last failure
    ended the streak. Each tick and each folding read is one atomic step, so
    the outcome is exactly what some serial order of the calls would give
    (a success whose tick lands before a failure's read reset the streak
    first; one after it, after), and no success is ever lost. The one
    approximation: a driver checks that the admission is still the current
    ``closed_admission`` just before ticking; if, between that check and the
    tick, another thread trips the breaker *and* it recovers to CLOSED, the
    success (of the old episode, dropped by ``record``) ends a streak of the
    new one. It is still counted in the totals, as every call is.

Totals
    Cumulative per-outcome and rejection totals (for metrics) count every
    call, dropped or not; they survive resets. ``successes_total`` is the
    attribute (successes recorded through ``record``) plus the lock-free
    ticks; read it from :meth:`BreakerCore.snapshot`.

Remote state
    :meth:`BreakerCore.apply_remote` lets a shared backend impose a state seen
    elsewhere without counting anything.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from sloguard.resilience._types import (
    Admission,
    BreakerPolicy,
    BreakerState,
    Outcome,
    Transition,
)
from sloguard.resilience._window import SlidingWindow

__all__ = ["BreakerCore", "BreakerSnapshot"]

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
SUCCESS = Outcome.SUCCESS
FAILURE = Outcome.FAILURE
IGNORED = Outcome.IGNORED


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state at one moment, for dashboards, metrics and tests."""

    name: str
    state: BreakerState
    episode: int
    level: int
    #: monotonic time the open period ends (0.0 unless OPEN; inf when forced)
    opened_until: float
    calls: int
    failures: int
    slow_calls: int
    consecutive_failures: int
    probes_admitted: int
    probes_succeeded: int
    successes_total: int
    failures_total: int
    ignored_total: int
    rejected_total: int


class BreakerCore:
    """One breaker's state machine; see the module docstring for the rules."""

    __slots__ = (
        "_backoff_cap",
        "_consecutive",
        "_count_limit",
        "_failure_ratio",
        "_forced",
        "_half_open_retry_s",
        "_level",
        "_min_calls",
        "_opened_until",
        "_probes_admitted",
        "_probes_succeeded",
        "_ratio_checks",
        "_rng",
        "_slow_call_s",
        "_slow_probe_fails",
        "_slow_ratio",
        "_streak_limit",
        "_streak_ticks",
        "_tick_reads",
        "_ticks",
        "_window",
        "closed_admission",
        "closed_success",
        "episode",
        "failures_total",
        "ignored_total",
        "name",
        "policy",
        "rejected_total",
        "state",
        "successes_total",
        "windowed",
    )

    def __init__(
        self, name: str, policy: BreakerPolicy, *, rng: random.Random | None = None
    ) -> None:
        self.name = name
        self.policy = policy
        self._rng = rng if rng is not None else random.Random()
        self._window = SlidingWindow(policy.bucket_s, policy.buckets)
        self._streak_limit = policy.consecutive_failures or math.inf
        self._count_limit = policy.failure_count or math.inf
        self._failure_ratio = policy.failure_ratio
        self._slow_ratio = policy.slow_call_ratio
        self._ratio_checks = policy.failure_ratio is not None or policy.slow_call_ratio is not None
        #: whether any strategy reads the window; when none does, the window is not kept
        #: and ``record`` reads ``now`` only for a FAILURE (which may trip the breaker)
        self.windowed = self._ratio_checks or policy.failure_count is not None
        self._min_calls = policy.min_calls
        self._slow_call_s = policy.slow_call_s
        self._slow_probe_fails = policy.slow_call_ratio is not None
        self._half_open_retry_s = policy.bucket_s
        # The level past which open_s * backoff**level is capped anyway (and would overflow).
        self._backoff_cap = (
            math.ceil(math.log(policy.max_open_s / policy.open_s) / math.log(policy.backoff))
            if policy.backoff > 1.0
            else 0
        )
        self.state = CLOSED
        self.episode = 0
        self._level = 0
        self._opened_until = 0.0
        self._forced = False
        self._consecutive = 0
        self._probes_admitted = 0
        self._probes_succeeded = 0
        #: the answer for every call while CLOSED, None otherwise: a lock-free fast path
        self.closed_admission: Admission | None = Admission(True, CLOSED, episode=0)
        self.successes_total = 0
        self.failures_total = 0
        self.ignored_total = 0
        self.rejected_total = 0
        # Lock-free successes: ``next(ticks)`` once per success; the lock holder reads the
        # count with ``next`` too, so the ticks so far are its value less the reads before.
        self._ticks = itertools.count()
        self._tick_reads = 0
        #: the tick count when the current failure streak started (or was last looked at)
        self._streak_ticks = 0
        #: records one SUCCESS admitted by ``closed_admission`` with no lock, from any thread;
        #: None when a window strategy is enabled (every outcome then goes through ``record``)
        self.closed_success: Callable[[], object] | None = (
            None if self.windowed else self._ticks.__next__
        )

    # --- admission --------------------------------------------------------------------------

    def admit(self, now: float) -> tuple[Admission, Transition | None]:
        """May a call go ahead at ``now``? The answer, and the transition it caused."""
        state = self.state
        if state is CLOSED:
            return self.closed_admission or Admission(True, CLOSED, episode=self.episode), None
        if state is OPEN:
            if now < self._opened_until:
                self.rejected_total += 1
                retry = self.policy.max_open_s if self._forced else self._opened_until - now
                return Admission(False, OPEN, retry_after_s=retry, episode=self.episode), None
            transition = self._move(HALF_OPEN, "open_elapsed")
            self._probes_admitted = 1
            self._probes_succeeded = 0
            return Admission(True, HALF_OPEN, probe=True, episode=self.episode), transition
        if self._probes_admitted < self.policy.half_open_probes:
            self._probes_admitted += 1
            return Admission(True, HALF_OPEN, probe=True, episode=self.episode), None
        self.rejected_total += 1
        return (
            Admission(
                False, HALF_OPEN, retry_after_s=self._half_open_retry_s, episode=self.episode
            ),
            None,
        )

    # --- outcomes ---------------------------------------------------------------------------

    def tally(self, outcome: Outcome) -> bool:
        """Count a finished call's ``outcome`` in the totals; False when it was IGNORED
        (it counts for nothing else)."""
        if outcome is SUCCESS:
            self.successes_total += 1
        elif outcome is FAILURE:
            self.failures_total += 1
        else:
            self.ignored_total += 1
            return False
        return True

    def record(
        self, admission: Admission, outcome: Outcome, duration_s: float, now: float
    ) -> Transition | None:
        """Count one finished call; the transition it caused, if any."""
        if admission is self.closed_admission and outcome is SUCCESS:
            # The hot path: a success admitted in this closed episode.
            self.successes_total += 1
            self._consecutive = 0
            if self.windowed:
                window = self._window
                slow = duration_s >= self._slow_call_s
                window.record(now, False, slow)
                # A plain success lowers both ratios, so they need a look only when the
                # window just filled, dropped old buckets, or this call was slow.
                if (
                    self._ratio_checks
                    and window.calls >= self._min_calls
                    and (slow or window.expired or window.calls == self._min_calls)
                ):
                    return self._check_ratios(now)
            return None
        if not admission.allowed:
            return None
        if not self.tally(outcome):
            if (
                admission.probe
                and self.state is HALF_OPEN
                and admission.episode == self.episode
                and self._probes_admitted > 0
            ):
                self._probes_admitted -= 1
            return None
        if admission.episode != self.episode:
            return None
        if admission.probe:
            if self.state is not HALF_OPEN:
                return None
            return self._probe_result(outcome, duration_s, now)
        if self.state is not CLOSED:
            return None
        failed = outcome is FAILURE
        window = self._window
        if self.windowed:
            window.record(now, failed, duration_s >= self._slow_call_s)
        if failed:
            self._settle_streak()
            self._consecutive += 1
            if self._consecutive >= self._streak_limit:
                return self._trip(now, "consecutive_failures", 0)
            if window.failures >= self._count_limit:
                return self._trip(now, "failure_count", 0)
        else:
            self._consecutive = 0
        if self._ratio_checks and window.calls >= self._min_calls:
            return self._check_ratios(now)
        return None

    def _check_ratios(self, now: float) -> Transition | None:
        window = self._window
        window.expired = False
        if (
            self._failure_ratio is not None
            and window.failures / window.calls >= self._failure_ratio
        ):
            return self._trip(now, "failure_ratio", 0)
        if self._slow_ratio is not None and window.slow / window.calls >= self._slow_ratio:
            return self._trip(now, "slow_call_ratio", 0)
        return None

    def _probe_result(self, outcome: Outcome, duration_s: float, now: float) -> Transition | None:
        if outcome is FAILURE or (self._slow_probe_fails and duration_s >= self._slow_call_s):
            return self._trip(now, "probe_failed", self._level + 1)
        self._probes_succeeded += 1
        if self._probes_succeeded >= self.policy.half_open_successes:
            return self._close("probes_succeeded")
        return None

    def closed_successes(self) -> int:
        """The lock-free successes so far (read under the driver's lock); a new
        one since the last look ended the failure streak."""
        return self._settle_streak()

    def _settle_streak(self) -> int:
        """Fold in the lock-free successes (lock held); their count so far.

        Any tick since the streak was last looked at ended it.
        """
        ticks = next(self._ticks) - self._tick_reads
        self._tick_reads += 1
        if ticks != self._streak_ticks:
            self._streak_ticks = ticks
            self._consecutive = 0
        return ticks

    # --- operator actions -------------------------------------------------------------------

    def force_open(self, now: float) -> Transition | None:
        """Hold the breaker open until :meth:`reset`; None if it already was."""
        if self._forced:
            return None
        self.episode += 1
        self._forced = True
        self._opened_until = math.inf
        self._clear_counts()
        return self._move(OPEN, "forced", math.inf)

    def reset(self, now: float) -> Transition | None:
        """Close the breaker and forget every count; None if it was already closed."""
        if self.state is CLOSED:
            self._clear_counts()
            return None
        return self._close("reset")

    def apply_remote(
        self, state: BreakerState, opened_until: float, episode: int, level: int, now: float
    ) -> Transition | None:
        """Impose a state decided elsewhere, counting nothing.

        ``opened_until`` is in this process's monotonic time (the caller
        converts); it matters only for OPEN. Moving to CLOSED or to a new
        episode clears the window and counters; entering HALF_OPEN starts
        with no local probes admitted. Returns the transition (``source``
        "remote", reason "remote") when the state changed, else None.
        """
        old = self.state
        changed_episode = episode != self.episode
        self.episode = episode
        self._level = level
        self._forced = state is OPEN and math.isinf(opened_until)
        self._opened_until = opened_until if state is OPEN else 0.0
        if state is not old or changed_episode:
            self._clear_counts()
        self.state = state
        self.closed_admission = (
            Admission(True, CLOSED, episode=episode) if state is CLOSED else None
        )
        if state is old:
            return None
        open_for = max(0.0, opened_until - now) if state is OPEN else 0.0
        return Transition(self.name, old, state, "remote", 0.0, "remote", open_for)

    # --- reading ----------------------------------------------------------------------------

    @property
    def level(self) -> int:
        return self._level

    @property
    def opened_until(self) -> float:
        return self._opened_until if self.state is OPEN else 0.0

    def open_period(self, level: int) -> float:
        """The un-jittered open time at ``level``."""
        policy = self.policy
        if level >= self._backoff_cap:
            return policy.max_open_s if self._backoff_cap else policy.open_s
        return min(policy.open_s * policy.backoff**level, policy.max_open_s)

    def snapshot(self, now: float) -> BreakerSnapshot:
        """The state at ``now`` (window buckets that have expired by then are dropped)."""
        window = self._window
        window.roll(now)
        ticks = self._settle_streak()
        return BreakerSnapshot(
            name=self.name,
            state=self.state,
            episode=self.episode,
            level=self._level,
            opened_until=self.opened_until,
            calls=window.calls,
            failures=window.failures,
            slow_calls=window.slow,
            consecutive_failures=self._consecutive,
            probes_admitted=self._probes_admitted,
            probes_succeeded=self._probes_succeeded,
            successes_total=self.successes_total + ticks,
            failures_total=self.failures_total,
            ignored_total=self.ignored_total,
            rejected_total=self.rejected_total,
        )

    # --- transitions ------------------------------------------------------------------------

    def _move(self, new: BreakerState, reason: str, open_for_s: float = 0.0) -> Transition:
        old = self.state
        self.state = new
        self.closed_admission = (
            Admission(True, CLOSED, episode=self.episode) if new is CLOSED else None
        )
        return Transition(self.name, old, new, reason, 0.0, open_for_s=open_for_s)

    def _trip(self, now: float, reason: str, level: int) -> Transition:
        self.episode += 1
        self._level = level
        self._forced = False
        period = self.open_period(level)
        jitter = self.policy.jitter
        if jitter:
            period *= 1.0 + self._rng.uniform(-jitter, jitter)
        self._opened_until = now + period
        self._clear_counts()
        return self._move(OPEN, reason, period)

    def _close(self, reason: str) -> Transition:
        self._level = 0
        self._forced = False
        self._opened_until = 0.0
        self._clear_counts()
        return self._move(CLOSED, reason)

    def _clear_counts(self) -> None:
        self._window.clear()
        self._consecutive = 0
        self._probes_admitted = 0
        self._probes_succeeded = 0

    def __repr__(self) -> str:
        return f"BreakerCore({self.name!r}, state={self.state.value}, episode={self.episode})"
