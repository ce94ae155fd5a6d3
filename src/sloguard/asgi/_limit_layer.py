"""Rate limits in the guard: settings → limiters, and the middleware.

Limits keyed by something known before authentication (client IP, route,
method, a header, or one global bucket) run in a layer before auth, so a
flood of bad credentials is limited too; limits keyed by principal or tenant
run in a layer after auth. Both share one store: in memory, or Redis when
``resilience.redis.url`` is set (one round trip per request, however many
limits apply, with concurrent requests coalesced; a Redis outage never fails
a request: fail-open decisions are flagged, fail-closed limits answer
``RATE_503``). An allowed response carries the ``RateLimit`` and
``RateLimit-Policy`` headers of its most restrictive limit; a refused one is
problem+json ``RATE_429`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from sloguard.asgi._reject import mark_refused
from sloguard.asgi._types import ASGIApp, Message, Receive, Scope, Send
from sloguard.context import current_request
from sloguard.resilience._client_ip import ClientIPResolver
from sloguard.resilience._limit_keys import KeyFunc, RequestInfo, key_function
from sloguard.resilience._limit_store import MemoryLimiterStore
from sloguard.resilience._ratelimit import (
    Algorithm,
    LimitDecision,
    LimiterStore,
    RateLimit,
    RateLimiter,
    RateLimitResult,
)
from sloguard.routing import GlobSet
from sloguard.settings._resilience import RateLimitSettings, ResilienceSettings

__all__ = ["LimitMetrics", "LimitMiddleware", "RateLimits", "count_decisions", "refusal"]

_AFTER_AUTH_KEYS = frozenset({"principal", "tenant"})


def _scoped(entry: RateLimitSettings) -> KeyFunc:
    """The entry's key function, None for requests outside its routes/methods."""
    base = key_function(entry.key)
    routes = None if entry.routes == ("*",) else GlobSet(entry.routes)
    methods = frozenset(m.upper() for m in entry.methods) or None
    if routes is None and methods is None:
        return base

    def key(info: RequestInfo) -> str | None:
        if methods is not None and info.method not in methods:
            return None
        if routes is not None and not routes.matches(info.route or info.path):
            return None
        return base(info)

    return key


def rate_limit(entry: RateLimitSettings) -> RateLimit:
    return RateLimit(
        name=entry.name,
        limit=entry.limit,
        period_s=entry.period_s,
        key=_scoped(entry),
        algorithm=Algorithm(entry.algorithm),
        burst=entry.burst,
        cost=entry.cost,
        fail_closed=entry.fail_closed,
        overrides=dict(entry.overrides),
    )


class LimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "sloguard_rate_limit_decisions",
            "Rate limit decisions by limit and result (allowed, limited, degraded, unavailable).",
            ("limit", "result"),
            registry=registry,
        )


class RateLimits:
    """The two limiters (before and after auth) of one guarded app and their store."""

    def __init__(self, settings: ResilienceSettings, registry: CollectorRegistry | None) -> None:
        store: LimiterStore
        if settings.redis.url is not None:
            from sloguard.resilience._limit_store import RedisLimiterStore

            store = RedisLimiterStore(
                settings.redis.url,
                prefix=f"{settings.redis.prefix}:rl:",
                timeout_s=settings.redis.timeout_s,
            )
        else:
            store = MemoryLimiterStore(max_keys=settings.limiter_max_keys)
        self.store = store
        ip = settings.client_ip
        self.resolver = ClientIPResolver(
            trusted_hops=ip.trusted_hops, trusted_proxies=ip.trusted_proxies, header=ip.header
        )
        before = [rate_limit(e) for e in settings.rate_limits if e.key not in _AFTER_AUTH_KEYS]
        after = [rate_limit(e) for e in settings.rate_limits if e.key in _AFTER_AUTH_KEYS]
        self.before = RateLimiter(before, store) if before else None
        self.after = RateLimiter(after, store) if after else None
        self.metrics = LimitMetrics(registry) if registry is not None else None

    async def aclose(self) -> None:
        close = getattr(self.store, "aclose", None)
        if close is not None:
            await close()


class LimitMiddleware:
    def __init__(self, app: ASGIApp, limits: RateLimits, limiter: RateLimiter) -> None:
        self.app = app
        self.limits = limits
        self.limiter = limiter
        self.resolver = limits.resolver
        self.metrics = limits.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = current_request()
        info = RequestInfo.from_scope(scope, client_ip=self.resolver.from_scope(scope), context=ctx)
        result = await self.limiter.check(info)
        if self.metrics is not None:
            count_decisions(self.metrics, result.decisions)
        if not result.allowed:
            _, (status, headers, body) = refusal(result)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers()]
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def refusal(result: RateLimitResult) -> tuple[str, tuple[int, list[tuple[bytes, bytes]], bytes]]:
    """The code and the problem+json answer (status, headers, body) of a limited request,
    which is marked refused on the request context."""
    code = result.code or "RATE_429"
    return code, result.problem(mark_refused(code, "rate limited"))


def count_decisions(metrics: LimitMetrics, decisions: Sequence[LimitDecision]) -> None:
    for decision in decisions:
        if decision.degraded:
            result = "unavailable" if decision.code else "degraded"
        else:
            result = "allowed" if decision.allowed else "limited"
        metrics.decisions.labels(decision.policy, result).inc()
