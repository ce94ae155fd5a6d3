"""The per-request observation core shared by the ASGI and WSGI middleware.

``begin`` runs before the application: it resolves the route template, picks
or mints the request id, extracts the caller's trace context (honoured only
from trusted sources), starts the server span and binds the request context.
``end`` runs when the response is complete: metrics, the SLI record, span
attributes and status, and one access-log line, then unbinds the context.

Nothing here does I/O on the request path: spans go to a batch processor,
SLI counts to an in-memory recorder flushed by a background thread, metrics
to prometheus_client's in-memory (or mmap) values, logs to the handlers the
application configured.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterable
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
)

from sloguard.context import (
    RequestContext,
    bind_request,
    current_request,
    new_request_id,
    reset_request,
    valid_request_id,
)
from sloguard.routing import UNMATCHED, RouteTable
from sloguard.settings import Settings
from sloguard.sli import SLIRecorder
from sloguard.telemetry._fastspan import fast_tracer
from sloguard.telemetry.logging import Redactor, hex_ids, log_direct
from sloguard.telemetry.metrics import HTTPMetrics
from sloguard.telemetry.propagation import extract
from sloguard.telemetry.sampling import RouteRatioSampler
from sloguard.telemetry.tracing import ForcedTraceIdGenerator

__all__ = ["CLIENT_CLOSED_REQUEST", "Observation", "Observer", "SourceNetworks"]

log = logging.getLogger("sloguard.observe")

#: Status recorded when the client disconnected before a response (nginx's 499).
CLIENT_CLOSED_REQUEST = 499
_KNOWN_METHODS = {
    m: m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
}
_TRACE_HEADERS = frozenset(
    {
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
        "x-b3-parentspanid",
        "x-trace-id",
    }
)
_EMPTY_CONTEXT = otel_context.Context()
_NETWORK_CACHE_LIMIT = 10_000


class SourceNetworks:
    """Is an address inside a configured set of networks? Cached per address."""

    __slots__ = ("_all", "_cache", "_networks")

    def __init__(self, networks: Iterable[str]) -> None:
        items = tuple(networks)
        self._all = "*" in items
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in items if n != "*")
        self._cache: dict[str, bool] = {}

    def __contains__(self, address: object) -> bool:
        if self._all:
            return True
        if not isinstance(address, str):
            return False
        hit = self._cache.get(address)
        if hit is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                hit = False
            else:
                hit = any(ip in net for net in self._networks)
            if len(self._cache) < _NETWORK_CACHE_LIMIT:
                self._cache[address] = hit
        return hit


class Observation:
    """What ``begin`` hands to ``end``: one request's in-flight state."""

    __slots__ = (
        "client",
        "context",
        "ctx_token",
        "logged_headers",
        "method",
        "otel_attached",
        "otel_token",
        "query",
        "request_id",
        "route",
        "span",
        "start",
        "user_agent",
    )
    client: str | None
    context: RequestContext
    ctx_token: Token[RequestContext | None] | None
    logged_headers: dict[str, str] | None
    method: str
    otel_attached: otel_context.Context | None
    otel_token: Token[otel_context.Context] | None
    query: bytes
    request_id: str
    route: str
    span: trace.Span | None
    start: float
    user_agent: str


