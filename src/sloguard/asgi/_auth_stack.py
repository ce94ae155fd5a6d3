"""The auth layer of the guard: gate, policy holder and source, metrics, lifecycle.

Built only when ``auth.enabled``. A policy file is loaded before the service
takes traffic (a broken file at start-up is an error: no service should start
unprotected) and then polled; a Redis policy source is started on the first
request or at lifespan start-up, whichever comes first, and stopped at close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sloguard.asgi._auth_build import build_gate
from sloguard.asgi._types import ASGIApp, Receive, Scope, Send
from sloguard.asgi.auth import AuthMetrics, AuthMiddleware, WSGIApp, WSGIAuthMiddleware
from sloguard.auth._sources import FilePolicySource, PolicyHolder, RedisPolicySource
from sloguard.settings import AuthSettings

__all__ = ["AuthLayer"]


class _PolicyCollector(Collector):
    def __init__(self, holder: PolicyHolder, redis: RedisPolicySource | None) -> None:
        self.holder = holder
        self.redis = redis

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        reloads = CounterMetricFamily(
            "sloguard_auth_policy_reloads",
            "Policy documents loaded or rejected.",
            labels=["result"],
        )
        reloads.add_metric(["ok"], self.holder.reloads_ok)
        reloads.add_metric(["rejected"], self.holder.reloads_failed)
        yield reloads
        yield GaugeMetricFamily(
            "sloguard_auth_policy_version",
            "Version number of the policy snapshot in force (0: none loaded).",
            value=self.holder.snapshot.version if self.holder.loaded else 0,
        )
        if self.redis is not None:
            yield GaugeMetricFamily(
                "sloguard_auth_policy_source_connected",
                "1 while the Redis policy source is subscribed, 0 while it reconnects.",
                value=1 if self.redis.connected else 0,
            )


class AuthLayer:
    """The auth parts for one guarded app; ``asgi(app)`` / ``wsgi(app)`` wrap it."""

    def __init__(
        self,
        settings: AuthSettings,
        registry: CollectorRegistry,
        *,
        route_permissions: Mapping[str, str] | None = None,
    ) -> None:
        policy = settings.policy
        self.settings = settings
        self.holder = PolicyHolder(cache_size=settings.token_cache_size or 1)
        self.file_source: FilePolicySource | None = None
        self.redis_source: RedisPolicySource | None = None
        if policy.file is not None:
            self.file_source = FilePolicySource(
                policy.file, self.holder, poll_interval_s=policy.poll_interval_s
            )
            self.file_source.start()
        elif policy.redis_url is not None:
            self.redis_source = RedisPolicySource(
                policy.redis_url, policy.redis_key, policy.redis_channel, self.holder
            )
        has_policy = self.file_source is not None or self.redis_source is not None
        holder = self.holder
        self.gate = build_gate(
            settings,
            (lambda: holder.snapshot) if has_policy else None,
            route_permissions=route_permissions,
        )
        self.gate.cache = holder.cache
        self.metrics = AuthMetrics(registry)
        registry.register(_PolicyCollector(holder, self.redis_source))
        self._redis_started: asyncio.Task[None] | None = None

    def asgi(self, app: ASGIApp) -> ASGIApp:
        middleware = AuthMiddleware(
            app, self.gate, metrics=self.metrics, principal_on_span=self.settings.principal_on_span
        )
        if self.redis_source is None:
            return middleware

        async def starting(scope: Scope, receive: Receive, send: Send) -> None:
            if self._redis_started is None:
                await self.start()
            await middleware(scope, receive, send)

        return starting

    def wsgi(self, app: WSGIApp) -> WSGIApp:
        if self.redis_source is not None:
            raise ValueError(
                "auth.policy.redis_url needs an asyncio server; WSGI apps use auth.policy.file"
            )
        return WSGIAuthMiddleware(
            app, self.gate, metrics=self.metrics, principal_on_span=self.settings.principal_on_span
        )

    async def start(self) -> None:
        if self.redis_source is not None and self._redis_started is None:
            self._redis_started = asyncio.ensure_future(self.redis_source.start())
            await self._redis_started

    def close(self) -> None:
        if self.file_source is not None:
            self.file_source.stop()

    async def aclose(self) -> None:
        self.close()
        if self.redis_source is not None and self._redis_started is not None:
            await self.redis_source.stop()


def permissions_from_routes(routes: Iterable[tuple[str, object]]) -> dict[str, str]:
    """Route template -> named permission, for endpoints marked with ``requires()``."""
    found: dict[str, str] = {}
    for template, endpoint in routes:
        permission = getattr(endpoint, "__sloguard_permission__", None)
        if isinstance(permission, str):
            found[template] = permission
    return found
