"""The OTLP receivers decode what the real OpenTelemetry exporters send."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.util.types import AnyValue

from tests.harness.otlp import OtlpGrpcReceiver, OtlpHttpReceiver, SpanCollector, SpanRecord


def _export_parent_child_and_link(exporter: SpanExporter) -> dict[str, SpanContext]:
    """Export a root span, a linked span and a child that links to it; their contexts."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("harness-test")
    with tracer.start_as_current_span("batch") as batch:
        pass
    with tracer.start_as_current_span("GET /pay", kind=SpanKind.SERVER) as parent:
        links = [Link(batch.get_span_context())]
        attributes: dict[str, AnyValue] = {"http.route": "/pay", "retries": 2, "tags": ("a", "b")}
        with tracer.start_as_current_span(
            "charge", kind=SpanKind.CLIENT, links=links, attributes=attributes
        ) as child:
            pass
    provider.shutdown()
    spans = {"batch": batch, "parent": parent, "child": child}
    return {name: span.get_span_context() for name, span in spans.items()}


def _by_name(records: tuple[SpanRecord, ...]) -> dict[str, SpanRecord]:
    return {record.name: record for record in records}


ExporterFor = Callable[[SpanCollector], SpanExporter]
_RECEIVERS: list[object] = [
    pytest.param(
        "otlp_http_receiver",
        lambda r: HttpSpanExporter(endpoint=r.endpoint),
        id="http",
    ),
    pytest.param(
        "otlp_http_receiver",
        lambda r: HttpSpanExporter(endpoint=r.endpoint, compression=Compression.Gzip),
        id="http-gzip",
    ),
    pytest.param(
        "otlp_grpc_receiver",
        lambda r: GrpcSpanExporter(endpoint=r.endpoint, insecure=True),
        id="grpc",
    ),
]


@pytest.mark.parametrize(("receiver_fixture", "exporter_for"), _RECEIVERS)
def test_exported_spans_arrive_with_their_parent_and_link(
    request: pytest.FixtureRequest, receiver_fixture: str, exporter_for: ExporterFor
) -> None:
    receiver: SpanCollector = request.getfixturevalue(receiver_fixture)
    sent = _export_parent_child_and_link(exporter_for(receiver))
    spans = _by_name(receiver.wait_for(3))
    parent, child = spans["GET /pay"], spans["charge"]
    assert parent.parent_span_id == ""
    assert (child.trace_id, child.parent_span_id) == (parent.trace_id, parent.span_id)
    assert parent.span_id == format(sent["parent"].span_id, "016x")
    assert child.links == ((spans["batch"].trace_id, spans["batch"].span_id),)
    assert child.trace_id == format(sent["child"].trace_id, "032x")


@pytest.mark.parametrize(("receiver_fixture", "exporter_for"), _RECEIVERS)
def test_exported_spans_keep_kind_attributes_and_resource(
    request: pytest.FixtureRequest, receiver_fixture: str, exporter_for: ExporterFor
) -> None:
    receiver: SpanCollector = request.getfixturevalue(receiver_fixture)
    _export_parent_child_and_link(exporter_for(receiver))
    [child] = receiver.wait_for(lambda span: span.name == "charge")
    assert child.kind is SpanKind.CLIENT
    assert child.attributes == {"http.route": "/pay", "retries": 2, "tags": ("a", "b")}
    assert child.service_name == "checkout"
    assert child.scope == "harness-test"


def test_http_receiver_sees_gzip_bodies_as_gzip(otlp_http_receiver: OtlpHttpReceiver) -> None:
    exporter = HttpSpanExporter(endpoint=otlp_http_receiver.endpoint, compression=Compression.Gzip)
    _export_parent_child_and_link(exporter)
    otlp_http_receiver.wait_for(3)
    encodings = {h.get("Content-Encoding") for h in otlp_http_receiver.request_headers}
    assert encodings == {"gzip"}


@pytest.mark.parametrize(
    ("path", "content_type", "status"),
    [
        pytest.param("/v1/traces", "application/json", 415, id="json-body"),
        pytest.param("/v1/metrics", "application/x-protobuf", 404, id="metrics-path"),
    ],
)
def test_http_receiver_refuses_what_it_cannot_decode(
    otlp_http_receiver: OtlpHttpReceiver, path: str, content_type: str, status: int
) -> None:
    url = otlp_http_receiver.endpoint.replace("/v1/traces", path)
    headers = {"Content-Type": content_type}
    with httpx.Client(trust_env=False) as client:
        assert client.post(url, content=b"{}", headers=headers).status_code == status
    assert otlp_http_receiver.spans == ()


def test_wait_for_names_the_spans_that_did_arrive_when_it_times_out(
    otlp_grpc_receiver: OtlpGrpcReceiver,
) -> None:
    _export_parent_child_and_link(
        GrpcSpanExporter(endpoint=otlp_grpc_receiver.endpoint, insecure=True)
    )
    with pytest.raises(TimeoutError, match=r"0/1 matching spans after 0.05s; got \['batch'"):
        otlp_grpc_receiver.wait_for(lambda span: span.name == "refund", timeout=0.05)


def test_wait_for_a_predicate_can_require_several_matches(
    otlp_http_receiver: OtlpHttpReceiver,
) -> None:
    _export_parent_child_and_link(HttpSpanExporter(endpoint=otlp_http_receiver.endpoint))
    roots = otlp_http_receiver.wait_for(lambda span: span.parent_span_id == "", count=2)
    assert sorted(span.name for span in roots) == ["GET /pay", "batch"]
