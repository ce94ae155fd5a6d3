"""Per-call cost of import-time tracing, and per-task cost of asyncio task tracking.

Each variant is one function, called ``calls`` times in a tight loop and timed
with ``perf_counter_ns``; rounds run every variant in turn (interleaved, so
load from elsewhere on a shared 2-core box falls on all alike) and the median
round is reported, as nanoseconds per call and as overhead over the bare
function of the same kind.

Functions are wrapped by :class:`sloguard.inject._traced.TraceRuntime`, the
code the AST rewrite installs (the rewrite itself happens once, at import).
Spans go to an OpenTelemetry SDK ``TracerProvider`` (always-on sampler) with
one span processor that drops them, so the figures are the cost of making
and ending a real span, not of exporting it.

Peers: OpenTelemetry's own ``@tracer.start_as_current_span(name)`` used as a
decorator (what logfire-style and hand-written instrumentation does) for sync
and async functions. For generators the peer decorator ends its span when the
generator object is created, before any item, so it is not comparable and is
not measured.

Task tracking: a task that awaits ``asyncio.sleep(0)`` ``steps`` times,
created and awaited ``tasks`` times on a plain loop and on a tracked one.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator, Callable, Iterator
from time import perf_counter_ns
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from rich.table import Table

from sloguard.inject._tasks import TaskTracker
from sloguard.inject._threshold import DurationPolicy
from sloguard.inject._traced import TraceRuntime

__all__ = ["NAME", "run", "tables"]

NAME = "inject_overhead"
CALLS = 20_000
ROUNDS = 7
GEN_ITEMS = 10


class _Drop(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        return None


def _functions() -> dict[str, Callable[..., Any]]:
    def sync_fn(x: int) -> int:
        return x + 1

    async def async_fn(x: int) -> int:
        return x + 1

    def gen_fn(n: int) -> Iterator[int]:
        yield from range(n)

    async def agen_fn(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    return {"sync": sync_fn, "async": async_fn, "generator": gen_fn, "async generator": agen_fn}


def _variants() -> dict[str, tuple[str, str, Callable[..., Any]]]:
    """name -> (kind, label, function)."""
    provider = TracerProvider()
    provider.add_span_processor(_Drop())
    tracer = provider.get_tracer("bench")
    always = TraceRuntime(tracer)
    gated = TraceRuntime(tracer, DurationPolicy(min_duration_ns=10**9))
    adaptive = TraceRuntime(tracer, DurationPolicy(min_duration_ns=10**9, adaptive=True))
    out: dict[str, tuple[str, str, Callable[..., Any]]] = {}
    for kind, fn in _functions().items():
        out[f"{kind}/bare"] = (kind, "bare function", fn)
        out[f"{kind}/sloguard"] = (kind, "sloguard AST wrapper, span", always.wrap(fn, "b", kind))
        out[f"{kind}/gated"] = (
            kind,
            "sloguard, min_duration (no span)",
            gated.wrap(fn, "b", kind),
        )
        out[f"{kind}/adaptive"] = (
            kind,
            "sloguard, adaptive min_duration (no span)",
            adaptive.wrap(fn, "b", kind),
        )
        if kind in {"sync", "async"}:
            peer = tracer.start_as_current_span(f"b.{kind}")(fn)
            out[f"{kind}/otel"] = (kind, "peer: @tracer.start_as_current_span", peer)
    return out


def _time(kind: str, fn: Callable[..., Any], calls: int) -> float:
    if kind == "sync":
        start = perf_counter_ns()
        for i in range(calls):
            fn(i)
        return (perf_counter_ns() - start) / calls
    if kind == "generator":
        start = perf_counter_ns()
        for _ in range(calls):
            for _item in fn(GEN_ITEMS):
                pass
        return (perf_counter_ns() - start) / calls

    async def drive() -> float:
        start = perf_counter_ns()
        if kind == "async":
            for i in range(calls):
                await fn(i)
        else:
            for _ in range(calls):
                async for _item in fn(GEN_ITEMS):
                    pass
        return (perf_counter_ns() - start) / calls

    return asyncio.run(drive())


def _task_cost(tracked: bool, tasks: int, steps: int) -> float:
    async def worker() -> None:
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main() -> float:
        tracker = TaskTracker(slow_step_ms=1000.0) if tracked else None
        if tracker is not None:
            tracker.install(asyncio.get_running_loop())
        start = perf_counter_ns()
        for _ in range(tasks):
            await asyncio.create_task(worker())
        elapsed = (perf_counter_ns() - start) / tasks
        if tracker is not None:
            tracker.close()
        return elapsed

    return asyncio.run(main())


def run(quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    calls = 2_000 if quick else CALLS
    rounds = 3 if quick else ROUNDS
    variants = _variants()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    task_samples: dict[str, list[float]] = {
        f"{k}/{s}": [] for k in ("plain", "tracked") for s in (1, 10)
    }
    for index in range(rounds + 1):
        progress(f"{NAME}: round {index}/{rounds}{' (warm-up)' if index == 0 else ''}")
        for name, (kind, _label, fn) in variants.items():
            value = _time(kind, fn, calls)
            if index:
                samples[name].append(value)
        for key, values in task_samples.items():
            mode, steps = key.split("/")
            value = _task_cost(mode == "tracked", calls // 10, int(steps))
            if index:
                values.append(value)
    results: dict[str, Any] = {}
    for name, (kind, label, _fn) in variants.items():
        median = statistics.median(samples[name])
        bare = statistics.median(samples[f"{kind}/bare"])
        results[name] = {
            "kind": kind,
            "label": label,
            "ns_per_call": round(median, 1),
            "overhead_ns": round(median - bare, 1),
            "ratio_to_bare": round(median / bare, 2),
        }
    for kind in ("sync", "async"):
        ours, peer = results[f"{kind}/sloguard"], results[f"{kind}/otel"]
        ours["peer_overhead_ratio"] = round(peer["overhead_ns"] / max(ours["overhead_ns"], 1.0), 2)
    tasks = {key: round(statistics.median(values), 1) for key, values in task_samples.items()}
    per_task = tasks["tracked/1"] - tasks["plain/1"]
    per_step = (tasks["tracked/10"] - tasks["plain/10"] - per_task) / 9
    return {
        "name": NAME,
        "method": {"calls": calls, "rounds": rounds, "generator_items": GEN_ITEMS},
        "variants": results,
        "tasks_ns": tasks,
        "task_tracking": {
            "per_task_ns": round(per_task, 1),
            "per_extra_step_ns": round(per_step, 1),
        },
    }


def tables(result: dict[str, Any]) -> list[Table]:
    method = result["method"]
    calls = Table(
        title=f"inject: per-call cost of a traced function, ns (median of {method['rounds']} "
        f"rounds x {method['calls']:,} calls; generators yield {method['generator_items']} items)"
    )
    for column in ("kind", "variant", "ns/call", "overhead ns", "x bare", "peer overhead / ours"):
        calls.add_column(column, justify="left" if column in {"kind", "variant"} else "right")
    for v in result["variants"].values():
        calls.add_row(
            v["kind"],
            v["label"],
            f"{v['ns_per_call']:.0f}",
            f"{v['overhead_ns']:.0f}",
            f"{v['ratio_to_bare']:.2f}",
            f"{v['peer_overhead_ratio']:.2f}" if "peer_overhead_ratio" in v else "-",
        )
    tasks = Table(title="inject: asyncio task tracking, ns per task (create + await)")
    for column in ("steps per task", "plain loop", "tracked", "overhead"):
        tasks.add_column(column, justify="right")
    t = result["tasks_ns"]
    for steps in ("1", "10"):
        plain, tracked = t[f"plain/{steps}"], t[f"tracked/{steps}"]
        tasks.add_row(steps, f"{plain:.0f}", f"{tracked:.0f}", f"{tracked - plain:.0f}")
    tracking = result["task_tracking"]
    tasks.caption = (
        f"about {tracking['per_task_ns']:.0f} ns per task and "
        f"{tracking['per_extra_step_ns']:.0f} ns per further step"
    )
    return [calls, tasks]
