"""The agent's side of a Redis-shared breaker: what it pushes, and how shared state is applied.

:class:`SyncedBackend` is the part of
:class:`~sloguard.resilience._redis_breaker.RedisBreakerBackend` that the
process' Redis agent (:mod:`._redis_agent`) drives from its own thread, as
a :class:`~sloguard.resilience._redis_agent.Participant`: it hands the
agent the next sync call (the batch of closed-state outcomes, a pending
operator command, or a trip decided while Redis was away) and applies what
comes back -- script replies and other instances' pub/sub events -- to the
local :class:`~sloguard.resilience._core.BreakerCore`.

Applying shared state
    Every reply and event carries the shared state's position: its
    generation (a new one when the keys were lost and recreated), its
    episode and the state's rank within the episode (OPEN, HALF_OPEN,
    CLOSED). Within a generation, one older than the newest applied is
    dropped, unless it is a re-sync's answer (authoritative: Redis holds the
    truth); a new generation is taken whatever its episode. A new episode
    drops the batch counted for the old one. A transition the shared state
    causes is reported to the listeners as remote, or as this instance's
    own, with the script's reason, when this instance's call made it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sloguard.resilience._breaker_lua import COMMAND, FOREVER_MS, SYNC, ScriptReply
from sloguard.resilience._clock import Clock
from sloguard.resilience._core import BreakerCore
from sloguard.resilience._core_backend import CoreBackend
from sloguard.resilience._redis_agent import ScriptCall
from sloguard.resilience._redis_breaker_batch import Batch, OutcomeBatcher
from sloguard.resilience._types import BreakerState

__all__ = ["SyncedBackend"]

CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
#: order of the states within one episode, to drop replies older than what we know
_RANK = {OPEN: 0, HALF_OPEN: 1, CLOSED: 2}
#: where :func:`~sloguard.resilience._breaker_lua.policy_argv` puts the jitter and the origin
_JITTER_ARG = 12
_ORIGIN_ARG = 17


class SyncedBackend(CoreBackend):
    """A breaker core kept in step with Redis by the agent (see the module docstring)."""

    def __init__(
        self,
        core: BreakerCore,
        clock: Clock,
        *,
        keys: Sequence[str],
        argv: list[str | int | float],
        rng: random.Random | None,
    ) -> None:
        super().__init__(core, clock)
        self._rng = rng or random.Random()
        self._keys = keys
        self._argv = argv
        self._batcher = OutcomeBatcher(core)
        #: (generation, episode, rank) of the newest shared state applied
        self._remote: tuple[str, int, int] | None = None
        self._probe_full_until = 0.0
        self._degraded_trip: str | None = None
        self._pending_command: str | None = None
        self._origin = ""
        self._new_origin()

    # --- the agent's side (Participant) ------------------------------------------------------

    def has_outcomes(self) -> bool:
        if self._batcher.batch.calls:
            return True
        with self._lock:
            return self._batcher.has_outcomes()

    def sync_request(self, *, resync: bool) -> tuple[ScriptCall, object]:
        now = self._monotonic()
        with self._lock:
            command = self._pending_command
            if resync and command is not None:
                return self._call(COMMAND, command), command
            core = self._core
            batch = self._batcher.take()
            push: tuple[int, str, int] = (-1, "", 0)
            if resync and self._degraded_trip is not None and core.state is not CLOSED:
                left = core.opened_until - now if core.state is OPEN else 0.0
                push = (max(0, round(left * 1000)), self._degraded_trip, core.level)
            seen = batch.episode if self._remote is not None else -1
        return self._call(SYNC, seen, *batch.sync_fields(), *push), batch

    def sync_done(self, reply: ScriptReply, token: object, *, resync: bool) -> None:
        if isinstance(token, str):
            with self._lock:
                if self._pending_command == token:
                    self._pending_command = None
        elif resync:
            self._degraded_trip = None
        self._apply(reply, own=True, authoritative=resync)

    def sync_failed(self, token: object) -> None:
        if not isinstance(token, Batch):
            return
        with self._lock:
            self._batcher.give_back(token)

    def remote_event(self, event: Mapping[str, Any]) -> None:
        self._apply(
            ScriptReply(
                admitted=False,
                state=str(event["st"]),
                episode=int(event["ep"]),
                level=int(event["lv"]),
                until_ms=int(float(event["until"])),
                now_ms=int(float(event["now"])),
                reason=str(event["r"]),
                old_state=str(event.get("old", "")),
                generation=str(event.get("g", "")),
            ),
            own=event.get("o") == self._origin,
        )

    # --- applying shared state ---------------------------------------------------------------

    def _apply(self, reply: ScriptReply, *, own: bool, authoritative: bool = False) -> None:
        state = BreakerState(reply.state)
        position = (reply.generation, reply.episode, _RANK[state])
        now = self._monotonic()
        if state is not OPEN:
            opened_until = 0.0
        elif reply.until_ms >= FOREVER_MS:
            opened_until = math.inf
        else:
            opened_until = now + reply.open_left_s
        with self._lock:
            known = self._remote
            if (
                not authoritative
                and known is not None
                and known[0] == position[0]
                and position[1:] < known[1:]
            ):
                return
            self._remote = position
            core = self._core
            old_episode = core.episode
            if reply.episode != old_episode:
                self._batcher.fold(keep=False)  # the old episode's, dropped with its batch
            transition = core.apply_remote(state, opened_until, reply.episode, reply.level, now)
            if core.episode != old_episode:
                self._batcher.restart()
            if transition is not None:
                self._probe_full_until = 0.0
        if transition is not None and own and reply.reason:
            transition = dataclasses.replace(transition, reason=reply.reason, source="local")
        self._listeners.emit(transition)

    # --- script calls ------------------------------------------------------------------------

    def _call(self, script: Any, *args: str | int | float) -> ScriptCall:
        argv = self._argv
        jitter = self._core.policy.jitter
        if jitter:
            argv = list(argv)
            argv[_JITTER_ARG] = 1.0 + self._rng.uniform(-jitter, jitter)
        return ScriptCall(script, self._keys, [*argv, *args])

    def _new_origin(self) -> None:
        """A new name for this instance's own events (also in a forked child)."""
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._argv[_ORIGIN_ARG] = self._origin
