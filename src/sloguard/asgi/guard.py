"""``guard(app, settings)``: build the sloguard stack around an ASGI app.

The stack is the observe layer (traces, RED metrics, JSON logs, SLI
recording), the ``/metrics`` and admin endpoints, and the protection layers
between observe and the app: load shedding, rate limits, auth, inbound
breakers (see ``_resilience_stack`` for their order). Guarding an app twice
returns the first guard, and a guard marks the app it wraps, so an app that
calls ``guard()`` itself and also runs under ``sloguard run`` is instrumented
once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from sloguard._marker import mark_guarded
from sloguard.asgi._auth_stack import AuthLayer, permissions_from_routes
from sloguard.asgi._resilience_stack import ResilienceLayer
from sloguard.asgi._routes import endpoints_from_app, templates_from_app
from sloguard.asgi._stack import Stack
from sloguard.asgi._types import ASGIApp, Message, Receive, Scope, Send
from sloguard.asgi.admin import AdminEndpoints
from sloguard.asgi.observe import ObserveMiddleware
from sloguard.settings import Settings, load_settings
from sloguard.telemetry.tracing import sampling_config

__all__ = ["Guard", "guard"]

log = logging.getLogger("sloguard")


class Guard:
    """The guarded application: an ASGI callable with its parts as attributes."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        settings_path: str | Path | None = None,
        registry: CollectorRegistry | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings(settings_path)
        self._settings_path = settings_path
        self.wrapped = app
        mark_guarded(app)
        cfg = self.settings
        self.stack = Stack(
            cfg,
            templates_from_app(app),
            registry=registry,
            span_processors=span_processors,
            tracer_provider=tracer_provider,
        )
        self.registry = self.stack.registry
        self.metrics = self.stack.metrics
        self.recorder = self.stack.recorder
        self.flusher = self.stack.flusher
        self.sampler = self.stack.sampler
        self.tracer_provider = self.stack.tracer_provider
        self.observer = self.stack.observer
        self._metrics_path = (
            cfg.metrics.path if cfg.metrics.enabled and cfg.metrics.port is None else None
        )
        self._metrics_server: Any = None
        if cfg.metrics.enabled and cfg.metrics.port is not None:
            self._serve_metrics_port(cfg)
        self.admin = (
            AdminEndpoints(cfg.admin, self.sampler, self.reload) if cfg.admin.enabled else None
        )
        self._excluded = frozenset(cfg.metrics.exclude_paths)
        self.auth: AuthLayer | None = None
        self.resilience: ResilienceLayer | None = None
        inner: ASGIApp = app
        if cfg.resilience.enabled:
            self.resilience = ResilienceLayer(cfg.resilience, self.registry)
            inner = self.resilience.inner(inner)
        if cfg.auth.enabled:
            self.auth = AuthLayer(
                cfg.auth,
                self.registry,
                route_permissions=permissions_from_routes(endpoints_from_app(app)),
            )
            inner = self.auth.asgi(inner)
        if self.resilience is not None:
            inner = self.resilience.outer(inner)
        self.app = ObserveMiddleware(inner, self.observer)

    def _serve_metrics_port(self, cfg: Settings) -> None:
        port = cfg.metrics.port
        assert port is not None
        registry = self.registry
        if self.metrics is not None and self.metrics.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=str(self.metrics.multiprocess_dir)
            )
        try:
            self._metrics_server, _ = start_http_server(
                port, addr=cfg.metrics.host, registry=registry
            )
        except OSError as exc:
            # Another worker of the same service holds the port; in multiprocess
            # mode it serves every worker's values, so this is not an error.
            log.info(
                "metrics port %s:%s not bound by this process: %s", cfg.metrics.host, port, exc
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == self._metrics_path:
                await self._serve_metrics(scope, send)
                return
            if self.admin is not None and self.admin.handles(path):
                await self.admin(scope, receive, send)
                return
            if path in self._excluded:
                await self.wrapped(scope, receive, send)
                return
            await self.app(scope, receive, send)
        elif kind == "lifespan":
            await self.wrapped(scope, receive, self._lifespan_send(send))
        else:
            await self.wrapped(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                if self.auth is not None:
                    await self.auth.start()
            elif kind in {"lifespan.shutdown.complete", "lifespan.shutdown.failed"}:
                if self.auth is not None:
                    await self.auth.aclose()
                if self.resilience is not None:
                    await self.resilience.aclose()
                self.close()
            await send(message)

        return lifespan_send

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        accept = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
        body, content_type = self.stack.scrape(accept)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def reload(self) -> dict[str, Any]:
        """Re-read the settings file; apply what changes live (sampling, log level).

        An invalid file raises :class:`~sloguard.settings.ConfigError` and the
        running settings stay in force.
        """
        new = load_settings(self._settings_path)
        applied: dict[str, Any] = {}
        if self.sampler is not None:
            self.sampler.update(sampling_config(new.tracing))
            applied["sampling"] = {
                "ratio": new.tracing.sample_ratio,
                "route_ratios": dict(new.tracing.route_sample_ratios),
            }
        if new.logging.level != self.settings.logging.level:
            logging.getLogger().setLevel(new.logging.level)
            applied["logging.level"] = new.logging.level
        self.settings = self.settings.model_copy(
            update={
                "tracing": self.settings.tracing.model_copy(
                    update={
                        "sample_ratio": new.tracing.sample_ratio,
                        "route_sample_ratios": new.tracing.route_sample_ratios,
                    }
                ),
                "logging": self.settings.logging.model_copy(update={"level": new.logging.level}),
            }
        )
        log.info("settings reloaded", extra={"applied": applied})
        return {"reloaded": True, "applied": applied}

    def close(self) -> None:
        """Flush SLI counts and spans, release resources. Idempotent."""
        if self.auth is not None:
            self.auth.close()
        if self.resilience is not None:
            self.resilience.close()
        self.stack.close()
        server, self._metrics_server = self._metrics_server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def guard(app: ASGIApp, settings: Settings | None = None, **options: Any) -> Guard:
    """Wrap ``app`` in the sloguard stack (idempotent: a Guard is returned as is)."""
    if isinstance(app, Guard):
        return app
    return Guard(app, settings, **options)
