"""The load-shedding layer of the guard: settings → :class:`LoadShedder`, and
the ASGI middleware that asks it before every request.

It sits right inside the observe layer and before auth, so an overloaded
service refuses with the least work (no token verification, no app code).
The request's priority class comes from its route template (``priorities``
globs, first match wins), cached per template; the admission token is
released when the response ends, with the latency the adaptive limit learns
from: a 503/504 from the app counts as a drop, a cancelled request or an
exception gives its place back without a sample.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry

from sloguard.asgi._reject import send_problem
from sloguard.asgi._types import ASGIApp, Message, Receive, Scope, Send
from sloguard.context import current_request
from sloguard.resilience._adaptive import AdaptiveConcurrencyLimiter, AIMDLimit, Gradient2Limit
from sloguard.resilience._cgroup import detect_memory_source
from sloguard.resilience._concurrency import ConcurrencyLimiter
from sloguard.resilience._memory_guard import MemoryGuard, MemoryPolicy
from sloguard.resilience._priority import Priority, PriorityShares, ShedDecision
from sloguard.resilience._shedder import LoadShedder, ShedCollector
from sloguard.resilience._types import Outcome
from sloguard.routing import UNMATCHED, GlobSet
from sloguard.settings._resilience import ShedSettings

__all__ = [
    "RoutePriorities",
    "ShedMiddleware",
    "build_shedder",
    "shed_outcome",
    "ShedLayer",
    "shedding_configured",
]

log = logging.getLogger("sloguard.resilience")

_DROP_STATUSES = frozenset({503, 504})

App = TypeVar("App")


def shed_outcome(status: int) -> Outcome:
    """What a response with ``status`` teaches the adaptive limit: a 503/504 is a drop."""
    return Outcome.FAILURE if status in _DROP_STATUSES else Outcome.SUCCESS


def shedding_configured(settings: ShedSettings) -> bool:
    return (
        settings.max_concurrency is not None
        or bool(settings.route_limits)
        or settings.adaptive.enabled
        or settings.memory.enabled
    )


def build_shedder(settings: ShedSettings) -> LoadShedder:
    shares = PriorityShares.from_mapping({str(k): v for k, v in settings.shares.items()})
    concurrency = None
    if settings.max_concurrency is not None or settings.route_limits:
        globs = [(GlobSet([glob]), limit) for glob, limit in settings.route_limits.items()]

        def route_limit(route: str) -> int | None:
            for globset, limit in globs:
                if globset.matches(route):
                    return limit
            return None

        concurrency = ConcurrencyLimiter(
            settings.max_concurrency,
            route_limit=route_limit if globs else None,
            shares=shares,
            retry_after_s=settings.retry_after_s,
        )
    adaptive = None
    if settings.adaptive.enabled:
        a = settings.adaptive
        algorithm = (
            Gradient2Limit(
                initial_limit=a.initial_limit,
                min_limit=a.min_limit,
                max_limit=a.max_limit,
                tolerance=a.tolerance,
            )
            if a.algorithm == "gradient2"
            else AIMDLimit(
                initial_limit=a.initial_limit,
                min_limit=a.min_limit,
                max_limit=a.max_limit,
                backoff_ratio=a.backoff_ratio,
                timeout_s=a.timeout_s,
            )
        )
        adaptive = AdaptiveConcurrencyLimiter(
            algorithm, shares=shares, retry_after_s=settings.retry_after_s
        )
    memory = None
    if settings.memory.enabled:
        m = settings.memory
        reader = detect_memory_source(limit_bytes=m.limit_bytes, working_set=m.working_set)
        log.info("memory guard reads %s", reader.describe())
        memory = MemoryGuard(
            reader,
            MemoryPolicy(
                threshold=m.threshold,
                min_threshold=m.min_threshold,
                hysteresis=m.hysteresis,
                horizon_s=m.horizon_s,
                interval_s=m.interval_s,
                min_shed_s=m.min_shed_s,
                keep_priority=Priority.parse(m.keep_priority),
                retry_after_s=m.retry_after_s,
                limit_bytes=m.limit_bytes,
            ),
        )
    return LoadShedder(memory=memory, concurrency=concurrency, adaptive=adaptive)


class RoutePriorities:
    """Route template → priority class: the first matching ``priorities`` glob,
    else ``default_priority``; cached per template (bounded)."""

    def __init__(self, settings: ShedSettings) -> None:
        self._priorities = [
            (GlobSet([glob]), Priority.parse(name)) for glob, name in settings.priorities.items()
        ]
        self._default = Priority.parse(settings.default_priority)
        self._by_route: dict[str, Priority] = {}

    def __call__(self, route: str) -> Priority:
        priority = self._by_route.get(route)
        if priority is None:
            priority = self._default
            for globset, candidate in self._priorities:
                if globset.matches(route):
                    priority = candidate
                    break
            if len(self._by_route) < 4096:
                self._by_route[route] = priority
        return priority


class ShedLayer(Generic[App]):
    """What the ASGI and the WSGI shed middleware share: the app, the shedder (its
    metrics registered on ``registry`` when given) and the route → priority lookup."""

    def __init__(
        self,
        app: App,
        shedder: LoadShedder,
        settings: ShedSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.app = app
        self.shedder = shedder
        self.priority_of = RoutePriorities(settings)
        if registry is not None:
            registry.register(ShedCollector(shedder))


class ShedMiddleware(ShedLayer[ASGIApp]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = current_request()
        route = ctx.route if ctx is not None and ctx.route else UNMATCHED
        admitted = self.shedder.admit(route, self.priority_of(route))
        if isinstance(admitted, ShedDecision):
            await send_problem(
                send,
                admitted.code,
                admitted.detail,
                [("retry-after", admitted.retry_after_header)],
            )
            return
        status = 0

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # an exception or a cancellation gives the place back without a sample
        outcome = Outcome.IGNORED
        try:
            await self.app(scope, receive, watching_send)
            outcome = shed_outcome(status)
        finally:
            admitted.release(outcome)
