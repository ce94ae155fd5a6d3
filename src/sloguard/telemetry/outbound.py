"""Outbound HTTP with httpx: a client span per request and propagated context.

Two ways in, pick one (docs/observe.md):

* wrap a transport: ``httpx.AsyncClient(transport=AsyncTracedTransport())``
  (or ``TracedTransport`` for ``httpx.Client``); it wraps httpx's default
  transport, or the one you pass;
* :func:`instrument_httpx` patches httpx's own ``HTTPTransport`` and
  ``AsyncHTTPTransport`` once per process, so every client — including those
  inside libraries — is covered. Idempotent; :func:`uninstrument_httpx` undoes it.

Each request gets a CLIENT span, child of the current span (the server span of
the request being served), and carries ``traceparent``/``tracestate`` (and
``b3`` if configured) so the next service joins the trace. The query string
is redacted in ``url.full``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from sloguard.telemetry.logging import Redactor
from sloguard.telemetry.propagation import inject

__all__ = [
    "AsyncTracedTransport",
    "TracedTransport",
    "instrument_httpx",
    "uninstrument_httpx",
]

_TRACER_NAME = "sloguard.httpx"
_DEFAULT_REDACTOR = Redactor(
    (), ("token", "access_token", "api_key", "key", "password", "secret", "sig", "signature")
)
_patch_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}


class _ClientSpans:
    __slots__ = ("_tracer", "propagators", "redactor")

    def __init__(
        self,
        tracer: Tracer | None,
        propagators: Sequence[str],
        redactor: Redactor | None,
    ) -> None:
        self._tracer = tracer
        self.propagators = tuple(propagators)
        self.redactor = redactor or _DEFAULT_REDACTOR

    @property
    def tracer(self) -> Tracer:
        # Resolved lazily: the global provider may be installed after the client is built.
        return self._tracer or trace.get_tracer(_TRACER_NAME)

    def start(self, request: httpx.Request) -> trace.Span:
        if otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY):
            # an exporter's own calls (OpenTelemetry suppresses instrumentation
            # while it exports): tracing them would feed spans back forever
            return trace.INVALID_SPAN
        url = request.url
        query = url.query.decode("ascii", "replace")
        full = str(url.copy_with(query=None, fragment=None))
        if query:
            full = f"{full}?{self.redactor.query(query)}"
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "url.full": full,
            "server.address": url.host,
        }
        if url.port is not None:
            attributes["server.port"] = url.port
        span = self.tracer.start_span(request.method, kind=SpanKind.CLIENT, attributes=attributes)
        ctx = span.get_span_context()
        if ctx.is_valid:
            carrier: dict[str, str] = {}
            inject(
                carrier,
                ctx.trace_id,
                ctx.span_id,
                ctx.trace_flags.sampled,
                tuple(ctx.trace_state.items()),
                self.propagators,
            )
            request.headers.update(carrier)
        return span

    @staticmethod
    def finish(
        span: trace.Span, response: httpx.Response | None, exc: BaseException | None
    ) -> None:
        if response is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
        if exc is not None:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
        span.end()


def _send_traced(
    spans: _ClientSpans, send: Callable[[httpx.Request], httpx.Response], request: httpx.Request
) -> httpx.Response:
    span = spans.start(request)
    with trace.use_span(span, end_on_exit=False, record_exception=False):
        try:
            response = send(request)
        except BaseException as exc:
            spans.finish(span, None, exc)
            raise
    spans.finish(span, response, None)
    return response


async def _send_traced_async(
    spans: _ClientSpans,
    send: Callable[[httpx.Request], Awaitable[httpx.Response]],
    request: httpx.Request,
) -> httpx.Response:
    span = spans.start(request)
    with trace.use_span(span, end_on_exit=False, record_exception=False):
        try:
            response = await send(request)
        except BaseException as exc:
            spans.finish(span, None, exc)
            raise
    spans.finish(span, response, None)
    return response


class TracedTransport(httpx.BaseTransport):
    """A sync transport that traces and propagates, wrapping another transport."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        tracer: Tracer | None = None,
        propagators: Sequence[str] = ("tracecontext",),
        redactor: Redactor | None = None,
    ) -> None:
        self._transport = transport or httpx.HTTPTransport()
        self._spans = _ClientSpans(tracer, propagators, redactor)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return _send_traced(self._spans, self._transport.handle_request, request)

    def close(self) -> None:
        self._transport.close()


class AsyncTracedTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`TracedTransport`."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        tracer: Tracer | None = None,
        propagators: Sequence[str] = ("tracecontext",),
        redactor: Redactor | None = None,
    ) -> None:
        self._transport = transport or httpx.AsyncHTTPTransport()
        self._spans = _ClientSpans(tracer, propagators, redactor)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await _send_traced_async(self._spans, self._transport.handle_async_request, request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def instrument_httpx(
    *,
    tracer: Tracer | None = None,
    propagators: Sequence[str] = ("tracecontext",),
    redactor: Redactor | None = None,
) -> bool:
    """Patch httpx's default transports process-wide. Returns False if already done.

    ``tracer`` None uses the global tracer provider at each request.
    """
    spans = _ClientSpans(tracer, propagators, redactor)
    with _patch_lock:
        if _originals:
            return False
        sync_original = httpx.HTTPTransport.handle_request
        async_original = httpx.AsyncHTTPTransport.handle_async_request

        def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            return _send_traced(spans, functools.partial(sync_original, self), request)

        async def handle_async_request(
            self: httpx.AsyncHTTPTransport, request: httpx.Request
        ) -> httpx.Response:
            send = functools.partial(async_original, self)
            return await _send_traced_async(spans, send, request)

        _originals["sync"] = sync_original
        _originals["async"] = async_original
        httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]
        return True


def uninstrument_httpx() -> bool:
    """Undo :func:`instrument_httpx`. Returns False if it was not installed."""
    with _patch_lock:
        if not _originals:
            return False
        httpx.HTTPTransport.handle_request = _originals.pop("sync")  # type: ignore[method-assign]
        httpx.AsyncHTTPTransport.handle_async_request = _originals.pop("async")  # type: ignore[method-assign]
        return True
