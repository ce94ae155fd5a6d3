"""httpx clients record a client span and propagate the trace."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sloguard.telemetry.outbound import (
    AsyncTracedTransport,
    TracedTransport,
    instrument_httpx,
    uninstrument_httpx,
)
from sloguard.telemetry.propagation import parse_traceparent


@pytest.fixture
def tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def echo_headers(request: httpx.Request) -> httpx.Response:
    status = 503 if request.url.path == "/down" else 200
    return httpx.Response(status, json=dict(request.headers))


def test_sync_client_injects_traceparent_of_a_child_client_span(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = tracing
    tracer = provider.get_tracer("t")
    transport = TracedTransport(httpx.MockTransport(echo_headers), tracer=tracer)
    with (
        tracer.start_as_current_span("server") as server,
        httpx.Client(transport=transport) as client,
    ):
        sent = client.get("http://backend.test/items?token=x").json()
    client_span = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT)
    trace_id, span_id, flags = parse_traceparent(sent["traceparent"])
    assert trace_id == server.get_span_context().trace_id
    assert span_id == client_span.context.span_id
    assert client_span.parent.span_id == server.get_span_context().span_id
    assert client_span.attributes["url.full"] == "http://backend.test/items?token=[REDACTED]"


def test_async_client_marks_server_errors(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = tracing
    transport = AsyncTracedTransport(
        httpx.MockTransport(echo_headers), tracer=provider.get_tracer("t")
    )

    async def call() -> int:
        async with httpx.AsyncClient(transport=transport) as client:
            return (await client.get("http://backend.test/down")).status_code

    assert asyncio.run(call()) == 503
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 503


def test_transport_errors_are_recorded_and_reraised(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, exporter = tracing

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = TracedTransport(httpx.MockTransport(refuse), tracer=provider.get_tracer("t"))
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("http://backend.test/")
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "ConnectError"


def test_b3_is_injected_when_asked(tracing) -> None:  # type: ignore[no-untyped-def]
    provider, _ = tracing
    transport = TracedTransport(
        httpx.MockTransport(echo_headers),
        tracer=provider.get_tracer("t"),
        propagators=("tracecontext", "b3"),
    )
    with httpx.Client(transport=transport) as client:
        sent = client.get("http://backend.test/").json()
    assert sent["b3"].split("-")[0] == sent["traceparent"].split("-")[1]


def test_instrument_httpx_patches_once_and_undoes() -> None:
    try:
        assert instrument_httpx() is True
        assert instrument_httpx() is False
    finally:
        assert uninstrument_httpx() is True
    assert uninstrument_httpx() is False


def test_instrumented_default_transport_traces_and_propagates(tracing) -> None:  # type: ignore[no-untyped-def]
    import http.server
    import threading

    provider, exporter = tracing
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("traceparent", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tracer = provider.get_tracer("t")
    instrument_httpx(tracer=tracer)
    try:
        with tracer.start_as_current_span("server"), httpx.Client(trust_env=False) as client:
            client.get(f"http://127.0.0.1:{server.server_port}/x")
    finally:
        uninstrument_httpx()
        server.shutdown()
        server.server_close()
    (client_span,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert parse_traceparent(seen[0])[1] == client_span.context.span_id
    assert client_span.attributes["http.response.status_code"] == 204


def test_calls_made_while_instrumentation_is_suppressed_are_not_traced(tracing) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry import context
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    provider, exporter = tracing
    transport = TracedTransport(httpx.MockTransport(echo_headers), tracer=provider.get_tracer("t"))
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        with httpx.Client(transport=transport) as client:
            sent = client.get("http://collector.test/v1/traces").json()
    finally:
        context.detach(token)
    assert "traceparent" not in sent
    assert exporter.get_finished_spans() == ()
