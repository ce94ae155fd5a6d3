"""The runtime wrappers: spans around calls, awaits and whole iterations, no context leaks."""

from __future__ import annotations

import asyncio
import inspect
import random
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer

from sloguard.inject._threshold import DurationGate, DurationPolicy
from sloguard.inject._traced import TraceRuntime
from tests.inject.tracing_harness import in_memory_provider


@dataclass
class Rig:
    tracer: Tracer
    exporter: InMemorySpanExporter

    def runtime(self, policy: DurationPolicy | None = None) -> TraceRuntime:
        return TraceRuntime(self.tracer, policy)

    def spans(self) -> dict[str, ReadableSpan]:
        return {span.name: span for span in self.exporter.get_finished_spans()}


@pytest.fixture
def rig() -> Iterator[Rig]:
    provider, exporter = in_memory_provider()
    yield Rig(provider.get_tracer("test"), exporter)
    provider.shutdown()


def _current_span_name() -> str:
    return getattr(trace.get_current_span(), "name", "")


def test_a_sync_call_gets_a_span_with_code_attributes(rig: Rig) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    traced = rig.runtime().wrap(add, "app", "add")
    assert traced(1, 2) == 3
    span = rig.spans()["app.add"]
    assert span.attributes is not None
    assert span.attributes["code.function"] == "add"
    assert span.attributes["code.lineno"] == add.__code__.co_firstlineno


def test_nested_traced_calls_are_parent_and_child(rig: Rig) -> None:
    runtime = rig.runtime()
    inner = runtime.wrap(_current_span_name, "app", "inner")

    def calls_inner() -> str:
        return inner()

    outer = runtime.wrap(calls_inner, "app", "outer")
    assert outer() == "app.inner"
    spans = rig.spans()
    assert spans["app.inner"].parent is not None
    assert spans["app.inner"].parent.span_id == spans["app.outer"].context.span_id


def test_an_error_is_recorded_and_reraised_unchanged(rig: Rig) -> None:
    error = ValueError("bad input")

    def fail() -> None:
        raise error

    with pytest.raises(ValueError) as caught:
        rig.runtime().wrap(fail, "app", "fail")()
    assert caught.value is error
    span = rig.spans()["app.fail"]
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_the_traceback_gains_exactly_one_wrapper_frame(rig: Rig) -> None:
    def fail() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError) as caught:
        rig.runtime().wrap(fail, "app", "fail")()
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert names[-2:] == ["traced", "fail"]


def test_a_generator_span_covers_its_whole_iteration(rig: Rig) -> None:
    def numbers() -> Iterator[int]:
        yield 1
        yield 2

    gen = rig.runtime().wrap(numbers, "app", "numbers")()
    assert next(gen) == 1
    assert rig.spans() == {}  # still iterating
    assert list(gen) == [2]
    assert "app.numbers" in rig.spans()


def test_the_generator_span_is_current_only_inside_its_body(rig: Rig) -> None:
    def inside() -> Iterator[str]:
        yield _current_span_name()
        yield _current_span_name()

    seen_by_consumer = []
    for seen_inside in rig.runtime().wrap(inside, "app", "inside")():
        assert seen_inside == "app.inside"
        seen_by_consumer.append(_current_span_name())
    assert seen_by_consumer == ["", ""]


def test_spans_started_by_the_consumer_between_items_are_not_its_children(rig: Rig) -> None:
    gen = rig.runtime().wrap(lambda: (yield from range(2)), "app", "gen")()
    for _ in gen:
        with rig.tracer.start_as_current_span("consumer-work"):
            pass
    spans = rig.spans()
    assert spans["consumer-work"].parent is None
    assert spans["app.gen"].end_time is not None


def test_closing_a_generator_ends_its_span_without_an_error(rig: Rig) -> None:
    def forever() -> Iterator[int]:
        while True:
            yield 1

    gen = rig.runtime().wrap(forever, "app", "forever")()
    next(gen)
    gen.close()
    assert rig.spans()["app.forever"].status.status_code is StatusCode.UNSET


def test_wrappers_keep_the_kind_of_function(rig: Rig) -> None:
    async def coro() -> None:
        return None

    async def agen() -> AsyncIterator[int]:
        yield 1

    runtime = rig.runtime()
    assert inspect.iscoroutinefunction(runtime.wrap(coro, "app", "coro"))
    assert inspect.isasyncgenfunction(runtime.wrap(agen, "app", "agen"))
    assert inspect.isgeneratorfunction(runtime.wrap(lambda: (yield), "app", "gen"))


def test_a_coroutine_span_covers_the_await(rig: Rig) -> None:
    async def nap() -> str:
        await asyncio.sleep(0)
        return _current_span_name()

    assert asyncio.run(rig.runtime().wrap(nap, "app", "nap")()) == "app.nap"
    assert "app.nap" in rig.spans()


def test_an_async_generator_does_not_leak_its_context_across_yield(rig: Rig) -> None:
    async def ticks() -> AsyncIterator[str]:
        for _ in range(2):
            await asyncio.sleep(0)
            yield _current_span_name()

    async def consume() -> list[tuple[str, str]]:
        agen = rig.runtime().wrap(ticks, "app", "ticks")()
        return [(inside, _current_span_name()) async for inside in agen]

    assert asyncio.run(consume()) == [("app.ticks", ""), ("app.ticks", "")]
    assert "app.ticks" in rig.spans()


def test_a_cancelled_coroutine_is_not_an_error(rig: Rig) -> None:
    async def wait() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(rig.runtime().wrap(wait, "app", "wait")())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert rig.spans()["app.wait"].status.status_code is StatusCode.UNSET


def test_below_the_minimum_duration_a_call_gets_no_span(rig: Rig) -> None:
    runtime = rig.runtime(DurationPolicy(min_duration_ns=10**12))
    assert runtime.wrap(lambda: 5, "app", "fast")() == 5
    assert rig.spans() == {}


def test_above_the_minimum_duration_the_span_has_the_call_times(rig: Rig) -> None:
    runtime = rig.runtime(DurationPolicy(min_duration_ns=1))
    runtime.wrap(lambda: sum(range(1000)), "app", "slow")()
    span = rig.spans()["app.slow"]
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.end_time > span.start_time


def test_a_gated_generator_is_timed_over_its_iteration(rig: Rig) -> None:
    runtime = rig.runtime(DurationPolicy(min_duration_ns=1))
    assert list(runtime.wrap(lambda: (yield from range(3)), "app", "gen")()) == [0, 1, 2]
    assert "app.gen" in rig.spans()


def test_the_adaptive_gate_keeps_about_the_slowest_percent() -> None:
    gate = DurationGate(floor_ns=0, adaptive=True, quantile=0.99)
    rng = random.Random(7)
    durations = [int(rng.lognormvariate(10, 1)) for _ in range(200_000)]
    for duration in durations[:100_000]:  # warm-up: the estimate converges
        gate.observe(duration)
    kept = sum(gate.observe(duration) for duration in durations[100_000:])
    assert 0.005 < kept / 100_000 < 0.02


def test_the_adaptive_gate_never_goes_below_the_floor() -> None:
    gate = DurationGate(floor_ns=5_000, adaptive=True, quantile=0.99)
    for _ in range(50_000):
        gate.observe(10)
    assert gate.cut == 5_000
    assert not gate.observe(4_999)
    assert gate.observe(5_000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"min_duration_ns": -1}, "min_duration_ns", id="negative-min"),
        pytest.param({"quantile": 1.0}, "quantile", id="quantile-one"),
    ],
)
def test_a_bad_duration_policy_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DurationPolicy(**kwargs)
