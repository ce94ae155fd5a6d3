"""The Redis-shared breaker's closed-state hot path vs the in-memory one, and how fast a trip
travels between processes.

Hot path: nanoseconds per successful call through :class:`CircuitBreaker` (the
decorator for sync, ``call_async`` for async), same run, rounds interleaved,
median of rounds, with (a) :class:`LocalBreaker` and (b)
:class:`RedisBreakerBackend` on a real Redis (closed state: no round trip per
call, outcomes batched). Goal: (b) within 2x of (a).

Propagation: a second process watches the same breaker; this process records
the failures that trip it; the time from the last failure to the watcher
seeing OPEN is the consistency bound in practice (``sync_interval_s`` 0.1 s,
so a failure is pushed within 20 ms, then one script call and one pub/sub
message).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table
from tests.harness.servers import RedisServer

from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, Outcome

__all__ = ["GOAL", "NAME", "run", "tables"]

NAME = "breaker_shared"
GOAL = 2.0
ROOT = Path(__file__).resolve().parent.parent
PREFIX = "bench:breaker"
WATCHER = """
import sys, time
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState
name = sys.argv[2]
backend = RedisBreakerBackend(name, BreakerPolicy(consecutive_failures=3, open_s=30.0),
                              url=sys.argv[1], prefix="bench:breaker")
while not backend.connected:
    time.sleep(0.001)
print("ready", flush=True)
while backend.state is not BreakerState.OPEN:
    time.sleep(0.0001)
print(time.monotonic(), flush=True)
"""


def _sync_round(breaker: CircuitBreaker, calls: int) -> float:
    @breaker
    def work() -> None:
        return None

    started = time.perf_counter_ns()
    for _ in range(calls):
        work()
    return (time.perf_counter_ns() - started) / calls


def _async_round(breaker: CircuitBreaker, calls: int) -> float:
    async def work() -> None:
        return None

    async def loop() -> float:
        call = breaker.call_async
        started = time.perf_counter_ns()
        for _ in range(calls):
            await call(work)
        return (time.perf_counter_ns() - started) / calls

    return asyncio.run(loop())


def _hot_path(url: str, quick: bool, progress: Callable[..., Any]) -> dict[str, Any]:
    policy = BreakerPolicy(consecutive_failures=5)
    calls, rounds = (20_000, 3) if quick else (200_000, 7)
    redis_backend = RedisBreakerBackend("hot", policy, url=url, prefix=PREFIX)
    while not redis_backend.connected:
        time.sleep(0.001)
    breakers = {
        "local": CircuitBreaker("hot", backend=LocalBreaker("hot", policy)),
        "redis": CircuitBreaker("hot", backend=redis_backend),
    }
    samples: dict[str, list[float]] = {f"{b}_{m}": [] for b in breakers for m in ("sync", "async")}
    for round_ in range(rounds):
        progress(f"{NAME}: hot path round {round_ + 1}/{rounds}")
        for label, breaker in breakers.items():
            samples[f"{label}_sync"].append(_sync_round(breaker, calls))
            samples[f"{label}_async"].append(_async_round(breaker, calls))
    connected = redis_backend.connected
    redis_backend.close()
    result: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds, "connected": connected}
    for key, values in samples.items():
        result[f"{key}_ns"] = round(statistics.median(values), 1)
    for mode in ("sync", "async"):
        result[f"ratio_{mode}"] = round(result[f"redis_{mode}_ns"] / result[f"local_{mode}_ns"], 2)
    return result


def _propagation(url: str, quick: bool, progress: Callable[..., Any]) -> dict[str, Any]:
    trips = 5 if quick else 20
    delays = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    policy = BreakerPolicy(consecutive_failures=3, open_s=30.0)
    for trip in range(trips):
        progress(f"{NAME}: propagation {trip + 1}/{trips}")
        name = f"trip-{trip}"
        watcher = subprocess.Popen(
            [sys.executable, "-c", WATCHER, url, name], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert watcher.stdout is not None
            if watcher.stdout.readline().strip() != "ready":
                raise RuntimeError("the watcher process did not start")
            with RedisBreakerBackend(name, policy, url=url, prefix=PREFIX) as backend:
                while not backend.connected:
                    time.sleep(0.001)
                time.sleep(0.15)  # a quiet breaker: the failure waits for no earlier sync
                for _ in range(3):
                    backend.record(backend.admit(), Outcome.FAILURE, 0.001)
                tripped = time.monotonic()
                delays.append(float(watcher.stdout.readline()) - tripped)
        finally:
            watcher.kill()
            watcher.communicate()
    ms = sorted(d * 1000 for d in delays)
    return {
        "trips": trips,
        "seen_median_ms": round(statistics.median(ms), 2),
        "seen_p95_ms": round(ms[max(0, round(0.95 * len(ms)) - 1)], 2),
        "seen_max_ms": round(ms[-1], 2),
    }


def run(quick: bool = False, progress: Callable[..., Any] = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir, RedisServer(Path(workdir)) as server:
        result = _hot_path(server.url, quick, progress)
        result.update(_propagation(server.url, quick, progress))
    result["goal_met"] = result["ratio_sync"] <= GOAL and result["ratio_async"] <= GOAL
    return result


def tables(result: dict[str, Any]) -> list[Table]:
    hot = Table(
        title=(
            f"Breaker closed-state hot path, ns per successful call through CircuitBreaker "
            f"({result['calls_per_round']:,} calls x {result['rounds']} rounds, median)"
        )
    )
    for column in ("mode", "(a) LocalBreaker", "(b) RedisBreakerBackend", "(b) / (a)"):
        hot.add_column(column, justify="left" if column == "mode" else "right")
    for mode in ("sync", "async"):
        hot.add_row(
            mode,
            f"{result[f'local_{mode}_ns']:.0f}",
            f"{result[f'redis_{mode}_ns']:.0f}",
            f"{result[f'ratio_{mode}']:.2f}x",
        )
    hot.add_row(
        f"goal: (b) within {GOAL:g}x of (a)", "", "", "met" if result["goal_met"] else "missed"
    )
    seen = Table(title=f"A trip seen by another process ({result['trips']} trips)")
    for column in ("median ms", "p95 ms", "max ms"):
        seen.add_column(column, justify="right")
    seen.add_row(
        f"{result['seen_median_ms']:.2f}",
        f"{result['seen_p95_ms']:.2f}",
        f"{result['seen_max_ms']:.2f}",
    )
    return [hot, seen]
