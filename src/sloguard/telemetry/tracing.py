"""Tracing setup on the OpenTelemetry SDK: provider, sampler, exporters.

:func:`build_tracer_provider` turns the ``tracing`` settings section into a
``TracerProvider`` with sloguard's :class:`RouteRatioSampler`, a resource
naming the service, and a batch exporter (OTLP over http/protobuf or gRPC, or
the console). The OTLP exporters are the ``sloguard[otlp]`` extra; asking for
one without it fails with the exact ``pip install`` line.

:class:`ForcedTraceIdGenerator` exists for the ``X-Trace-ID`` compatibility
header, which carries a trace id but no parent span: the server span becomes
a root span *in that trace*. The generator hands out the requested id once
(per context) and random ids otherwise.
"""

from __future__ import annotations

import os
import random
import weakref
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID

from sloguard.settings import ServiceSettings, TracingSettings
from sloguard.telemetry.sampling import RouteRatioSampler, SamplingConfig

__all__ = [
    "ForcedTraceIdGenerator",
    "MissingExtraError",
    "build_tracer_provider",
    "install_global_provider",
    "sampling_config",
]

_forced_trace_id: ContextVar[int] = ContextVar("sloguard_forced_trace_id", default=0)


class MissingExtraError(RuntimeError):
    """An optional integration was asked for without its extra installed."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'sloguard[{extra}]'")


_GENERATORS: weakref.WeakSet[ForcedTraceIdGenerator] = weakref.WeakSet()


def _reseed_after_fork() -> None:
    for generator in list(_GENERATORS):
        generator.reseed()


os.register_at_fork(after_in_child=_reseed_after_fork)


class ForcedTraceIdGenerator(IdGenerator):
    """Random ids, except a trace id requested through :meth:`force_next`.

    The ids come from a private generator, reseeded from ``os.urandom`` in
    each forked child: the SDK's own ``RandomIdGenerator`` draws from the
    global ``random`` module, so tracing would change the sequence an
    application gets after ``random.seed()`` (and a forked worker would repeat
    its parent's ids).
    """

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(32))
        _GENERATORS.add(self)

    def reseed(self) -> None:
        self._rng.seed(os.urandom(32))

    def generate_span_id(self) -> int:
        span_id = self._rng.getrandbits(64)
        while span_id == INVALID_SPAN_ID:
            span_id = self._rng.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        forced = _forced_trace_id.get()
        if forced:
            _forced_trace_id.set(0)
            return forced
        trace_id = self._rng.getrandbits(128)
        while trace_id == INVALID_TRACE_ID:
            trace_id = self._rng.getrandbits(128)
        return trace_id

    @staticmethod
    def force_next(trace_id: int) -> None:
        _forced_trace_id.set(trace_id)


def sampling_config(settings: TracingSettings) -> SamplingConfig:
    return SamplingConfig(
        ratio=settings.sample_ratio, route_ratios=dict(settings.route_sample_ratios)
    )


def _exporter(settings: TracingSettings) -> SpanExporter | None:
    headers = dict(settings.otlp_headers) or None
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp-http":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingExtraError("the otlp-http exporter", "otlp") from exc
        return OTLPSpanExporter(endpoint=settings.otlp_endpoint, headers=headers)
    if settings.exporter == "otlp-grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as exc:
            raise MissingExtraError("the otlp-grpc exporter", "otlp") from exc
        endpoint = settings.otlp_endpoint
        insecure = endpoint is not None and endpoint.startswith("http://")
        return GrpcExporter(endpoint=endpoint, headers=headers, insecure=insecure)
    return None


def build_tracer_provider(
    service: ServiceSettings,
    settings: TracingSettings,
    *,
    processors: tuple[SpanProcessor, ...] = (),
) -> tuple[TracerProvider, RouteRatioSampler]:
    """A provider for the service, and its sampler (kept to update ratios live)."""
    attributes: dict[str, str] = {"service.name": service.name}
    if service.version:
        attributes["service.version"] = service.version
    if service.environment:
        attributes["deployment.environment.name"] = service.environment
    sampler = RouteRatioSampler(sampling_config(settings))
    provider = TracerProvider(
        sampler=sampler,
        resource=Resource.create(attributes),
        id_generator=ForcedTraceIdGenerator(),
    )
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider, sampler


def install_global_provider(provider: TracerProvider) -> bool:
    """Make ``provider`` the global one unless the application set its own.

    Returns True when installed. When the application configured OpenTelemetry
    itself, its provider stays global (its own spans go there) and sloguard's
    server spans use sloguard's provider directly.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
        return trace.get_tracer_provider() is provider
    return current is provider
