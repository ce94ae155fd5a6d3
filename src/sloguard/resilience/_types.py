"""The breaker's shared vocabulary: states, policy, admissions, outcomes,
transitions, and the backend protocol that the in-memory and Redis-shared
backends both implement. Sans-I/O: nothing here reads a clock or a socket."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Admission",
    "BreakerBackend",
    "BreakerPolicy",
    "BreakerState",
    "Listener",
    "Outcome",
    "Transition",
]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    #: neither: the call was cancelled, or raised an exception the classifier
    #: does not count. A probe that ends IGNORED gives its slot back.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker trips and how it recovers.

    Any combination of the four trip strategies may be enabled; the breaker
    trips when any enabled one is met. The ratio and count strategies look at
    a sliding window of ``window_s`` seconds made of ``bucket_s`` buckets and
    act only once the window holds ``min_calls`` calls.
    """

    consecutive_failures: int | None = 5
    failure_ratio: float | None = None
    failure_count: int | None = None
    slow_call_ratio: float | None = None
    slow_call_s: float = 1.0
    window_s: float = 60.0
    bucket_s: float = 1.0
    min_calls: int = 20
    #: N: half-open admits exactly this many probe calls per episode
    half_open_probes: int = 1
    #: M: half-open closes after this many probe successes (M <= N)
    half_open_successes: int = 1
    open_s: float = 30.0
    #: each re-open without a close in between multiplies the open time
    backoff: float = 1.0
    max_open_s: float = 300.0
    #: +/- this fraction of the open time, drawn at random per opening
    jitter: float = 0.0

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> ValueError:
            return ValueError(f"breaker policy field {field!r}: {why}")

        if self.consecutive_failures is not None and self.consecutive_failures < 1:
            raise bad("consecutive_failures", "must be at least 1")
        if self.failure_count is not None and self.failure_count < 1:
            raise bad("failure_count", "must be at least 1")
        for field in ("failure_ratio", "slow_call_ratio"):
            value = getattr(self, field)
            if value is not None and not 0.0 < value <= 1.0:
                raise bad(field, "must be in (0, 1]")
        if (
            self.consecutive_failures is None
            and self.failure_ratio is None
            and self.failure_count is None
            and self.slow_call_ratio is None
        ):
            raise bad("consecutive_failures", "no trip strategy is enabled")
        for field in ("slow_call_s", "window_s", "bucket_s", "open_s", "max_open_s"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise bad(field, "must be a positive number of seconds")
        if self.bucket_s > self.window_s:
            raise bad("bucket_s", "must not exceed window_s")
        if self.window_s / self.bucket_s > 3600:
            raise bad("bucket_s", "at most 3600 buckets per window")
        if self.min_calls < 1:
            raise bad("min_calls", "must be at least 1")
        if self.half_open_probes < 1:
            raise bad("half_open_probes", "must be at least 1")
        if not 1 <= self.half_open_successes <= self.half_open_probes:
            raise bad("half_open_successes", "must be between 1 and half_open_probes")
        if not (math.isfinite(self.backoff) and self.backoff >= 1.0):
            raise bad("backoff", "must be at least 1 (1 means no backoff)")
        if self.max_open_s < self.open_s:
            raise bad("max_open_s", "must be at least open_s")
        if not 0.0 <= self.jitter < 1.0:
            raise bad("jitter", "must be in [0, 1)")

    @property
    def buckets(self) -> int:
        return max(1, round(self.window_s / self.bucket_s))


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this call go ahead?".

    ``episode`` identifies the open/half-open episode the admission belongs to,
    so an outcome reported after the breaker moved on (a slow probe finishing
    after another probe reopened it) is not counted against the new episode.
    """

    allowed: bool
    state: BreakerState
    probe: bool = False
    retry_after_s: float = 0.0
    episode: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    old: BreakerState
    new: BreakerState
    #: why: "consecutive_failures", "failure_ratio", "failure_count",
    #: "slow_call_ratio", "open_elapsed", "probe_failed", "probes_succeeded",
    #: "forced", "reset", or "remote" for a change seen from another instance
    reason: str
    #: wall-clock time (time.time()) of the change
    at: float
    source: Literal["local", "remote"] = "local"
    #: how long the breaker stays open (0 unless ``new`` is OPEN)
    open_for_s: float = 0.0


Listener = Callable[[Transition], None]


@runtime_checkable
class BreakerBackend(Protocol):
    """One named breaker's state: the in-memory backend keeps it in this
    process, the Redis backend shares it across processes and hosts.

    ``admit`` and ``record`` never do network I/O on the closed-state path.
    ``admit_async`` may consult shared state (the cluster-wide probe quota)
    without blocking the event loop. Listeners run synchronously on the
    thread that caused the transition (or the backend's sync thread for a
    remote one) and must not raise; an exception in one is logged and dropped.
    """

    @property
    def name(self) -> str: ...

    @property
    def policy(self) -> BreakerPolicy: ...

    @property
    def state(self) -> BreakerState: ...

    def admit(self) -> Admission: ...

    async def admit_async(self) -> Admission: ...

    def record(self, admission: Admission, outcome: Outcome, duration_s: float) -> None: ...

    def add_listener(self, listener: Listener) -> None: ...

    def force_open(self) -> None: ...

    def reset(self) -> None: ...
