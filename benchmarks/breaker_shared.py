"""The Redis-shared breaker's closed-state hot path vs the in-memory one, and how fast a trip
travels between processes.

Hot path: nanoseconds per successful call through :class:`CircuitBreaker` (the
decorator for sync, ``call_async`` for async), same run, rounds interleaved,
median of rounds, with (a) :class:`LocalBreaker` and (b)
:class:`RedisBreakerBackend` on a real Redis (closed state: no round trip per
call, outcomes batched). Each round is timed twice: wall time, and the calling
thread's CPU time, which a loaded machine (other processes, the Redis agent's
thread) does not inflate. Goal: (b) within 2x of (a) by CPU time.

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


def _sync_round(breaker: CircuitBreaker, calls: int, cpu: list[float] | None = None) -> float:
    """Wall ns per call; the thread's CPU ns per call is appended to ``cpu`` when given."""

    @breaker
    def work() -> None:
        return None

    started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(calls):
        work()
    if cpu is not None:
        cpu.append((time.thread_time_ns() - cpu_started) / calls)
    return (time.perf_counter_ns() - started) / calls


def _async_round(breaker: CircuitBreaker, calls: int, cpu: list[float] | None = None) -> float:
    """As :func:`_sync_round`, awaiting ``call_async`` in one event loop."""

    async def work() -> None:
        return None

    async def loop() -> float:
        call = breaker.call_async
        started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(calls):
            await call(work)
        if cpu is not None:
            cpu.append((time.thread_time_ns() - cpu_started) / calls)
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
    keys = [f"{b}_{m}{t}" for b in breakers for m in ("sync", "async") for t in ("", "_cpu")]
    samples: dict[str, list[float]] = {key: [] for key in keys}
    for round_ in range(rounds):
        progress(f"{NAME}: hot path round {round_ + 1}/{rounds}")
        for label, breaker in breakers.items():
            for mode, timed in (("sync", _sync_round), ("async", _async_round)):
                key = f"{label}_{mode}"
                samples[key].append(timed(breaker, calls, samples[f"{key}_cpu"]))
    connected = redis_backend.connected
    redis_backend.close()
    result: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds, "connected": connected}
    for key, values in samples.items():
        result[f"{key}_ns"] = round(statistics.median(values), 1)
    for mode in ("sync", "async"):
        for t in ("", "_cpu"):
            ratio = result[f"redis_{mode}{t}_ns"] / result[f"local_{mode}{t}_ns"]
            result[f"ratio_{mode}{t}"] = round(ratio, 2)
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
    result["goal_met"] = result["ratio_sync_cpu"] <= GOAL and result["ratio_async_cpu"] <= GOAL
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
        for t, clock in (("_cpu", "CPU"), ("", "wall")):
            hot.add_row(
                f"{mode} ({clock})",
                f"{result[f'local_{mode}{t}_ns']:.0f}",
                f"{result[f'redis_{mode}{t}_ns']:.0f}",
                f"{result[f'ratio_{mode}{t}']:.2f}x",
            )
    hot.add_row(
        f"goal: (b) within {GOAL:g}x of (a) by CPU time",
        "",
        "",
        "met" if result["goal_met"] else "missed",
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
