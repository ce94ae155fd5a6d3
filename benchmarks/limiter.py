"""Rate limiter decisions per second: sloguard against the ``limits`` library.

Both libraries decide on the same traffic: 1,000 keys cycled, 10,000 per
minute per key (more than a key gets in all rounds, so every decision admits
and writes its state; the benchmark checks it), one decision per request. Groups:

* **memory, sync, one caller**: sloguard's ``MemoryLimiterStore`` (GCRA and
  sliding window counter) against ``limits``' ``MemoryStorage`` with its moving
  window, sliding window counter and fixed window strategies. A third
  sloguard row goes through the whole ``RateLimiter.check_sync`` (key
  extraction from a ``RequestInfo`` and the per-request result) for GCRA.
* **memory, async, 64 tasks**: the same through the async APIs
  (``limits.aio`` memory storage).
* **Redis, sync, one caller** and **8 threads**: ``RedisLimiterStore.decide_sync``
  against ``limits.storage.RedisStorage``.
* **Redis, async, one caller** and **64 tasks**: ``RedisLimiterStore.decide``
  against ``limits.aio.storage.RedisStorage`` with redis-py's asyncio client
  (``implementation="redispy"``; limits 5.8 defaults to coredis, which is not
  installed here).

What is compared: sloguard's store call ``decide(limit, key)`` against
``limits``' ``strategy.hit(item, key)``, the public entry point of each that
takes a policy and a key and charges it. sloguard's answers carry more (the
remaining quota and reset time for the RateLimit headers; ``hit`` returns a
bool, and ``limits`` needs a second call, ``get_window_stats``, for those).
Every Redis decision of either library is one round trip (one ``EVALSHA``),
so the single-caller Redis rows are bound by the round trip for both; the
concurrent rows are where sloguard coalesces decisions into shared calls
(async tasks in one loop turn, or threads through the group commit).

The Redis is a real ``redis-server`` started on a free loopback port
(:class:`tests.harness.servers.RedisServer`), flushed before each round. The
variants of a group run interleaved, round after round, and the median
decisions/s is reported, so load from anything else on the 2-core box falls on
every variant alike. Ratios set each sloguard row against the fastest
``limits`` strategy of its group, and sloguard's sliding window against
``limits``' sliding window counter (the same algorithm). Goal: sloguard at
least 2x the ``limits`` library's decisions/s.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import limits
import limits.aio
from limits import RateLimitItemPerSecond, strategies
from rich.table import Table
from tests.harness.servers import RedisServer

from sloguard.resilience._limit_keys import RequestInfo
from sloguard.resilience._limit_store import MemoryLimiterStore, RedisLimiterStore
from sloguard.resilience._ratelimit import Algorithm, RateLimit, RateLimiter

__all__ = ["GOAL", "NAME", "run", "tables"]

NAME = "limiter"
GOAL = 2.0
KEYS = [f"10.0.{n // 250}.{n % 250}" for n in range(1000)]
TASKS = 64
THREADS = 8
#: per key per minute: above what a key gets in all rounds (every decision admits),
#: and a realistic size for the moving window's per-key log
PER_MINUTE = 10_000

SYNC_STRATEGIES = {
    "moving window": strategies.MovingWindowRateLimiter,
    "sliding window counter": strategies.SlidingWindowCounterRateLimiter,
    "fixed window": strategies.FixedWindowRateLimiter,
}
ASYNC_STRATEGIES = {
    "moving window": limits.aio.strategies.MovingWindowRateLimiter,
    "sliding window counter": limits.aio.strategies.SlidingWindowCounterRateLimiter,
    "fixed window": limits.aio.strategies.FixedWindowRateLimiter,
}
ITEM = RateLimitItemPerSecond(PER_MINUTE, 60)
GCRA = RateLimit("bench-gcra", PER_MINUTE, 60.0)
SLIDING = RateLimit("bench-sliding", PER_MINUTE, 60.0, algorithm=Algorithm.SLIDING_WINDOW)
SLOGUARD_LIMITS = {"GCRA": GCRA, "sliding window": SLIDING}


@dataclass(frozen=True)
class Variant:
    group: str
    name: str
    library: str
    #: runs ``ops`` decisions, returns how many admitted
    run: Callable[[int], int]


def _sync_one(decide: Callable[[str], bool]) -> Callable[[int], int]:
    def run(ops: int) -> int:
        keys = KEYS
        return sum(decide(keys[n % 1000]) for n in range(ops))

    return run


def _sync_threads(decide: Callable[[str], bool]) -> Callable[[int], int]:
    def run(ops: int) -> int:
        counts: list[int] = []

        def worker(offset: int) -> None:
            keys = KEYS
            counts.append(sum(decide(keys[(offset + n) % 1000]) for n in range(ops // THREADS)))

        threads = [threading.Thread(target=worker, args=(i * 97,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts)

    return run


def _async_run(
    decide: Callable[[str], Awaitable[bool]],
    tasks: int,
    setup: Callable[[], Any] | None = None,
    teardown: Callable[[Any], Awaitable[None]] | None = None,
) -> Callable[[int], int]:
    def run(ops: int) -> int:
        async def main() -> int:
            state = setup() if setup is not None else None
            counts: list[int] = []

            async def caller(offset: int) -> None:
                keys, admitted = KEYS, 0
                for n in range(ops // tasks):
                    admitted += await decide(keys[(offset + n) % 1000])
                counts.append(admitted)

            try:
                await asyncio.gather(*(caller(i * 97) for i in range(tasks)))
            finally:
                if teardown is not None:
                    await teardown(state)
            return sum(counts)

        return asyncio.run(main())

    return run


def _variants(redis_url: str) -> list[Variant]:
    variants: list[Variant] = []
    # memory
    for name, limit in SLOGUARD_LIMITS.items():
        store = MemoryLimiterStore()
        variants.append(
            Variant(
                "memory, sync, 1 caller",
                name,
                "sloguard",
                _sync_one(lambda k, s=store, lim=limit: s.decide_sync(lim, k).allowed),
            )
        )
        astore = MemoryLimiterStore()

        async def mem_async(k: str, s: MemoryLimiterStore = astore, lim: RateLimit = limit) -> bool:
            return (await s.decide(lim, k)).allowed

        variants.append(
            Variant(f"memory, async, {TASKS} tasks", name, "sloguard", _async_run(mem_async, TASKS))
        )
    checker = RateLimiter([GCRA], MemoryLimiterStore())
    infos = {key: RequestInfo(client_ip=key) for key in KEYS}

    def check(key: str) -> bool:
        return checker.check_sync(infos[key]).allowed

    variants.append(
        Variant(
            "memory, sync, 1 caller", "GCRA, RateLimiter.check_sync", "sloguard", _sync_one(check)
        )
    )
    for name, strategy in SYNC_STRATEGIES.items():
        limiter = strategy(limits.storage.MemoryStorage())
        variants.append(
            Variant(
                "memory, sync, 1 caller",
                name,
                "limits",
                _sync_one(lambda k, lim=limiter: lim.hit(ITEM, k)),
            )
        )
    for name, astrategy in ASYNC_STRATEGIES.items():
        alimiter = astrategy(limits.aio.storage.MemoryStorage())

        async def lim_mem_async(k: str, lim: Any = alimiter) -> bool:
            return bool(await lim.hit(ITEM, k))

        variants.append(
            Variant(
                f"memory, async, {TASKS} tasks", name, "limits", _async_run(lim_mem_async, TASKS)
            )
        )
    # redis, sloguard
    for name, limit in SLOGUARD_LIMITS.items():
        rstore = RedisLimiterStore(redis_url, timeout_s=1.0)

        def decide_sync(k: str, s: RedisLimiterStore = rstore, lim: RateLimit = limit) -> bool:
            return s.decide_sync(lim, k).allowed

        variants.append(Variant("Redis, sync, 1 caller", name, "sloguard", _sync_one(decide_sync)))
        variants.append(
            Variant(f"Redis, sync, {THREADS} threads", name, "sloguard", _sync_threads(decide_sync))
        )
        for tasks in (1, TASKS):
            astore_r = RedisLimiterStore(redis_url, timeout_s=1.0)

            async def decide_async(
                k: str, s: RedisLimiterStore = astore_r, lim: RateLimit = limit
            ) -> bool:
                return (await s.decide(lim, k)).allowed

            async def close(_: Any, s: RedisLimiterStore = astore_r) -> None:
                await s.aclose()

            group = f"Redis, async, {tasks} {'caller' if tasks == 1 else 'tasks'}"
            variants.append(
                Variant(group, name, "sloguard", _async_run(decide_async, tasks, None, close))
            )
    # redis, limits
    for name, strategy in SYNC_STRATEGIES.items():
        rlimiter = strategy(limits.storage.RedisStorage(redis_url, key_prefix=f"L{len(name)}"))

        def hit(k: str, lim: Any = rlimiter) -> bool:
            return bool(lim.hit(ITEM, k))

        variants.append(Variant("Redis, sync, 1 caller", name, "limits", _sync_one(hit)))
        variants.append(
            Variant(f"Redis, sync, {THREADS} threads", name, "limits", _sync_threads(hit))
        )
    for name, astrategy in ASYNC_STRATEGIES.items():
        for tasks in (1, TASKS):
            holder: dict[str, Any] = {}

            def setup(h: dict[str, Any] = holder, strat: Any = astrategy, n: str = name) -> None:
                storage = limits.aio.storage.RedisStorage(
                    "async+" + redis_url, implementation="redispy", key_prefix=f"A{len(n)}"
                )
                h["limiter"] = strat(storage)

            async def ahit(k: str, h: dict[str, Any] = holder) -> bool:
                return bool(await h["limiter"].hit(ITEM, k))

            async def aclose(_: Any, h: dict[str, Any] = holder) -> None:
                await h["limiter"].storage.bridge.storage.aclose()

            group = f"Redis, async, {tasks} {'caller' if tasks == 1 else 'tasks'}"
            variants.append(Variant(group, name, "limits", _async_run(ahit, tasks, setup, aclose)))
    return variants


def _ops(group: str, quick: bool) -> int:
    if group.startswith("memory"):
        return 4_096 if quick else 40_000
    return 1_024 if quick else 6_400


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-limiter-") as workdir:
        server = RedisServer(Path(workdir)).start()
        try:
            variants = _variants(server.url)
            samples: dict[tuple[str, str, str], list[float]] = {
                (v.group, v.library, v.name): [] for v in variants
            }
            for index in range(rounds + 1):
                progress(f"limiter: round {index}/{rounds}" + (" (warm-up)" if index == 0 else ""))
                server.flushall()
                for variant in variants:
                    ops = _ops(variant.group, quick) if index else 256
                    began = time.perf_counter()
                    admitted = variant.run(ops)
                    elapsed = time.perf_counter() - began
                    if admitted < ops - ops % TASKS - ops % THREADS:
                        raise RuntimeError(f"{variant}: admitted {admitted} of {ops}")
                    if index:
                        samples[(variant.group, variant.library, variant.name)].append(
                            ops / elapsed
                        )
        finally:
            server.stop()
    rows = []
    for (group, library, name), values in samples.items():
        rows.append(
            {
                "group": group,
                "library": library,
                "variant": name,
                "decisions_per_s": statistics.median(values),
                "rounds": values,
            }
        )
    ratios = _ratios(rows)
    return {
        "keys": len(KEYS),
        "tasks": TASKS,
        "threads": THREADS,
        "limits_version": limits.__version__,
        "limits_async_redis": "limits.aio RedisStorage(implementation='redispy')",
        "rows": rows,
        "ratios": ratios,
        "goal": GOAL,
        "goal_met": all(r["vs_best_limits"] >= GOAL for r in ratios),
    }


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ratios = []
    for group in dict.fromkeys(r["group"] for r in rows):
        peers = [r for r in rows if r["group"] == group and r["library"] == "limits"]
        best = max(peers, key=lambda r: r["decisions_per_s"])
        swc = next(r for r in peers if r["variant"] == "sliding window counter")
        for ours in (r for r in rows if r["group"] == group and r["library"] == "sloguard"):
            ratios.append(
                {
                    "group": group,
                    "variant": ours["variant"],
                    "vs_best_limits": ours["decisions_per_s"] / best["decisions_per_s"],
                    "best_limits": best["variant"],
                    "vs_limits_sliding_window_counter": ours["decisions_per_s"]
                    / swc["decisions_per_s"],
                }
            )
    return ratios


def tables(result: dict[str, Any]) -> list[Table]:
    table = Table(
        title=(
            f"Rate limiter decisions/s, sloguard vs limits {result['limits_version']} "
            f"({result['keys']} keys, every decision admitted and written; median of rounds)"
        )
    )
    for column in ("group", "library", "variant", "decisions/s", "sloguard / best limits"):
        table.add_column(column, justify="right" if column[0] in "ds" else "left")
    ratio = {(r["group"], r["variant"]): r for r in result["ratios"]}
    for row in result["rows"]:
        found = ratio.get((row["group"], row["variant"]))
        shown = (
            f"{found['vs_best_limits']:.1f}x (vs {found['best_limits']})"
            if found and row["library"] == "sloguard"
            else ""
        )
        table.add_row(
            row["group"], row["library"], row["variant"], f"{row['decisions_per_s']:,.0f}", shown
        )
    table.add_row(
        f"goal: sloguard >= {GOAL:g}x limits", "", "", "", "met" if result["goal_met"] else "missed"
    )
    return [table]


if __name__ == "__main__":
    from rich.console import Console

    outcome = run(quick="--quick" in sys.argv)
    for made in tables(outcome):
        Console().print(made)
