"""What a circuit breaker costs per successful call, in memory: sloguard against its peers.

Each variant calls a trivial function (returns a constant) through a closed
breaker ``calls`` times per round; the bare call is timed the same way and
subtracted, so each figure is the breaker's own overhead in ns per call.
Rounds are interleaved across variants (every variant once per round, in a
shuffled order) and the median round is reported.

Peers, each in its documented in-memory configuration with a
consecutive-failure trip (sloguard's default strategy, the only one
pybreaker, aiobreaker and purgatory have):

* pybreaker ``CircuitBreaker.call`` and its decorator (sync);
* aiobreaker's decorator (async);
* purgatory's in-memory factory, its decorator (which looks the breaker up on
  every call) and a breaker fetched once and used as a context manager
  (sync and async).

sloguard rows: the decorator, ``call``, ``with`` blocks, and the decorator
with a ``failure_ratio`` policy (sliding window, one clock read per call),
sync and async. The result's ``goal`` compares sloguard's decorator with the
fastest peer in the same mode. Also measured: 4 threads sharing one breaker
(sloguard, with and without a window, against pybreaker and purgatory; wall time per
call; sloguard's success counts checked exact), and what one labelled
``prometheus_client`` counter ``inc()`` costs -- why the breaker metrics read
totals at scrape time instead of counting per call.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.table import Table

__all__ = ["NAME", "run", "tables"]

NAME = "breaker"
ROUNDS = 7
QUICK_ROUNDS = 2
CALLS = 200_000
QUICK_CALLS = 5_000
THREADS = 4
SPEEDUP_GOAL = 2.0
SEED = 20240611

FAIRNESS = [
    "Every breaker is closed, in memory, with a consecutive-failure trip of 5 and a 30 s open "
    "time; the protected function returns a constant. The bare call is subtracted.",
    "sloguard's decorator and call run the full, thread-safe path: admission, classifier, "
    "outcome record (a closed-state success is counted with one atomic next(); the "
    "failure_ratio rows take a lock and read the clock); pybreaker takes a lock per call "
    "(held during the call). Every sloguard success count is checked after the run.",
    "purgatory's decorator looks the breaker up per call (its documented use); its "
    "context-manager row fetches the breaker once, its fastest in-memory use (no lock: not "
    "thread-safe).",
]


def _target() -> int:
    return 1


async def _async_target() -> int:
    return 1


def _sync_variants() -> dict[str, tuple[str, Callable[[], Any], Callable[[], int] | None]]:
    """name -> (label, zero-argument call, count of successes seen by the breaker)."""
    import purgatory
    import pybreaker

    from sloguard.resilience._breaker import CircuitBreaker
    from sloguard.resilience._types import BreakerPolicy

    default = CircuitBreaker("bench", BreakerPolicy(consecutive_failures=5, open_s=30.0))
    windowed = CircuitBreaker(
        "bench-window", BreakerPolicy(consecutive_failures=None, failure_ratio=0.5, open_s=30.0)
    )
    decorated, decorated_window = default(_target), windowed(_target)
    called = CircuitBreaker("bench-call", default.policy)
    blocked = CircuitBreaker("bench-with", default.policy)
    call = called.call

    def block() -> int:
        with blocked:
            return _target()

    pyb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
    pyb_decorated, pyb_call = pyb(_target), pyb.call
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    purgatory_decorated = factory("bench")(_target)
    purgatory_breaker = factory.get_breaker("bench")

    def purgatory_block() -> int:
        with purgatory_breaker:
            return _target()

    def successes(breaker: Any) -> Callable[[], int]:
        return lambda: breaker.backend.snapshot().successes_total

    return {
        "bare": ("bare call", _target, None),
        "sloguard-decorator": ("sloguard @breaker", decorated, successes(default)),
        "sloguard-call": ("sloguard breaker.call(fn)", lambda: call(_target), successes(called)),
        "sloguard-with": ("sloguard with breaker:", block, successes(blocked)),
        "sloguard-window": (
            "sloguard @breaker, failure_ratio window",
            decorated_window,
            successes(windowed),
        ),
        "pybreaker-call": ("pybreaker breaker.call(fn)", lambda: pyb_call(_target), None),
        "pybreaker-decorator": ("pybreaker @breaker", pyb_decorated, None),
        "purgatory-decorator": ("purgatory @factory(name)", purgatory_decorated, None),
        "purgatory-with": ("purgatory with breaker: (fetched once)", purgatory_block, None),
    }


# The "call" row wraps in a lambda (as the pybreaker call row does): both pay the same frame.
_PEERS_SYNC = ("pybreaker-call", "pybreaker-decorator", "purgatory-decorator", "purgatory-with")
_PEERS_ASYNC = ("aiobreaker-decorator", "purgatory-decorator", "purgatory-with")


def _async_variants(
    loop: asyncio.AbstractEventLoop,
) -> dict[str, tuple[str, Callable[[], Awaitable[Any]], Callable[[], int] | None]]:
    import aiobreaker
    import purgatory

    from sloguard.resilience._breaker import CircuitBreaker
    from sloguard.resilience._types import BreakerPolicy

    default = CircuitBreaker("bench-async", BreakerPolicy(consecutive_failures=5, open_s=30.0))
    windowed = CircuitBreaker(
        "bench-async-window",
        BreakerPolicy(consecutive_failures=None, failure_ratio=0.5, open_s=30.0),
    )
    decorated, decorated_window = default(_async_target), windowed(_async_target)

    blocked = CircuitBreaker("bench-async-with", default.policy)

    async def block() -> int:
        async with blocked:
            return await _async_target()

    aio = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=datetime.timedelta(seconds=30))
    aio_decorated = aio(_async_target)
    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    loop.run_until_complete(factory.initialize())
    purgatory_decorated = factory("bench")(_async_target)
    purgatory_breaker = loop.run_until_complete(factory.get_breaker("bench"))

    async def purgatory_block() -> int:
        async with purgatory_breaker:
            return await _async_target()

    return {
        "bare": ("bare await", _async_target, None),
        "sloguard-decorator": (
            "sloguard @breaker (async)",
            decorated,
            lambda: default.backend.snapshot().successes_total,  # type: ignore[attr-defined]
        ),
        "sloguard-with": (
            "sloguard async with breaker:",
            block,
            lambda: blocked.backend.snapshot().successes_total,  # type: ignore[attr-defined]
        ),
        "sloguard-window": (
            "sloguard @breaker, failure_ratio window",
            decorated_window,
            lambda: windowed.backend.snapshot().successes_total,  # type: ignore[attr-defined]
        ),
        "aiobreaker-decorator": ("aiobreaker @breaker", aio_decorated, None),
        "purgatory-decorator": ("purgatory @factory(name)", purgatory_decorated, None),
        "purgatory-with": ("purgatory async with breaker: (fetched once)", purgatory_block, None),
    }


def _time_sync(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def _time_async(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[Any]], calls: int
) -> float:
    async def loop_body() -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await fn()
        return (time.perf_counter_ns() - start) / calls

    return loop.run_until_complete(loop_body())


def _summarise(
    labels: dict[str, str], samples: dict[str, list[float]], peers: tuple[str, ...]
) -> dict[str, Any]:
    bare = statistics.median(samples["bare"])
    rows: dict[str, dict[str, Any]] = {}
    for name, values in samples.items():
        median = statistics.median(values)
        rows[name] = {
            "label": labels[name],
            "median_ns": median,
            "min_ns": min(values),
            "overhead_ns": median - bare,
            "rounds_ns": values,
        }
    fastest = min(peers, key=lambda name: rows[name]["overhead_ns"])
    ours = rows["sloguard-decorator"]["overhead_ns"]
    ratio = rows[fastest]["overhead_ns"] / ours
    return {
        "rows": rows,
        "goal": {
            "fastest_peer": fastest,
            "peer_overhead_ns": rows[fastest]["overhead_ns"],
            "sloguard_overhead_ns": ours,
            "ratio": ratio,
            "limit": SPEEDUP_GOAL,
            "met": ratio >= SPEEDUP_GOAL,
        },
    }


def _measure_sync(calls: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    variants = _sync_variants()
    order = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in order}
    shuffle = random.Random(SEED)
    for index in range(rounds + 1):
        progress(f"breaker: sync round {index}/{rounds}" + (" (warm-up)" if index == 0 else ""))
        shuffle.shuffle(order)
        for name in order:
            ns = _time_sync(variants[name][1], calls)
            if index:
                samples[name].append(ns)
    seen = {name: v[2]() for name, v in variants.items() if v[2] is not None}
    expected = calls * (rounds + 1)
    assert all(count == expected for count in seen.values()), (seen, expected)
    labels = {name: v[0] for name, v in variants.items()}
    return _summarise(labels, samples, _PEERS_SYNC)


def _measure_async(calls: int, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    try:
        variants = _async_variants(loop)
        order = list(variants)
        samples: dict[str, list[float]] = {name: [] for name in order}
        shuffle = random.Random(SEED + 1)
        for index in range(rounds + 1):
            progress(f"breaker: async round {index}/{rounds}")
            shuffle.shuffle(order)
            for name in order:
                ns = _time_async(loop, variants[name][1], calls)
                if index:
                    samples[name].append(ns)
        seen = {name: v[2]() for name, v in variants.items() if v[2] is not None}
        expected = calls * (rounds + 1)
        assert all(count == expected for count in seen.values()), (seen, expected)
    finally:
        loop.close()
    labels = {name: v[0] for name, v in variants.items()}
    return _summarise(labels, samples, _PEERS_ASYNC)


def _measure_threads(calls: int, rounds: int) -> dict[str, Any]:
    """Wall ns per call with THREADS threads sharing one breaker; sloguard's counts checked."""
    import purgatory
    import pybreaker

    from sloguard.resilience._breaker import CircuitBreaker
    from sloguard.resilience._types import BreakerPolicy

    default = CircuitBreaker("threads", BreakerPolicy(consecutive_failures=5))
    windowed = CircuitBreaker(
        "threads-window", BreakerPolicy(consecutive_failures=None, failure_ratio=0.5)
    )
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
    purgatory_breaker = factory.get_breaker("threads")

    def purgatory_block() -> int:
        with purgatory_breaker:
            return _target()

    variants: dict[str, Callable[[], Any]] = {
        "bare": _target,
        "sloguard": default(_target),
        "sloguard-window": windowed(_target),
        "pybreaker": pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)(_target),
        "purgatory-with": purgatory_block,
    }
    each = calls // THREADS

    def wall(fn: Callable[[], Any]) -> float:
        barrier = threading.Barrier(THREADS + 1)

        def work() -> None:
            barrier.wait()
            for _ in range(each):
                fn()

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter_ns()
        for thread in threads:
            thread.join()
        return (time.perf_counter_ns() - start) / (each * THREADS)

    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            results[name].append(wall(fn))
    for breaker in (default, windowed):
        seen = breaker.backend.snapshot().successes_total  # type: ignore[attr-defined]
        assert seen == each * THREADS * rounds, (breaker.name, seen)
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {
        "threads": THREADS,
        "median_ns": medians,
        "overhead_ns": {k: v - medians["bare"] for k, v in medians.items()},
        "exact_counts": True,
    }


