"""Inbound circuit breakers: settings → breakers, and the middleware that
asks them before the application runs.

Each ``resilience.breakers`` entry guards the route templates its globs
match (first entry wins for a route): one breaker for all of them, or one per
route template with ``per_route``. A request is admitted by the breaker
(``admit_async``: on the closed path no I/O, also with Redis-shared state),
refused with ``BRK_503`` and ``Retry-After`` while it is open, and its
outcome is recorded when the response starts: a status in
``failure_statuses`` or an exception from the app counts as a failure, a
cancelled request counts as neither. The response itself is never changed.
"""

from __future__ import annotations

import math
import threading
import time

from prometheus_client import CollectorRegistry

from sloguard.asgi._reject import send_problem
from sloguard.asgi._types import ASGIApp, Message, Receive, Scope, Send
from sloguard.context import current_request
from sloguard.resilience._breaker_metrics import BreakerMetrics
from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import Admission, BreakerBackend, BreakerPolicy, Outcome
from sloguard.routing import UNMATCHED, GlobSet
from sloguard.settings._resilience import (
    BreakerSettings,
    RedisStateSettings,
    ResilienceSettings,
    _TripSettings,
)

__all__ = [
    "REFUSED_CODE",
    "REFUSED_DETAIL",
    "BreakerMiddleware",
    "InboundBreakers",
    "policy_from_settings",
    "retry_after",
]

#: how an open breaker answers, in ASGI and WSGI alike
REFUSED_CODE = "BRK_503"
REFUSED_DETAIL = "the service is failing and refuses calls for a while"

_TRIP_FIELDS = tuple(
    name for name in BreakerPolicy.__dataclass_fields__ if name in _TripSettings.model_fields
)


def retry_after(admission: Admission) -> str:
    """The ``Retry-After`` value for a refused admission: whole seconds, at least 1."""
    return str(max(1, math.ceil(admission.retry_after_s)))


def policy_from_settings(entry: _TripSettings) -> BreakerPolicy:
    """The runtime policy of an inbound or outbound breaker entry."""
    return BreakerPolicy(**{name: getattr(entry, name) for name in _TRIP_FIELDS})


def classifier_from_settings(entry: _TripSettings) -> FailureClassifier:
    return FailureClassifier(failure_statuses=frozenset(entry.failure_statuses))


def backend_for(
    name: str, policy: BreakerPolicy, shared: bool, redis: RedisStateSettings
) -> BreakerBackend:
    if shared and redis.url is not None:
        from sloguard.resilience._redis_breaker import RedisBreakerBackend  # needs redis

        return RedisBreakerBackend(
            name,
            policy,
            url=redis.url,
            prefix=f"{redis.prefix}:breaker",
            sync_interval_s=redis.sync_interval_s,
            timeout_s=redis.timeout_s,
        )
    return LocalBreaker(name, policy)


class _Entry:
    __slots__ = ("classifier", "globs", "policy", "settings")

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.globs = GlobSet(settings.routes)
        self.policy = policy_from_settings(settings)
        self.classifier = classifier_from_settings(settings)


class InboundBreakers:
    """The breakers of one guarded app, created per route on first use."""

    def __init__(self, settings: ResilienceSettings, registry: CollectorRegistry | None) -> None:
        self._redis = settings.redis
        self._entries = [_Entry(entry) for entry in settings.breakers]
        self._by_route: dict[str, tuple[BreakerBackend, FailureClassifier] | None] = {}
        self._backends: dict[str, BreakerBackend] = {}
        self._lock = threading.Lock()
        self.metrics = BreakerMetrics(registry) if registry is not None else None

    def for_route(self, route: str) -> tuple[BreakerBackend, FailureClassifier] | None:
        try:
            return self._by_route[route]
        except KeyError:
            pass
        # misses are serialised: WSGI threads must not create one breaker twice
        with self._lock:
            found = None
            for entry in self._entries:
                if entry.globs.matches(route):
                    name = f"{entry.settings.name}:{route}" if entry.settings.per_route else None
                    found = (self._backend(name or entry.settings.name, entry), entry.classifier)
                    break
            if len(self._by_route) < 4096:
                self._by_route[route] = found
        return found

    def _backend(self, name: str, entry: _Entry) -> BreakerBackend:
        backend = self._backends.get(name)
        if backend is None:
            backend = backend_for(name, entry.policy, entry.settings.shared, self._redis)
            self._backends[name] = backend
            if self.metrics is not None:
                self.metrics.watch(backend)
        return backend

    def backends(self) -> list[BreakerBackend]:
        return list(self._backends.values())

    def close(self) -> None:
        for backend in self._backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()


class BreakerMiddleware:
    def __init__(self, app: ASGIApp, breakers: InboundBreakers) -> None:
        self.app = app
        self.breakers = breakers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = current_request()
        found = self.breakers.for_route(ctx.route if ctx is not None and ctx.route else UNMATCHED)
        if found is None:
            await self.app(scope, receive, send)
            return
        backend, classifier = found
        admission = await backend.admit_async()
        if not admission.allowed:
            await send_problem(
                send, REFUSED_CODE, REFUSED_DETAIL, [("retry-after", retry_after(admission))]
            )
            return
        outcome = Outcome.IGNORED
        started = time.monotonic()

        async def watching_send(message: Message) -> None:
            nonlocal outcome
            if message["type"] == "http.response.start":
                outcome = classifier.classify_status(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as exc:
            outcome = classifier.classify_exception(exc)
            raise
        finally:
            backend.record(admission, outcome, time.monotonic() - started)
