"""FastSpan: exported exactly like an SDK span, sampled by the same sampler, cheaper."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Tracer as SDKTracer
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sloguard.asgi._observer import Observer
from sloguard.routing import RouteTable
from sloguard.settings import Settings
from sloguard.telemetry._fastspan import FastSpan, FastTracer, fast_tracer
from sloguard.telemetry.sampling import RouteRatioSampler, SamplingConfig

REMOTE = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True)


class Pipeline:
    """One provider; its SDK tracer and a FastTracer over the same SDK tracer."""

    def __init__(self, ratio: float = 1.0, limits: SpanLimits | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            sampler=RouteRatioSampler(SamplingConfig(ratio=ratio)),
            resource=Resource.create({"service.name": "shop"}),
            span_limits=limits,
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.sdk = self.provider.get_tracer("sloguard", "1.0")
        fast = fast_tracer(self.sdk)
        assert isinstance(fast, FastTracer)
        self.fast = fast

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def both(self, operate: Callable[[trace.Span], object], **start: Any) -> list[dict[str, Any]]:
        """Run ``operate`` on an SDK span and a FastSpan; what each exported, ids aside."""
        for tracer in (self.sdk, self.fast):
            span = tracer.start_span("GET /items/{id}", kind=SpanKind.SERVER, **start)
            operate(span)
            span.end()
        return [exported(span) for span in self.finished()]


def exported(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent,
        "attributes": dict(span.attributes or {}),
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource,
        "scope": span.instrumentation_scope,
    }


def operations(span: trace.Span) -> None:
    span.set_attribute("http.response.status_code", 503)
    span.set_attributes({"tenant": "acme", "retries": 2, "ratio": 0.5, "cached": False})
    span.set_attribute("tags", ["a", "b"])
    span.update_name("GET /renamed")
    span.add_event("retry", {"attempt": 1})
    span.add_link(REMOTE, {"reason": "batch"})
    span.record_exception(ValueError("bad id"))
    span.set_status(Status(StatusCode.ERROR, "ValueError"))


def test_finished_span_matches_the_sdk_span_field_for_field() -> None:
    pipeline = Pipeline()
    sdk, fast = pipeline.both(operations, attributes={"http.route": "/items/{id}"})
    stacktrace = "exception.stacktrace"
    sdk["events"][1][1].pop(stacktrace)
    assert "test_fastspan" not in fast["events"][1][1].pop(stacktrace)
    assert fast == sdk
    assert fast["attributes"]["tags"] == ("a", "b")


@pytest.mark.parametrize(
    ("limits", "operate"),
    [
        pytest.param(
            SpanLimits(max_span_attributes=2),
            lambda s: s.set_attributes({"a": 1, "b": 2, "c": 3}),
            id="oldest-attribute-dropped",
        ),
        pytest.param(
            SpanLimits(max_span_attribute_length=3),
            lambda s: s.set_attributes({"long": "abcdef", "list": ["abcdef"]}),
            id="values-truncated",
        ),
        pytest.param(
            SpanLimits(max_events=1, max_links=1),
            lambda s: [s.add_event(n) or s.add_link(REMOTE) for n in ("x", "y")],
            id="events-and-links-bounded",
        ),
        pytest.param(
            None,
            lambda s: s.set_attributes({"": 1, "bytes": b"x", "none": None, "obj": object()}),
            id="unusual-keys-and-values",
        ),
    ],
)
def test_limits_and_cleaning_follow_the_sdk(
    limits: SpanLimits | None, operate: Callable[[trace.Span], object]
) -> None:
    sdk, fast = Pipeline(limits=limits).both(operate, attributes={"http.route": "/x"})
    sdk["attributes"].pop("obj", None)  # the SDK stores str(object()): a fresh address
    fast["attributes"].pop("obj", None)
    assert fast == sdk


def test_sampled_root_is_a_fast_span_with_a_fresh_trace() -> None:
    span = Pipeline().fast.start_span("GET /", kind=SpanKind.SERVER)
    assert isinstance(span, FastSpan)
    assert span.get_span_context().is_valid
    assert span.get_span_context().trace_flags.sampled
    assert span.is_recording()


def test_unsampled_root_gets_a_valid_non_recording_context_and_exports_nothing() -> None:
    pipeline = Pipeline(ratio=0.0)
    span = pipeline.fast.start_span("GET /", kind=SpanKind.SERVER)
    assert isinstance(span, trace.NonRecordingSpan)
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert pipeline.finished() == ()


@pytest.mark.parametrize("flags", [TraceFlags.SAMPLED, TraceFlags.DEFAULT])
def test_remote_parent_decides_and_its_trace_continues(flags: int) -> None:
    remote = SpanContext(REMOTE.trace_id, REMOTE.span_id, True, TraceFlags(flags))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    span = Pipeline(ratio=0.0 if flags else 1.0).fast.start_span("GET /", context=parent)
    assert span.get_span_context().trace_id == REMOTE.trace_id
    assert span.get_span_context().trace_flags.sampled is bool(flags)
    assert span.is_recording() is bool(flags)


def test_tracer_switched_off_by_a_configurator_records_nothing() -> None:
    pipeline = Pipeline()
    configure = getattr(pipeline.provider, "_set_tracer_configurator", None)
    if configure is None:
        pytest.skip("this SDK has no tracer configurator")
    from opentelemetry.sdk.trace import _TracerConfig

    configure(tracer_configurator=lambda scope: _TracerConfig(is_enabled=False))
    span = pipeline.fast.start_span("GET /")
    assert not span.is_recording()
    span.end()
    assert pipeline.finished() == ()


def test_sdk_children_started_while_the_span_is_current_get_it_as_parent() -> None:
    pipeline = Pipeline()
    server = pipeline.fast.start_span("GET /", kind=SpanKind.SERVER)
    token = otel_context.attach(trace.set_span_in_context(server))
    with pipeline.provider.get_tracer("app").start_as_current_span("query"):
        trace.get_current_span().set_attribute("db", "x")
    otel_context.detach(token)
    server.end()
    child, parent = pipeline.finished()
    assert child.parent == parent.context
    assert parent.parent is None


def test_ended_span_ignores_changes_and_is_exported_once() -> None:
    pipeline = Pipeline()
    span = pipeline.fast.start_span("GET /")
    span.end()
    span.set_attribute("late", 1)
    span.set_status(Status(StatusCode.ERROR))
    span.end()
    (finished,) = pipeline.finished()
    assert "late" not in (finished.attributes or {})
    assert finished.status.status_code is StatusCode.UNSET
    assert not span.is_recording()


def test_ok_status_is_final_and_unset_is_ignored() -> None:
    codes = (StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR)
    sdk, fast = Pipeline().both(lambda span: [span.set_status(code) for code in codes])
    assert fast["status"] == sdk["status"] == (StatusCode.OK, None)


@pytest.mark.parametrize(
    "enter",
    [
        pytest.param(lambda tracer: tracer.start_as_current_span("work"), id="as-current-span"),
        pytest.param(lambda tracer: tracer.start_span("work"), id="span-itself"),
    ],
)
def test_context_manager_records_an_escaping_exception_as_the_sdk_does(
    enter: Callable[[trace.Tracer], Any],
) -> None:
    pipeline = Pipeline()
    for tracer in (pipeline.sdk, pipeline.fast):
        with pytest.raises(KeyError), enter(tracer):
            raise KeyError("sku")
    sdk, fast = (exported(s) for s in pipeline.finished())
    for recorded in (sdk, fast):
        recorded["events"][0][1].pop("exception.stacktrace")
    assert fast == sdk
    assert fast["status"] == (StatusCode.ERROR, "KeyError: 'sku'")


class Watching(SpanProcessor):
    """Sees spans start (and end) the way a custom processor would."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Any]] = []

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        self.started.append((span.name, span.attributes.get("http.route")))
        span.set_attribute("seen.on_start", True)

    def _on_ending(self, span: Any) -> None:
        self.started.append(("ending", span.name))