class Observer:
    """Begins and ends the observation of one request (sans framework)."""

    def __init__(
        self,
        settings: Settings,
        *,
        tracer: Tracer | None,
        sampler: RouteRatioSampler | None,
        metrics: HTTPMetrics | None,
        recorder: SLIRecorder | None,
        routes: RouteTable,
        fast_spans: bool = True,
    ) -> None:
        self.settings = settings
        # The server span through FastTracer (same sampler, ids, processors;
        # about a third of the SDK span's cost, measured in benchmarks/observe.py).
        # fast_tracer hands back any tracer it cannot speed up unchanged.
        if tracer is not None and fast_spans:
            tracer = fast_tracer(tracer)
        self.tracer = tracer if settings.tracing.enabled else None
        self.sampler = sampler
        self.metrics = metrics if settings.metrics.enabled else None
        self.recorder = recorder
        self.routes = routes
        self.trusted = SourceNetworks(settings.tracing.trusted_sources)
        self.propagators = settings.tracing.propagators
        self.record_client = settings.tracing.record_client_address
        self.request_id_header = settings.request.request_id_header
        self.echo_request_id = settings.request.echo_request_id
        self.max_header = settings.request.max_header_bytes
        log_settings = settings.logging
        self.access_log = (
            logging.getLogger(log_settings.access_logger)
            if log_settings.enabled and log_settings.access_log
            else None
        )
        self.logged = frozenset(log_settings.logged_headers)
        self.redactor = Redactor(log_settings.redact_headers, log_settings.redact_query_params)
        self.interesting = frozenset(
            {*_TRACE_HEADERS, self.request_id_header, "user-agent", *self.logged}
        )

    def begin(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: dict[str, str],
        client: str | None,
        scheme: str,
        server: tuple[str, int | None] | None,
        http_version: str,
    ) -> Observation:
        """Start observing. ``headers`` holds only names in :attr:`interesting`."""
        obs = Observation()
        obs.start = time.perf_counter()
        obs.method = method = _KNOWN_METHODS.get(method, "_OTHER")
        obs.route = route = self.routes.resolve(raw_path)
        obs.query = query
        obs.client = client
        obs.user_agent = headers.get("user-agent", "")
        obs.logged_headers = (
            {
                name: self.redactor.header(name, headers[name])
                for name in self.logged
                if name in headers
            }
            if self.logged
            else None
        )
        incoming_id = headers.get(self.request_id_header)
        request_id = (incoming_id is not None and valid_request_id(incoming_id)) or new_request_id()
        obs.request_id = request_id
        obs.context = ctx = RequestContext(request_id, method, raw_path.decode("latin-1"), route)
        obs.span = None
        obs.otel_attached = None
        obs.otel_token = None
        if self.tracer is not None:
            obs.span = span = self._start_span(obs, headers, client, scheme, server, http_version)
            # the access line and the records the request logs reuse these
            # strings (hex_ids remembers the last span context it formatted)
            ctx.trace_id, ctx.span_id = hex_ids(span.get_span_context())
            obs.otel_attached = attached = trace.set_span_in_context(span, _EMPTY_CONTEXT)
            obs.otel_token = otel_context.attach(attached)
        obs.ctx_token = bind_request(ctx)
        if self.metrics is not None:
            self.metrics.started(method)
        return obs

    def _start_span(
        self,
        obs: Observation,
        headers: dict[str, str],
        client: str | None,
        scheme: str,
        server: tuple[str, int | None] | None,
        http_version: str,
    ) -> trace.Span:
        assert self.tracer is not None
        route = obs.route
        parent = _EMPTY_CONTEXT
        links: list[Link] = []
        incoming = (
            None if _TRACE_HEADERS.isdisjoint(headers) else extract(headers, self.propagators)
        )
        if incoming is not None:
            if client in self.trusted:
                if incoming.span_id:
                    sampled = incoming.sampled
                    if sampled is None:
                        sampled = self._root_decision(incoming.trace_id, route)
                    parent_ctx = SpanContext(
                        incoming.trace_id,
                        incoming.span_id,
                        is_remote=True,
                        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0),
                        trace_state=TraceState(list(incoming.tracestate)),
                    )
                    parent = trace.set_span_in_context(NonRecordingSpan(parent_ctx), _EMPTY_CONTEXT)
                else:
                    ForcedTraceIdGenerator.force_next(incoming.trace_id)
            elif incoming.span_id:
                links.append(
                    Link(
                        SpanContext(incoming.trace_id, incoming.span_id, is_remote=True),
                        {"sloguard.link.reason": "untrusted-source"},
                    )
                )
        name = obs.method if route == UNMATCHED else f"{obs.method} {route}"
        # Every attribute goes in at start: one validation pass instead of a
        # locked set_attributes later (4 us less per sampled span, measured).
        attributes: dict[str, Any] = {
            "http.route": route,
            "http.request.method": obs.method,
            "url.path": obs.context.path,
            "url.scheme": scheme,
            "network.protocol.version": http_version,
        }
        if obs.query:
            attributes["url.query"] = self.redactor.query(obs.query.decode("latin-1"))
        if server is not None:
            attributes["server.address"] = server[0]
            if server[1] is not None:
                attributes["server.port"] = server[1]
        if client is not None and self.record_client:
            attributes["client.address"] = client
        if obs.user_agent:
            attributes["user_agent.original"] = obs.user_agent
        if incoming is not None and incoming.span_id == 0 and client not in self.trusted:
            attributes["sloguard.untrusted_trace_id"] = format(incoming.trace_id, "032x")
        return self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes, links=links
        )

    def _root_decision(self, trace_id: int, route: str) -> bool:
        return self.sampler.root_decision(trace_id, route) if self.sampler is not None else True

    def end(
        self,
        obs: Observation,
        status: int,
        size: int,
        exc: BaseException | None = None,
        route_template: str | None = None,
    ) -> None:
        """Finish observing. ``route_template``: what the framework matched, if known."""
        duration = time.perf_counter() - obs.start
        now = time.time()
        ctx = obs.context
        route = obs.route
        if route == UNMATCHED and route_template:
            route = ctx.route = route_template
        method = obs.method
        if self.metrics is not None:
            self.metrics.finished(method, route, status, duration, size)
        if self.recorder is not None:
            self.recorder.record(route, method, status, duration, ctx.error_code, now)
        span = obs.span
        if obs.ctx_token is None:  # unbound (WSGI, after the app returned): bind for the log
            self.rebind(obs)
        try:
            if span is not None:
                if span.is_recording():
                    self._finish_span(span, obs, route, status, exc)
                span.end()
            if self.access_log is not None and self.access_log.isEnabledFor(logging.INFO):
                self._log_access(obs, status, size, duration, exc, now)
        finally:
            self.unbind(obs)

    def unbind(self, obs: Observation) -> None:
        """Take the request's context off this thread (it may be bound again)."""
        if obs.otel_token is not None:
            otel_context.detach(obs.otel_token)
            obs.otel_token = None
        if obs.ctx_token is not None:
            # ValueError: unbound in another context than it was bound in.
            with contextlib.suppress(ValueError):
                reset_request(obs.ctx_token)
            obs.ctx_token = None

    def rebind(self, obs: Observation) -> None:
        """Bind the request's context (and span) to this thread again."""
        if obs.span is not None and obs.otel_token is None:
            obs.otel_attached = attached = trace.set_span_in_context(obs.span, _EMPTY_CONTEXT)
            obs.otel_token = otel_context.attach(attached)
        if obs.ctx_token is None:
            obs.ctx_token = bind_request(obs.context)

    def _finish_span(
        self, span: trace.Span, obs: Observation, route: str, status: int, exc: BaseException | None
    ) -> None:
        attributes: dict[str, Any] = {"http.response.status_code": status}
        if route != obs.route:
            span.update_name(f"{obs.method} {route}")
            attributes["http.route"] = route
        if obs.context.error_code:
            attributes["sloguard.error_code"] = obs.context.error_code
        if exc is not None:
            span.record_exception(exc)
            attributes["error.type"] = type(exc).__qualname__
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
        elif status >= 500:
            attributes["error.type"] = str(status)
            span.set_status(Status(StatusCode.ERROR))
        span.set_attributes(attributes)

    def _log_access(
        self,
        obs: Observation,
        status: int,
        size: int,
        duration: float,
        exc: BaseException | None,
        now: float,
    ) -> None:
        assert self.access_log is not None
        path = obs.context.path
        extra: dict[str, Any] = {
            "http_method": obs.method,
            "path": path,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
            "response_bytes": size,
        }
        if obs.query:
            extra["query"] = self.redactor.query(obs.query.decode("latin-1"))
        if obs.client is not None:
            extra["client"] = obs.client
        if obs.user_agent:
            extra["user_agent"] = obs.user_agent
        if obs.logged_headers:
            extra["headers"] = obs.logged_headers
        if obs.context.error_code:
            extra["error_code"] = obs.context.error_code
        if exc is not None:
            extra["error"] = type(exc).__qualname__
        logger = self.access_log
        args = (obs.method, path, status)
        ctx = obs.context
        context = None
        if (
            obs.otel_attached is not None
            and otel_context.get_current() is obs.otel_attached
            and current_request() is ctx
        ):
            # what the record factory would find: this request, its own span
            context = (ctx.trace_id, ctx.span_id, ctx.request_id, ctx.route)
        # The line straight to sloguard's JSON handlers when nothing else
        # would see the record: a third of the logging path's cost, measured.
        if log_direct(logger, logging.INFO, "%s %s %d", args, extra, now, context):
            return
        # makeRecord + handle: what Logger.info does, without its stack walk
        # for the caller's file and line (the access line has no caller).
        record = logger.makeRecord(
            logger.name, logging.INFO, "", 0, "%s %s %d", args, None, extra=extra
        )
        logger.handle(record)