def _counter_inc_cost(calls: int) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, Counter

    counter = Counter("bench_calls", "x", ["breaker", "outcome"], registry=CollectorRegistry())
    child = counter.labels("bench", "success")
    labelled = min(
        _time_sync(lambda: counter.labels("bench", "success").inc(), calls) for _ in range(3)
    )
    bound = min(_time_sync(child.inc, calls) for _ in range(3))
    noop = min(_time_sync(lambda: None, calls) for _ in range(3))
    return {"labels_inc_ns": labelled - noop, "bound_child_inc_ns": bound - noop}


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    calls = QUICK_CALLS if quick else CALLS
    rounds = QUICK_ROUNDS if quick else ROUNDS
    sync = _measure_sync(calls, rounds, progress)
    asynchronous = _measure_async(calls, rounds, progress)
    progress("breaker: 4 threads, one breaker")
    threads = _measure_threads(calls, max(1, rounds // 2))
    progress("breaker: prometheus counter inc cost")
    counter = _counter_inc_cost(calls)
    return {
        "method": {"calls_per_round": calls, "rounds": rounds, "fairness": FAIRNESS},
        "sync": sync,
        "async": asynchronous,
        "threads": threads,
        "prometheus_counter": counter,
        "goals": [
            {"goal": f"{mode}: fastest peer overhead / sloguard overhead", **result["goal"]}
            for mode, result in (("sync", sync), ("async", asynchronous))
        ],
    }


def _met(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def tables(result: dict[str, Any]) -> list[Table]:
    """The printed form of :func:`run`'s result."""
    method = result["method"]
    out = []
    for mode in ("sync", "async"):
        part = result[mode]
        table = Table(
            title=(
                f"Breaker overhead per successful call ({mode}), ns, median of "
                f"{method['rounds']} rounds x {method['calls_per_round']} calls"
            )
        )
        for column in ("variant", "median", "min", "overhead", "x sloguard @breaker"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        ours = part["rows"]["sloguard-decorator"]["overhead_ns"]
        for name, row in part["rows"].items():
            table.add_row(
                row["label"],
                f"{row['median_ns']:.0f}",
                f"{row['min_ns']:.0f}",
                "-" if name == "bare" else f"{row['overhead_ns']:.0f}",
                "-" if name == "bare" else f"{row['overhead_ns'] / ours:.2f}",
            )
        out.append(table)
    threads = result["threads"]
    contended = Table(title=f"{threads['threads']} threads sharing one breaker, wall ns per call")
    for column in ("variant", "median", "overhead"):
        contended.add_column(column, justify="left" if column == "variant" else "right")
    for name, median in threads["median_ns"].items():
        contended.add_row(name, f"{median:.0f}", f"{threads['overhead_ns'][name]:.0f}")
    out.append(contended)
    goals = Table(title="Breaker goals")
    for column in ("goal", "measured", "limit", "result"):
        goals.add_column(column)
    for goal in result["goals"]:
        goals.add_row(
            goal["goal"],
            f"{goal['peer_overhead_ns']:.0f} ({goal['fastest_peer']}) / "
            f"{goal['sloguard_overhead_ns']:.0f} ns = {goal['ratio']:.2f}",
            f">= {goal['limit']:.1f}",
            _met(goal["met"]),
        )
    counter = result["prometheus_counter"]
    goals.add_row(
        "prometheus Counter.inc per call (why metrics are read at scrape time)",
        f"labels().inc() {counter['labels_inc_ns']:.0f} ns, bound child "
        f"{counter['bound_child_inc_ns']:.0f} ns",
        "-",
        "-",
    )
    out.append(goals)
    return out


if __name__ == "__main__":
    from rich.console import Console

    console = Console()
    for table in tables(run(quick=False, progress=console.log)):
        console.print(table)
