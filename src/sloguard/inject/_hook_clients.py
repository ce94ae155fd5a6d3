"""HTTP clients under ``sloguard run``: a client span per request and the trace carried along.

* httpx: ``Client.__init__`` / ``AsyncClient.__init__`` wrap the client's
  transports (its default one and each proxy mount) in sloguard's
  ``TracedTransport``, so mock, ASGI and custom transports are covered too.
  A transport that already has a ``TracedTransport`` among its layers (the
  application wired one itself) is left alone, and so is every client while
  ``instrument_httpx()`` patches httpx's own transports. With
  ``resilience.outbound.enabled`` the transports also get breakers, when this
  sloguard has its breaker transport.
* requests: ``HTTPAdapter.send``, so each request on the wire (each redirect
  hop too) gets its own span, whatever session sent it.
* aiohttp: ``ClientSession.__init__`` adds a ``TraceConfig`` whose signals
  open and close the span (one per ``session.request()``, redirects included).

Spans follow OpenTelemetry's HTTP client conventions: named after the method,
with ``http.request.method``, ``url.full`` (credentials dropped, sensitive
query parameters masked), ``server.address``, ``server.port`` and
``http.response.status_code``; the headers of ``tracing.propagators`` go out.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode

from sloguard.inject._frameworks import Hook, framework_off
from sloguard.telemetry.logging import Redactor
from sloguard.telemetry.propagation import inject

if TYPE_CHECKING:
    from sloguard.inject._frameworks import Installation
    from sloguard.settings import Settings

__all__ = ["CLIENT_HOOKS", "ClientSpans"]

_MAX_LAYERS = 16


class ClientSpans:
    """Opens and closes client spans for libraries that hand over a method, a URL and headers."""

    def __init__(self, inst: Installation, library: str) -> None:
        cfg = inst.settings
        self._tracer = inst.tracer
        self._name = f"sloguard.{library}"
        self._propagators = tuple(cfg.tracing.propagators)
        self._redactor = Redactor(cfg.logging.redact_headers, cfg.logging.redact_query_params)

    def start(self, method: str, url: str, headers: MutableMapping[str, str]) -> trace.Span:
        """A started CLIENT span; ``headers`` get the trace headers of its context.

        Nothing (a non-recording span, no headers) while OpenTelemetry
        suppresses instrumentation: the exporters' own HTTP calls, which would
        otherwise be traced and exported in an endless loop.
        """
        if otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY):
            return trace.INVALID_SPAN
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        query = self._redactor.query(parts.query)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.full": urlunsplit((parts.scheme, netloc, parts.path, query, "")),
            "server.address": host,
        }
        if parts.port is not None:
            attributes["server.port"] = parts.port
        tracer = self._tracer or trace.get_tracer(self._name)
        span = tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        ctx = span.get_span_context()
        if ctx.is_valid:
            state = tuple(ctx.trace_state.items())
            sampled = ctx.trace_flags.sampled
            inject(headers, ctx.trace_id, ctx.span_id, sampled, state, self._propagators)
        return span

    @staticmethod
    def finish(span: trace.Span, status: int | None, exc: BaseException | None) -> None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
        if exc is not None:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
        span.end()


# -- httpx ------------------------------------------------------------------------------


def _transport_layers(transport: object) -> list[object]:
    found: list[object] = []
    while transport is not None and len(found) < _MAX_LAYERS:
        found.append(transport)
        transport = getattr(transport, "_transport", None)
    return found


def _install_httpx(module: types.ModuleType, inst: Installation) -> str:
    from sloguard.telemetry import outbound

    cfg = inst.settings
    traced = (outbound.TracedTransport, outbound.AsyncTracedTransport)
    redactor = Redactor(cfg.logging.redact_headers, cfg.logging.redact_query_params)
    options = {"tracer": inst.tracer, "propagators": cfg.tracing.propagators, "redactor": redactor}
    breakers = _breaker_wrappers(inst)
    breakers_of = _breaker_classes() if breakers[0] is not None else ()
    tracing = cfg.tracing.enabled

    def wrapper(
        traced_class: type[Any], breaker: Callable[[Any], Any] | None
    ) -> Callable[[Any, bool], Any]:
        def wrap(transport: Any, trace_it: bool) -> Any:
            if transport is None:
                return None
            layers = _transport_layers(transport)
            if breaker is not None and not any(isinstance(layer, breakers_of) for layer in layers):
                transport = breaker(transport)
            if trace_it and not any(isinstance(layer, traced) for layer in layers):
                transport = traced_class(transport, **options)
            return transport

        return wrap

    def patch(cls: Any, wrap: Callable[[Any, bool], Any]) -> None:
        original = cls.__init__

        @functools.wraps(original)
        def traced_init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            # While instrument_httpx() is on, httpx's own transports trace already.
            trace_it = tracing and not outbound._originals
            self._transport = wrap(self._transport, trace_it)
            self._mounts = {pattern: wrap(t, trace_it) for pattern, t in self._mounts.items()}

        inst.patch(cls, "__init__", traced_init)

    patch(module.Client, wrapper(outbound.TracedTransport, breakers[0]))
    patch(module.AsyncClient, wrapper(outbound.AsyncTracedTransport, breakers[1]))
    parts = [name for name, on in (("traced", tracing), ("breakers", breakers[0])) if on]
    return f"Client/AsyncClient.__init__: transports wrapped ({' + '.join(parts)})"


def _breaker_classes() -> tuple[type[Any], ...]:
    from sloguard.resilience import _transport

    return (_transport.BreakerTransport, _transport.AsyncBreakerTransport)


def _breaker_wrappers(
    inst: Installation,
) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]:
    """Sync and async transport wrappers adding breakers, or Nones (the report says why).

    One registry for the installation: every client calling a host shares its
    breaker. With ``resilience.redis.url`` and ``outbound.shared`` the state
    is shared through Redis with every other instance, as inbound breakers'.
    """
    resilience = inst.settings.resilience
    outbound = resilience.outbound
    if not outbound.enabled:
        return None, None
    if not resilience.enabled:
        inst.report.skipped("httpx breakers", "resilience.enabled is false")
        return None, None
    from sloguard.asgi._breaker_layer import (
        backend_for,
        classifier_from_settings,
        policy_from_settings,
    )
    from sloguard.resilience import _breaker, _transport

    policy = policy_from_settings(outbound)
    classifier = classifier_from_settings(outbound)
    redis = resilience.redis
    shared = outbound.shared and redis.url is not None
    backend_factory = None
    if shared:

        def backend_factory(name: str, policy: Any) -> Any:
            return backend_for(name, policy, True, redis)

    registry = _breaker.BreakerRegistry(
        policy, classifier=classifier, backend_factory=backend_factory
    )
    key, routes = outbound.key, outbound.routes
    try:
        _transport.breaker_key(key, routes)  # refuse bad settings here, not in every Client()
    except ValueError as exc:
        inst.report.failed("httpx breakers", f"resilience.outbound: {exc}")
        return None, None
    where = "shared through Redis" if shared else "local to the process"
    inst.report.instrumented("httpx breakers", f"one breaker per {key}, state {where}")

    def sync_wrap(transport: Any) -> Any:
        return _transport.BreakerTransport(transport, key=key, routes=routes, registry=registry)

    def async_wrap(transport: Any) -> Any:
        return _transport.AsyncBreakerTransport(
            transport, key=key, routes=routes, registry=registry
        )

    return sync_wrap, async_wrap


# -- requests ---------------------------------------------------------------------------


def _install_requests(module: types.ModuleType, inst: Installation) -> str:
    adapter = module.adapters.HTTPAdapter
    original = adapter.send
    spans = ClientSpans(inst, "requests")

    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        span = spans.start(request.method or "GET", request.url or "", request.headers)
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            try:
                response = original(self, request, *args, **kwargs)
            except BaseException as exc:
                spans.finish(span, None, exc)
                raise
        spans.finish(span, response.status_code, None)
        return response

    inst.patch(adapter, "send", send)
    return "HTTPAdapter.send: a client span and trace headers per request"


# -- aiohttp ----------------------------------------------------------------------------


def _install_aiohttp(module: types.ModuleType, inst: Installation) -> str:
    spans = ClientSpans(inst, "aiohttp")
    config = module.TraceConfig()

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        span = spans.start(params.method, str(params.url), params.headers)
        token = otel_context.attach(trace.set_span_in_context(span))
        ctx.sloguard_span = (span, token)

    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        span, token = ctx.sloguard_span
        otel_context.detach(token)
        spans.finish(span, params.response.status, None)

    async def on_exception(session: Any, ctx: Any, params: Any) -> None:
        span, token = ctx.sloguard_span
        otel_context.detach(token)
        spans.finish(span, None, params.exception)

    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_request_exception.append(on_exception)
    session = module.ClientSession
    original = session.__init__

    @functools.wraps(original)
    def traced_init(self: Any, *args: Any, trace_configs: Any = None, **kwargs: Any) -> None:
        configs = list(trace_configs or ())
        if config not in configs:
            configs.append(config)
        original(self, *args, trace_configs=configs, **kwargs)

    inst.patch(session, "__init__", traced_init)
    return "ClientSession.__init__: a TraceConfig with a client span per request"


def _needs_tracing(name: str) -> Callable[[Settings], str | None]:
    def unwanted(settings: Settings) -> str | None:
        if not settings.tracing.enabled and not (
            name == "httpx" and settings.resilience.outbound.enabled
        ):
            return "tracing.enabled is false"
        return framework_off(settings, name)

    return unwanted


CLIENT_HOOKS = (
    Hook("httpx", "httpx.Client", "httpx", _install_httpx, _needs_tracing("httpx")),
    Hook(
        "requests",
        "requests.adapters.HTTPAdapter",
        "requests",
        _install_requests,
        _needs_tracing("requests"),
    ),
    Hook(
        "aiohttp", "aiohttp.ClientSession", "aiohttp", _install_aiohttp, _needs_tracing("aiohttp")
    ),
)