def test_processors_added_later_see_the_span_start_and_end() -> None:
    pipeline = Pipeline()
    pipeline.fast.start_span("before").end()
    watching = Watching()
    pipeline.provider.add_span_processor(watching)
    pipeline.fast.start_span("GET /x", attributes={"http.route": "/x"}).end()
    assert watching.started == [("GET /x", "/x"), ("ending", "GET /x")]
    assert pipeline.finished()[-1].attributes["seen.on_start"] is True  # type: ignore[index]


def test_otlp_encoder_and_console_exporter_read_the_finished_span() -> None:
    pipeline = Pipeline()
    pipeline.both(operations, links=[Link(REMOTE, {"why": "untrusted"})])
    sdk, fast = pipeline.finished()
    assert encode_spans([fast]).ByteSize() > 0
    out = io.StringIO()
    ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n").export([fast])
    printed = json.loads(out.getvalue())
    assert printed["attributes"]["tenant"] == "acme"
    assert printed["links"][0]["attributes"] == {"why": "untrusted"}


class CustomStart(SDKTracer):
    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return super().start_span(*args, **kwargs)


def test_tracers_it_cannot_speed_up_are_returned_unchanged() -> None:
    pipeline = Pipeline()
    sdk = pipeline.sdk
    custom = CustomStart.__new__(CustomStart)
    custom.__dict__.update(sdk.__dict__)
    for tracer in (trace.NoOpTracer(), custom):
        assert fast_tracer(tracer) is tracer


@pytest.mark.parametrize(("switch", "expected"), [(True, FastTracer), (False, SDKTracer)])
def test_observer_switch_chooses_the_fast_or_the_sdk_span(switch: bool, expected: type) -> None:
    observer = Observer(
        Settings(),
        tracer=Pipeline().sdk,
        sampler=None,
        metrics=None,
        recorder=None,
        routes=RouteTable(()),
        fast_spans=switch,
    )
    assert type(observer.tracer) is expected
