"""The ``resilience`` section: circuit breakers, rate limits, load shedding.

Field names follow the runtime values in :mod:`sloguard.resilience` one to
one (``BreakerPolicy``, ``RateLimit``, the shedder's limits), so what a user
writes in ``sloguard.yaml`` is what the engine runs; the ASGI wiring turns
each entry into its runtime value at start-up, and an invalid combination
(say ``half_open_successes`` above ``half_open_probes``) is refused here with
the field's name.
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sloguard.settings._base import Ratio, _Section

__all__ = [
    "AdaptiveSettings",
    "BreakerSettings",
    "ClientIPSettings",
    "MemoryGuardSettings",
    "OutboundBreakerSettings",
    "RateLimitSettings",
    "RedisStateSettings",
    "ResilienceSettings",
    "ShedSettings",
]

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PriorityName = Literal["critical", "high", "normal", "low"]


class RedisStateSettings(_Section):
    """Where breaker and limiter state is shared; no ``url`` keeps it in memory."""

    url: str | None = None
    prefix: str = "sloguard"
    timeout_s: Seconds = 0.05
    sync_interval_s: Seconds = 0.1

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


class _TripSettings(_Section):
    consecutive_failures: Annotated[int, Field(ge=1)] | None = 5
    failure_ratio: Annotated[float, Field(gt=0, le=1)] | None = None
    failure_count: Annotated[int, Field(ge=1)] | None = None
    slow_call_ratio: Annotated[float, Field(gt=0, le=1)] | None = None
    slow_call_s: Seconds = 1.0
    window_s: Seconds = 60.0
    bucket_s: Seconds = 1.0
    min_calls: Annotated[int, Field(ge=1)] = 20
    half_open_probes: Annotated[int, Field(ge=1)] = 1
    half_open_successes: Annotated[int, Field(ge=1)] = 1
    open_s: Seconds = 30.0
    backoff: Annotated[float, Field(ge=1.0, allow_inf_nan=False)] = 1.0
    max_open_s: Seconds = 300.0
    jitter: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    failure_statuses: tuple[Annotated[int, Field(ge=100, le=599)], ...] = (500, 502, 503, 504)
    #: share state through ``resilience.redis`` when it has a URL
    shared: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> _TripSettings:
        if (
            self.consecutive_failures is None
            and self.failure_ratio is None
            and self.failure_count is None
            and self.slow_call_ratio is None
        ):
            raise ValueError("no trip strategy is enabled (set consecutive_failures or another)")
        if self.half_open_successes > self.half_open_probes:
            raise ValueError("half_open_successes must not exceed half_open_probes")
        if self.bucket_s > self.window_s:
            raise ValueError("bucket_s must not exceed window_s")
        if self.max_open_s < self.open_s:
            raise ValueError("max_open_s must be at least open_s")
        return self


class BreakerSettings(_TripSettings):
    """An inbound breaker: requests to matching route templates share it."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
    routes: tuple[str, ...] = ("*",)
    #: one breaker per matching route template instead of one for all of them
    per_route: bool = False


class OutboundBreakerSettings(_TripSettings):
    """Breakers for outgoing httpx calls (``sloguard run`` or ``instrument_httpx``)."""

    enabled: bool = False
    key: Literal["host", "route"] = "host"
    routes: tuple[str, ...] = ()


class ClientIPSettings(_Section):
    """Who the client is behind proxies. By default the peer address, and no
    header is believed; ``trusted_hops`` (take the N-th address from the right
    of the header) or ``trusted_proxies`` (walk left while the address is one
    of these networks, starting only when the peer is) say otherwise."""

    header: Literal["forwarded", "x-forwarded-for"] = "x-forwarded-for"
    trusted_hops: Annotated[int, Field(ge=0, le=16)] = 0
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP network: {exc}") from None
        return value


