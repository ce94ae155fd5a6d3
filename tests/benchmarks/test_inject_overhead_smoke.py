"""The inject overhead benchmark still runs, and every wrapper it times does its work.

Speed is not asserted here (``make bench`` measures it); behaviour is: every
variant returns what the bare function returns, the rows that promise a span
end exactly one per call (sloguard's AST wrapper and the OpenTelemetry
decorator), the gated rows end none, and the tracked loop really counts every
task and step it times.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from rich.console import Console

from benchmarks import inject_overhead
from sloguard.inject._tasks import TaskTracker
from sloguard.inject._traced import is_traced

CALLS = 3
KINDS = ("sync", "async", "generator", "async generator")
# variant suffix: spans per call
SPANS = {"bare": 0, "sloguard": 1, "gated": 0, "adaptive": 0, "otel": 1}
NAMES = [f"{k}/{v}" for k in KINDS for v in SPANS if v != "otel" or k in {"sync", "async"}]


@pytest.fixture
def ended(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the spans ended, with the benchmark's dropping processor swapped out."""
    names: list[str] = []

    class Recording(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            names.append(span.name)

    monkeypatch.setattr(inject_overhead, "_Drop", Recording)
    return names


@pytest.fixture(scope="module")
def small_run() -> dict[str, Any]:
    """A full run's code path, with 20 calls per round and one timed round."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inject_overhead, "CALLS", 20)
        patch.setattr(inject_overhead, "ROUNDS", 1)
        return inject_overhead.run(quick=False, progress=lambda _: None)


async def _collect(agen: Any) -> list[int]:
    return [item async for item in agen]


def _result(kind: str, fn: Any) -> Any:
    if kind == "sync":
        return fn(41)
    if kind == "generator":
        return list(fn(4))
    return asyncio.run(fn(41) if kind == "async" else _collect(fn(4)))


def test_the_variants_are_the_rows_the_table_claims() -> None:
    assert list(inject_overhead._variants()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_variant_returns_what_the_bare_function_returns(name: str) -> None:
    variants = inject_overhead._variants()
    kind, _label, fn = variants[name]
    assert _result(kind, fn) == _result(kind, variants[f"{kind}/bare"][2])
    assert is_traced(fn) is (name.split("/")[1] in {"sloguard", "gated", "adaptive"})


@pytest.mark.parametrize("name", NAMES)
def test_each_variant_ends_the_spans_its_row_promises(ended: list[str], name: str) -> None:
    kind, _label, fn = inject_overhead._variants()[name]
    assert inject_overhead._time(kind, fn, CALLS) > 0
    assert ended == [f"b.{kind}"] * CALLS * SPANS[name.split("/")[1]]


@pytest.mark.parametrize("steps", [1, 10])
def test_the_tracked_loop_counts_every_task_and_step(
    monkeypatch: pytest.MonkeyPatch, steps: int
) -> None:
    made: list[TaskTracker] = []

    class Recorded(TaskTracker):
        def install(self, loop: asyncio.AbstractEventLoop) -> None:
            made.append(self)
            super().install(loop)

    monkeypatch.setattr(inject_overhead, "TaskTracker", Recorded)
    assert inject_overhead._task_cost(True, 5, steps) > 0
    worker = next(s for name, s in made[0].stats().items() if name.endswith(".worker"))
    assert (worker.created, worker.completed, worker.steps) == (5, 5, 5 * (steps + 1))


def test_a_run_reports_every_variant_and_the_peer_ratios(small_run: dict[str, Any]) -> None:
    variants = small_run["variants"]
    assert list(variants) == NAMES
    assert all(variants[f"{kind}/bare"]["overhead_ns"] == 0.0 for kind in KINDS)
    with_ratio = {name for name, v in variants.items() if "peer_overhead_ratio" in v}
    assert with_ratio == {"sync/sloguard", "async/sloguard"}
    assert set(small_run["tasks_ns"]) == {"plain/1", "plain/10", "tracked/1", "tracked/10"}


def test_tables_print_every_variant_and_the_task_rows(small_run: dict[str, Any]) -> None:
    out = io.StringIO()
    for table in inject_overhead.tables(small_run):
        Console(file=out, width=250).print(table)
    text = out.getvalue()
    labels = {v["label"] for v in small_run["variants"].values()}
    assert all(label in text for label in labels)
    assert "ns per task" in text
