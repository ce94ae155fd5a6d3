"""A breaker whose state is shared by every process and host that uses the same name.

:class:`RedisBreakerBackend` keeps a :class:`~sloguard.resilience._core.BreakerCore`
as its local view (cache while Redis answers, the whole breaker while it does
not) and lets the process' Redis agent (:mod:`._redis_agent`) move state both
ways. Redis holds the truth; the scripts in :mod:`._breaker_lua` change it
atomically.

Closed state, the hot path
    ``admit`` returns the core's shared closed-state admission (no lock, no
    I/O). With no window strategy (only ``consecutive_failures``, the
    default) a success admitted that way costs what it does in memory: one
    lock-free tick of the core's
    :attr:`~sloguard.resilience._core.BreakerCore.closed_success`, which
    :class:`~sloguard.resilience._breaker.CircuitBreaker` calls directly
    (:attr:`RedisBreakerBackend.fast_path`). The batch reads the ticks as a
    count, under its lock, before it adds a failure and when it is pushed: its
    counts stay exact, and so does its order (ticks read before a failure
    ended the streak before it; ticks read at the push came after the last
    failure). Every other outcome joins the batch under the lock, with no
    clock read. The agent pushes each breaker's batch every
    ``sync_interval_s`` (sooner, a fifth of it, once the batch holds a
    failure) in one script call that counts it into the shared window,
    evaluates the trip strategies with Redis' clock and publishes a trip.
    Consistency bound: a trip decided anywhere is seen here within the
    pub/sub latency (about a millisecond on a LAN) after the script that
    made it; the failure that causes a trip reaches Redis within
    ``sync_interval_s / 5`` plus a round trip. If a pub/sub message is lost
    without the connection failing, the next poll (``poll_interval_s``)
    brings the state. Until then this process keeps admitting calls it
    would reject: that window is the price of no round trip per call.

Open and half-open
    While the local view says the open period runs, calls are rejected
    locally. Once it has ended, admitting needs the cluster: an atomic script
    moves OPEN to HALF_OPEN and hands out exactly ``half_open_probes`` probe
    slots per episode, cluster-wide. ``admit_async`` awaits the agent without
    blocking the event loop; ``admit`` (sync) blocks for at most
    ``timeout_s`` -- the only place this backend ever waits. A caller told
    the slots are gone is answered locally for one sync interval. Probe
    outcomes go to Redis at once. A probe whose caller dies keeps its slot
    for ``probe_lease_s``, then counts as failed (the breaker reopens).

Redis down or slow (a call over ``timeout_s``)
    No call fails: the core decides everything locally (starting from the
    shared state last seen, with an empty window), outcomes are also kept in
    the batch, and the agent reconnects with exponential backoff and jitter.
    Back, it re-syncs each breaker before sharing again: an operator command
    given meanwhile is sent; a trip decided locally meanwhile is pushed if
    Redis still says CLOSED (open wins over closed); otherwise the shared
    state is taken as it is, and outcomes counted meanwhile are added to the
    shared window when they belong to its episode.

Listeners see this instance's transitions (``source="local"``, with the
reason, including trips the scripts made from this instance's outcomes) and
transitions from other instances (``source="remote"``, reason ``"remote"``).

This module holds the public backend: admission, outcomes, operator
commands and the link to the agent. The batch of closed-state outcomes is
:mod:`._redis_breaker_batch`; the agent's side (what is pushed, how shared
state is applied) is :mod:`._redis_breaker_sync`.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import threading
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from sloguard.resilience._breaker_lua import (
    ACQUIRE_PROBE,
    COMMAND,
    FOREVER_MS,
    PROBE_RESULT,
    ScriptReply,
    policy_argv,
    state_keys,
)
from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._core import BreakerCore
from sloguard.resilience._redis_agent import (
    LinkDownError,
    RedisAgent,
    ScriptCall,
    connect_url,
    on_fork,
    redacted,
    shared_agent,
)
from sloguard.resilience._redis_breaker_sync import SyncedBackend
from sloguard.resilience._types import Admission, BreakerPolicy, BreakerState, Outcome

__all__ = ["RedisBreakerBackend"]

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
SUCCESS = Outcome.SUCCESS
FAILURE = Outcome.FAILURE


class _Unlinked:
    """The link of a backend whose agent is gone (closed, or left behind by a fork)."""

    up = False

    def submit(self, call: ScriptCall) -> Any:
        raise LinkDownError("not linked to redis")

    def hurry(self, participant: object) -> None:
        pass

    def detach(self, participant: object) -> None:
        pass


_UNLINKED = _Unlinked()


class RedisBreakerBackend(SyncedBackend):
    """A :class:`~sloguard.resilience._types.BreakerBackend` shared through Redis."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        connect: Callable[[], aioredis.Redis] | None = None,
        prefix: str = "sloguard:breaker",
        sync_interval_s: float = 0.1,
        poll_interval_s: float = 1.0,
        timeout_s: float = 0.05,
        probe_lease_s: float = 30.0,
        state_ttl_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        agent: RedisAgent | None = None,
    ) -> None:
        policy = policy or BreakerPolicy()
        for field, value in (
            ("sync_interval_s", sync_interval_s),
            ("poll_interval_s", poll_interval_s),
            ("timeout_s", timeout_s),
            ("probe_lease_s", probe_lease_s),
            ("state_ttl_s", 1.0 if state_ttl_s is None else state_ttl_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"redis breaker field {field!r}: must be a positive number")
        if not name:
            raise ValueError("redis breaker field 'name': must not be empty")
        if not prefix:
            raise ValueError("redis breaker field 'prefix': must not be empty")
        self.channel = f"{prefix}:events"
        super().__init__(
            BreakerCore(name, policy, rng=rng),
            clock,
            keys=state_keys(prefix, name),
            argv=policy_argv(
                policy,
                jitter=1.0,
                ttl_s=state_ttl_s or max(3600.0, 2 * (policy.window_s + policy.max_open_s)),
                channel=self.channel,
                name=name,
                lease_s=probe_lease_s,
                origin="",
            ),
            rng=rng,
        )
        self.sync_interval_s = sync_interval_s
        self.poll_interval_s = poll_interval_s
        self._timeout_s = timeout_s
        self._slow_call_s = policy.slow_call_s
        self._remote_probes: collections.Counter[int] = collections.Counter()
        self._connect = connect or connect_url(url, timeout_s)
        self._link_key: object = connect if connect is not None else (url, timeout_s)
        self._label = redacted(url) if connect is None else repr(connect)
        self._agent = agent
        self._link: Any = _UNLINKED
        self._closed = False
        self._ensure_link()
        on_fork(self)

    # --- BreakerBackend ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True once this breaker synced with Redis and while Redis answers; False while
        this process decides alone."""
        return bool(self._link.up) and self._remote is not None

    @property
    def fast_path(self) -> BreakerCore:
        """What :class:`~sloguard.resilience._breaker.CircuitBreaker` may use instead of
        ``admit`` and ``record``: the core's ``closed_admission`` (what ``admit`` returns
        while it is set) and ``closed_success`` (a success of that admission, counted exactly
        as ``record`` would; the next push carries it)."""
        return self._core

    def admit(self) -> Admission:
        admission = self._core.closed_admission
        if admission is not None:
            return admission
        local = self._admit_without_redis()
        if local is not None:
            return local
        agent = self._agent or shared_agent()
        if threading.current_thread() is agent.thread:
            return self._admit_locally()  # a listener on the agent's thread: never wait on it
        try:
            future = self._link.submit(self._call(ACQUIRE_PROBE))
        except Exception:
            return self._admit_locally()
        try:
            reply = future.result(timeout=self._timeout_s)
        except Exception:
            self._abandon(future)
            return self._admit_locally()
        return self._admitted(reply)

    async def admit_async(self) -> Admission:
        admission = self._core.closed_admission
        if admission is not None:
            return admission
        local = self._admit_without_redis()
        if local is not None:
            return local
        try:
            future = self._link.submit(self._call(ACQUIRE_PROBE))
        except Exception:
            return self._admit_locally()
        try:
            waiting = asyncio.wrap_future(future)
            reply = await asyncio.wait_for(asyncio.shield(waiting), self._timeout_s)
        except Exception:
            self._abandon(future)
            return self._admit_locally()
        return self._admitted(reply)

    def record(self, admission: Admission, outcome: Outcome, duration_s: float) -> None:
        if admission.probe:
            self._record_probe(admission, outcome, duration_s)
            return
        if not self._link.up:
            self._record_degraded(admission, outcome, duration_s)
            return
        hurry = False
        self._acquire()
        try:
            core = self._core
            # ``core.tally(outcome)``, inline: with a window strategy every call comes here
            if outcome is SUCCESS:
                core.successes_total += 1
            elif outcome is FAILURE:
                core.failures_total += 1
            else:
                core.ignored_total += 1
                return
            if admission.episode == core.episode and core.state is CLOSED and admission.allowed:
                batcher = self._batcher
                if outcome is FAILURE:
                    batcher.fold()
                hurry = batcher.count(outcome is FAILURE, duration_s)
        finally:
            self._release()
        if hurry:
            self._link.hurry(self)

    def force_open(self) -> None:
        self._command("open")

    def reset(self) -> None:
        self._command("reset")

    def close(self) -> None:
        """Push what is counted and stop sharing (the agent keeps serving other breakers)."""
        self._closed = True
        self._link.detach(self)
        self._link = _UNLINKED

    def __enter__(self) -> RedisBreakerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- admission paths ---------------------------------------------------------------------

    def _admit_without_redis(self) -> Admission | None:
        """The answer when it needs no cluster decision, else None."""
        if not self._link.up:
            return self._admit_locally()
        now = self._monotonic()
        core = self._core
        state = core.state
        if state is OPEN and now < core.opened_until:
            retry = core.policy.max_open_s if math.isinf(core.opened_until) else 0.0
            return self._reject(OPEN, retry or core.opened_until - now)
        if state is HALF_OPEN and now < self._probe_full_until:
            return self._reject(HALF_OPEN, core.policy.bucket_s)
        if state is CLOSED:
            return core.closed_admission or Admission(True, CLOSED, episode=core.episode)
        return None

    def _reject(self, state: BreakerState, retry_after_s: float) -> Admission:
        with self._lock:
            self._core.rejected_total += 1
            episode = self._core.episode
        return Admission(False, state, retry_after_s=retry_after_s, episode=episode)

    def _admit_locally(self) -> Admission:
        self._ensure_link()
        now = self._monotonic()
        with self._lock:
            admission, transition = self._core.admit(now)
        self._listeners.emit(transition)
        return admission

    def _admitted(self, reply: ScriptReply) -> Admission:
        self._apply(reply, own=True)
        if reply.admitted and reply.state == HALF_OPEN.value:
            with self._lock:
                self._remote_probes[reply.episode] += 1
            return Admission(True, HALF_OPEN, probe=True, episode=reply.episode)
        if reply.admitted:
            return Admission(True, CLOSED, episode=reply.episode)
        if reply.state == HALF_OPEN.value:
            self._probe_full_until = self._monotonic() + self.sync_interval_s
            return self._reject(HALF_OPEN, self._core.policy.bucket_s)
        forced = reply.until_ms >= FOREVER_MS
        return self._reject(OPEN, self._core.policy.max_open_s if forced else reply.open_left_s)

    def _abandon(self, future: Any) -> None:
        """A caller gave up waiting: a slot the reply brings later is given back."""

        def release(done: Any) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            reply: ScriptReply = done.result()
            self._apply(reply, own=True)
            if reply.admitted and reply.state == HALF_OPEN.value:
                self._send_probe_result(reply.episode, "ignored")

        future.add_done_callback(release)

    # --- outcome paths -----------------------------------------------------------------------

    def _record_degraded(self, admission: Admission, outcome: Outcome, duration_s: float) -> None:
        now = self._monotonic()
        with self._lock:
            core = self._core
            old = core.state
            if (
                outcome is not Outcome.IGNORED
                and admission.allowed
                and old is CLOSED
                and admission.episode == core.episode
            ):
                if outcome is FAILURE:
                    self._batcher.fold()
                self._batcher.count(outcome is FAILURE, duration_s)
            transition = core.record(admission, outcome, duration_s, now)
            if transition is not None and transition.new is OPEN and old is CLOSED:
                self._degraded_trip = transition.reason
        self._listeners.emit(transition)
        self._ensure_link()

    def _record_probe(self, admission: Admission, outcome: Outcome, duration_s: float) -> None:
        with self._lock:
            remote = self._remote_probes[admission.episode] > 0
            if remote:
                self._remote_probes[admission.episode] -= 1
                if not self._remote_probes[admission.episode]:
                    del self._remote_probes[admission.episode]
        if not remote:
            self._record_degraded(admission, outcome, duration_s)
            return
        slow_fails = self.policy.slow_call_ratio is not None and duration_s >= self._slow_call_s
        if outcome is FAILURE or (outcome is SUCCESS and slow_fails):
            verdict = "failure"
        else:
            verdict = "success" if outcome is SUCCESS else "ignored"
        with self._lock:
            self._core.tally(outcome)
        if not self._send_probe_result(admission.episode, verdict):
            # Redis is gone: this process decides the episode (Redis' slot ends with its lease)
            now = self._monotonic()
            with self._lock:
                transition = self._core.record(admission, outcome, duration_s, now)
            self._listeners.emit(transition)

    def _send_probe_result(self, episode: int, verdict: str) -> bool:
        try:
            future = self._link.submit(self._call(PROBE_RESULT, episode, verdict))
        except Exception:
            return False
        future.add_done_callback(self._on_reply)
        return True

    def _command(self, command: str) -> None:
        now = self._monotonic()
        with self._lock:
            core = self._core
            self._batcher.fold(keep=False)
            transition = core.force_open(now) if command == "open" else core.reset(now)
            self._pending_command = command
            self._degraded_trip = None
            self._batcher.restart()
        self._listeners.emit(transition)
        try:
            future = self._link.submit(self._call(COMMAND, command))
        except Exception:
            return  # sent at the re-sync

        def sent(done: Any) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            with self._lock:
                if self._pending_command == command:
                    self._pending_command = None
            self._apply(done.result(), own=True)

        future.add_done_callback(sent)

    def _on_reply(self, done: Any) -> None:
        if not done.cancelled() and done.exception() is None:
            self._apply(done.result(), own=True)

    # --- plumbing ----------------------------------------------------------------------------

    def _ensure_link(self) -> None:
        if self._link is not _UNLINKED or self._closed:
            return
        agent = self._agent or shared_agent()
        self._link = agent.link(
            self._link_key, self._connect, label=self._label, timeout_s=self._timeout_s
        )
        self._link.attach(self)
        with self._lock:
            core = self._core
            if core.state is CLOSED and core.closed_admission is None:  # unset by a fork
                core.closed_admission = Admission(True, CLOSED, episode=core.episode)

    def _after_fork(self) -> None:
        # in the child: the parent's lock may be held and its agent is gone
        self._new_lock()
        if self._agent is not None:
            self._agent = None
        self._link = _UNLINKED
        self._new_origin()
        # The first call must link this process (a lock-free success would not, and the
        # breaker would never hear of trips): no shared closed-state admission until then.
        self._core.closed_admission = None

    def __repr__(self) -> str:
        return (
            f"RedisBreakerBackend({self._core.name!r}, state={self._core.state.value}, "
            f"connected={self.connected})"
        )