class RateLimitSettings(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    #: ip, principal, tenant, route, method, global, or header:<name>
    key: str = "ip"
    limit: Annotated[int, Field(ge=1)]
    period_s: Seconds = 60.0
    burst: Annotated[int, Field(ge=1)] | None = None
    algorithm: Literal["gcra", "sliding_window"] = "gcra"
    routes: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ()
    cost: Annotated[int, Field(ge=1)] = 1
    fail_closed: bool = False
    #: per-key limits for hot keys: {"tenant-a": 1000}
    overrides: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value in {"ip", "principal", "tenant", "route", "method", "global"}:
            return value
        if value.startswith("header:") and len(value) > len("header:"):
            return "header:" + value[len("header:") :].lower()
        raise ValueError("must be ip, principal, tenant, route, method, global or header:<name>")


class AdaptiveSettings(_Section):
    enabled: bool = False
    algorithm: Literal["gradient2", "aimd"] = "gradient2"
    initial_limit: Annotated[int, Field(ge=1)] = 20
    min_limit: Annotated[int, Field(ge=1)] = 4
    max_limit: Annotated[int, Field(ge=1)] = 1000
    #: gradient2: how much the short-term latency may exceed the long-term one
    tolerance: Annotated[float, Field(ge=1.0, allow_inf_nan=False)] = 1.5
    #: aimd: the factor applied to the limit on a drop
    backoff_ratio: Annotated[float, Field(ge=0.5, lt=1.0)] = 0.9
    #: aimd: a request slower than this counts as a drop
    timeout_s: Seconds = 5.0

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveSettings:
        if not self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("need min_limit <= initial_limit <= max_limit")
        return self


class MemoryGuardSettings(_Section):
    enabled: bool = False
    #: usage / limit above which low-priority requests are shed (before adapting)
    threshold: Ratio = 0.85
    min_threshold: Ratio = 0.6
    hysteresis: Ratio = 0.05
    #: with neither cgroup v2 nor v1 limits: process RSS against this many bytes
    limit_bytes: Annotated[int, Field(ge=1)] | None = None
    interval_s: Seconds = 0.5
    #: how far ahead the growth rate is projected when lowering the threshold
    horizon_s: Seconds = 30.0
    #: once shedding starts, it lasts at least this long
    min_shed_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 5.0
    retry_after_s: Seconds = 5.0
    #: usage is the working set (minus inactive file cache), as the OOM killer sees it
    working_set: bool = True
    #: requests of this priority and above are never shed by the memory guard
    keep_priority: PriorityName = "high"

    @model_validator(mode="after")
    def _ordered(self) -> MemoryGuardSettings:
        if self.min_threshold > self.threshold:
            raise ValueError("min_threshold must not exceed threshold")
        return self


class ShedSettings(_Section):
    #: in-flight requests allowed across the whole app (None: no static limit)
    max_concurrency: Annotated[int, Field(ge=1)] | None = None
    #: route template glob -> its own in-flight limit
    route_limits: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    #: route template glob -> priority class; first match wins, else ``default_priority``
    priorities: dict[str, PriorityName] = Field(default_factory=dict)
    default_priority: PriorityName = "normal"
    #: the share of each limit a class may fill: as load rises, low is shed first
    shares: dict[PriorityName, Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=dict)
    retry_after_s: Seconds = 1.0
    adaptive: AdaptiveSettings = AdaptiveSettings()
    memory: MemoryGuardSettings = MemoryGuardSettings()

    @field_validator("shares")
    @classmethod
    def _shares_ordered(cls, value: dict[str, float]) -> dict[str, float]:
        # the defaults of sloguard.resilience.PriorityShares; a lower class may
        # never get a larger share than a higher one
        shares = {"low": 0.5, "normal": 0.8, "high": 0.95, "critical": 1.0} | value
        order = ("low", "normal", "high", "critical")
        for lower, higher in itertools.pairwise(order):
            if shares[higher] < shares[lower]:
                raise ValueError(
                    f"priority share {higher!r}: must not be below the share of {lower!r}"
                )
        return value


class ResilienceSettings(_Section):
    enabled: bool = False
    redis: RedisStateSettings = RedisStateSettings()
    client_ip: ClientIPSettings = ClientIPSettings()
    breakers: tuple[BreakerSettings, ...] = ()
    outbound: OutboundBreakerSettings = OutboundBreakerSettings()
    rate_limits: tuple[RateLimitSettings, ...] = ()
    #: keys the in-memory limiter keeps (least recently used go first when full)
    limiter_max_keys: Annotated[int, Field(ge=1)] = 100_000
    shedding: ShedSettings = ShedSettings()

    @model_validator(mode="after")
    def _unique_names(self) -> ResilienceSettings:
        for kind, names in (
            ("breakers", [b.name for b in self.breakers]),
            ("rate_limits", [r.name for r in self.rate_limits]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{kind}: name {name!r} is used twice")
                seen.add(name)
        return self
