"""Circuit breakers, rate limits and load shedding; state shared across
instances through Redis.

Sans-I/O cores (``BreakerCore``, GCRA and sliding-window limits, adaptive
concurrency limits, memory pressure) take the time and events and return
decisions; backends keep state in this process or in Redis; the user API
(``CircuitBreaker``, the httpx transports) and the guard's ASGI layers are
thin drivers around them. Exceptions::

    SloguardHTTPError (sloguard.errors)
     └── BreakerOpenError            code BRK_503, retry_after_s
          └── HTTPBreakerOpenError   also an httpx.TransportError

The Redis-backed classes import ``redis`` (the ``sloguard[redis]`` extra) only
when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sloguard._lazy import lazy_attributes as _lazy_attributes
from sloguard.resilience._adaptive import (
    AdaptiveConcurrencyLimiter,
    AIMDLimit,
    Gradient2Limit,
    LimitAlgorithm,
)
from sloguard.resilience._breaker import BreakerOpenError, BreakerRegistry, CircuitBreaker
from sloguard.resilience._breaker_metrics import BreakerMetrics
from sloguard.resilience._cgroup import (
    CgroupV1Reader,
    CgroupV2Reader,
    MemoryReader,
    MemoryReading,
    ProcessRSSReader,
    detect_memory_source,
)
from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._client_ip import ClientIPResolver
from sloguard.resilience._clock import SYSTEM_CLOCK, Clock, ManualClock
from sloguard.resilience._concurrency import ConcurrencyLimiter
from sloguard.resilience._core import BreakerCore, BreakerSnapshot
from sloguard.resilience._gcra import Gcra
from sloguard.resilience._limit_keys import KeyFunc, RequestInfo, key_function
from sloguard.resilience._limit_store import MemoryLimiterStore
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._memory_guard import MemoryGuard, MemoryPolicy, MemoryState
from sloguard.resilience._priority import Priority, PriorityShares, ShedDecision, ShedReason
from sloguard.resilience._ratelimit import (
    Algorithm,
    LimitDecision,
    LimiterStore,
    RateLimit,
    RateLimiter,
    RateLimitResult,
    rate_limit_headers,
)
from sloguard.resilience._shedder import LoadShedder, ShedCollector, ShedStats, ShedToken
from sloguard.resilience._sliding import SlidingWindow
from sloguard.resilience._transport import (
    AsyncBreakerTransport,
    BreakerTransport,
    HTTPBreakerOpenError,
)
from sloguard.resilience._types import (
    Admission,
    BreakerBackend,
    BreakerPolicy,
    BreakerState,
    Listener,
    Outcome,
    Transition,
)

if TYPE_CHECKING:
    from sloguard.resilience._limit_store import RedisLimiterStore
    from sloguard.resilience._redis_breaker import RedisBreakerBackend

__all__ = [
    "SYSTEM_CLOCK",
    "AIMDLimit",
    "AdaptiveConcurrencyLimiter",
    "Admission",
    "Algorithm",
    "AsyncBreakerTransport",
    "BreakerBackend",
    "BreakerCore",
    "BreakerMetrics",
    "BreakerOpenError",
    "BreakerPolicy",
    "BreakerRegistry",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransport",
    "CgroupV1Reader",
    "CgroupV2Reader",
    "CircuitBreaker",
    "ClientIPResolver",
    "Clock",
    "ConcurrencyLimiter",
    "FailureClassifier",
    "Gcra",
    "Gradient2Limit",
    "HTTPBreakerOpenError",
    "KeyFunc",
    "LimitAlgorithm",
    "LimitDecision",
    "LimiterStore",
    "Listener",
    "LoadShedder",
    "LocalBreaker",
    "ManualClock",
    "MemoryGuard",
    "MemoryLimiterStore",
    "MemoryPolicy",
    "MemoryReader",
    "MemoryReading",
    "MemoryState",
    "Outcome",
    "Priority",
    "PriorityShares",
    "ProcessRSSReader",
    "RateLimit",
    "RateLimitResult",
    "RateLimiter",
    "RedisBreakerBackend",
    "RedisLimiterStore",
    "RequestInfo",
    "ShedCollector",
    "ShedDecision",
    "ShedReason",
    "ShedStats",
    "ShedToken",
    "SlidingWindow",
    "Transition",
    "detect_memory_source",
    "key_function",
    "rate_limit_headers",
]

_LAZY = {
    "RedisBreakerBackend": "sloguard.resilience._redis_breaker",
    "RedisLimiterStore": "sloguard.resilience._limit_store",
}


__getattr__ = _lazy_attributes(__name__, _LAZY)
