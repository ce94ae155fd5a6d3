"""OTLP trace receivers the tests run in-process, over HTTP and over gRPC.

Tracing tests export through the real OpenTelemetry exporters, so they need
something on the other end that speaks OTLP and lets a test see what arrived.
A collector binary would be one more server to install and start; these
receivers decode the same protobuf messages (``opentelemetry-proto``) in a few
milliseconds and keep each span as a :class:`SpanRecord`, a plain value a test
can compare.

Both receivers listen on 127.0.0.1 with a port the OS picked, so nothing races
for it. ``endpoint`` is what the matching exporter takes:
``http://127.0.0.1:PORT/v1/traces`` for OTLP/HTTP, ``127.0.0.1:PORT`` for gRPC.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.trace import SpanKind

__all__ = [
    "OtlpGrpcReceiver",
    "OtlpHttpReceiver",
    "SpanCollector",
    "SpanKind",
    "SpanRecord",
    "decode_spans",
]

_LOOPBACK = "127.0.0.1"
ExportRequest = trace_service_pb2.ExportTraceServiceRequest


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One received span; ids are lowercase hex, ``parent_span_id`` "" for a root."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: SpanKind
    attributes: Mapping[str, Any]
    links: tuple[tuple[str, str], ...]
    resource: Mapping[str, Any]
    scope: str
    status_code: int  # OTLP: 0 unset, 1 ok, 2 error
    start_time_unix_nano: int
    end_time_unix_nano: int

    @property
    def service_name(self) -> str | None:
        name = self.resource.get("service.name")
        return name if isinstance(name, str) else None


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def _span_kind(otlp_kind: int) -> SpanKind:
    # OTLP numbers UNSPECIFIED=0, INTERNAL=1, SERVER=2 …; the API enum starts at INTERNAL=0.
    return SpanKind(otlp_kind - 1) if otlp_kind > 0 else SpanKind.INTERNAL


def decode_spans(request: Any) -> list[SpanRecord]:
    """Flatten an ``ExportTraceServiceRequest`` into records."""
    records = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                records.append(
                    SpanRecord(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_span_kind(span.kind),
                        attributes=_attributes(span.attributes),
                        links=tuple(
                            (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                        ),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status_code=span.status.code,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                    )
                )
    return records


def _every_span(_span: SpanRecord) -> bool:
    return True


class SpanCollector:
    """Thread-safe store of received spans that tests can wait on."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._spans: list[SpanRecord] = []
        self.request_headers: list[dict[str, str]] = []

    @property
    def spans(self) -> tuple[SpanRecord, ...]:
        with self._changed:
            return tuple(self._spans)

    def receive(self, request: Any, headers: Mapping[str, str]) -> None:
        records = decode_spans(request)
        with self._changed:
            self._spans.extend(records)
            self.request_headers.append(dict(headers))
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._spans.clear()
            self.request_headers.clear()

    def wait_for(
        self,
        what: int | Callable[[SpanRecord], bool] = 1,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> tuple[SpanRecord, ...]:
        """Wait for ``what`` spans in all, or ``count`` spans matching predicate ``what``.

        Returns every span (for a number) or the matching spans (for a
        predicate); raises TimeoutError naming the spans that did arrive.
        """
        matches: Callable[[SpanRecord], bool]
        if isinstance(what, int):
            needed, matches = what, _every_span
        else:
            needed, matches = count, what
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = tuple(s for s in self._spans if matches(s))
                if len(found) >= needed:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [s.name for s in self._spans]
                    raise TimeoutError(
                        f"{len(found)}/{needed} matching spans after {timeout}s; got {names}"
                    )
                self._changed.wait(remaining)


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self._reply(404, b"only /v1/traces", "text/plain")
            return
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self._reply(415, b"only application/x-protobuf", "text/plain")
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportRequest()
        request.ParseFromString(body)
        self.server.collector.receive(request, dict(self.headers.items()))
        response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self._reply(200, response, "application/x-protobuf")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    collector: SpanCollector


class OtlpHttpReceiver(SpanCollector):
    """``POST /v1/traces`` (protobuf, optionally gzip) on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self._server = _ReceiverServer((_LOOPBACK, 0), _Handler)
        self._server.collector = self
        self.port: int = self._server.server_address[1]
        self.endpoint = f"http://{_LOOPBACK}:{self.port}/v1/traces"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc, unused-ignore]
    def __init__(self, collector: SpanCollector) -> None:
        self._collector = collector

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = {str(k): str(v) for k, v in context.invocation_metadata()}
        self._collector.receive(request, metadata)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpGrpcReceiver(SpanCollector):
    """The OTLP ``TraceService`` over insecure gRPC on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self._executor = futures.ThreadPoolExecutor(max_workers=4)
        self._server = grpc.server(self._executor)
        add_servicer = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_servicer(_TraceService(self), self._server)  # type: ignore[no-untyped-call, unused-ignore]
        self.port: int = self._server.add_insecure_port(f"{_LOOPBACK}:0")
        self.endpoint = f"{_LOOPBACK}:{self.port}"
        self._server.start()

    def close(self) -> None:
        self._server.stop(grace=None).wait()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
