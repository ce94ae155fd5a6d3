"""Provider setup: resource, exporters, and the missing-extra message."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from sloguard.settings import ServiceSettings, TracingSettings
from sloguard.telemetry.tracing import (
    ForcedTraceIdGenerator,
    MissingExtraError,
    build_tracer_provider,
)


def exporters(provider) -> list[object]:  # type: ignore[no-untyped-def]
    processors = provider._active_span_processor._span_processors
    return [p.span_exporter for p in processors if isinstance(p, BatchSpanProcessor)]


def test_resource_names_the_service() -> None:
    service = ServiceSettings(name="shop", version="1.2", environment="prod")
    provider, _ = build_tracer_provider(service, TracingSettings())
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "shop"
    assert attributes["service.version"] == "1.2"
    assert attributes["deployment.environment.name"] == "prod"
    provider.shutdown()


def test_console_exporter_is_batched() -> None:
    provider, _ = build_tracer_provider(ServiceSettings(), TracingSettings(exporter="console"))
    assert [type(e) for e in exporters(provider)] == [ConsoleSpanExporter]
    provider.shutdown()


@pytest.mark.parametrize(
    ("exporter", "module"),
    [
        ("otlp-http", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
        ("otlp-grpc", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
    ],
)
def test_missing_otlp_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, exporter: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'sloguard\[otlp\]'"):
        build_tracer_provider(ServiceSettings(), TracingSettings(exporter=exporter))  # type: ignore[arg-type]


def test_forced_trace_id_is_used_once() -> None:
    generator = ForcedTraceIdGenerator()
    ForcedTraceIdGenerator.force_next(42)
    assert generator.generate_trace_id() == 42
    assert generator.generate_trace_id() != 42
