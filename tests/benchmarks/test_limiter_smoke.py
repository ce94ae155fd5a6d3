"""The rate limiter benchmark still runs, and every limiter it times really decides per key.

Speed is not asserted here (``make bench`` measures it); behaviour is, with
the benchmark's limit swapped for one request per hour and its 1,000 keys for
10 distinct ones: every variant of every group, sloguard's and the ``limits``
library's, in memory and on a real Redis, one caller or many, admits exactly
one request per key -- so each decides, keeps its state per key, shares it
across its threads or tasks, and the Redis ones keep it in Redis.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from limits import RateLimitItemPerSecond
from rich.console import Console

from benchmarks import limiter
from sloguard.resilience._ratelimit import Algorithm, RateLimit
from tests.harness.servers import RedisServer

DISTINCT = 10
OPS = 128  # a whole number of decisions per thread and per task
HOURLY = {
    "GCRA": RateLimit("smoke-gcra", 1, 3600.0),
    "sliding window": RateLimit("smoke-sliding", 1, 3600.0, algorithm=Algorithm.SLIDING_WINDOW),
}
GROUPS = [
    "memory, sync, 1 caller",
    "memory, async, 64 tasks",
    "Redis, sync, 1 caller",
    "Redis, sync, 8 threads",
    "Redis, async, 1 caller",
    "Redis, async, 64 tasks",
]


@pytest.fixture
def hourly(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> list[limiter.Variant]:
    """The benchmark's variants, one request per key per hour, 10 distinct keys."""
    monkeypatch.setattr(limiter, "KEYS", [f"10.9.0.{n % DISTINCT}" for n in range(1000)])
    monkeypatch.setattr(limiter, "ITEM", RateLimitItemPerSecond(1, 3600))
    monkeypatch.setattr(limiter, "GCRA", HOURLY["GCRA"])
    monkeypatch.setattr(limiter, "SLIDING", HOURLY["sliding window"])
    monkeypatch.setattr(limiter, "SLOGUARD_LIMITS", HOURLY)
    return limiter._variants(redis_server.url)


def _row(group: str, library: str, variant: str, rate: float) -> dict[str, Any]:
    return {"group": group, "library": library, "variant": variant, "decisions_per_s": rate}


def _result() -> dict[str, Any]:
    group = GROUPS[0]
    rows = [
        _row(group, "sloguard", "GCRA", 400.0),
        _row(group, "sloguard", "sliding window", 150.0),
        _row(group, "limits", "moving window", 100.0),
        _row(group, "limits", "sliding window counter", 50.0),
        _row(group, "limits", "fixed window", 200.0),
    ]
    ratios = limiter._ratios(rows)
    return {
        "limits_version": "5.8.0",
        "keys": 1000,
        "rows": rows,
        "ratios": ratios,
        "goal_met": all(r["vs_best_limits"] >= limiter.GOAL for r in ratios),
    }


def test_every_group_sets_both_sloguard_algorithms_against_three_limits_strategies(
    hourly: list[limiter.Variant],
) -> None:
    assert list(dict.fromkeys(v.group for v in hourly)) == GROUPS
    for group in GROUPS:
        ours = {v.name for v in hourly if v.group == group and v.library == "sloguard"}
        theirs = {v.name for v in hourly if v.group == group and v.library == "limits"}
        assert ours >= set(limiter.SLOGUARD_LIMITS)
        assert theirs == set(limiter.SYNC_STRATEGIES)


def test_every_variant_admits_exactly_one_request_per_key(
    hourly: list[limiter.Variant], redis_server: RedisServer
) -> None:
    admitted, stored = {}, {}
    for variant in hourly:
        redis_server.flushall()
        name = f"{variant.group} / {variant.library} {variant.name}"
        admitted[name] = variant.run(OPS)
        if variant.group.startswith("Redis"):
            stored[name] = redis_server.command("DBSIZE")
    assert admitted == dict.fromkeys(admitted, DISTINCT)
    assert stored == dict.fromkeys(stored, f":{DISTINCT}")


@pytest.mark.parametrize(
    "quick",
    [
        pytest.param(
            True,
            id="quick",
        ),
        pytest.param(False, id="full"),
    ],
)
def test_every_round_splits_evenly_across_threads_and_tasks(quick: bool) -> None:
    for group in GROUPS:
        ops = limiter._ops(group, quick)
        assert ops % limiter.TASKS == ops % limiter.THREADS == 0


def test_ratios_set_each_sloguard_row_against_the_fastest_limits_strategy() -> None:
    ratios = {r["variant"]: r for r in _result()["ratios"]}
    assert {v: r["best_limits"] for v, r in ratios.items()} == dict.fromkeys(
        ("GCRA", "sliding window"), "fixed window"
    )
    assert (ratios["GCRA"]["vs_best_limits"], ratios["sliding window"]["vs_best_limits"]) == (
        2.0,
        0.75,
    )
    assert ratios["sliding window"]["vs_limits_sliding_window_counter"] == 3.0


def test_tables_print_every_row_the_ratio_and_the_goal() -> None:
    out = io.StringIO()
    Console(file=out, width=250).print(*limiter.tables(_result()))
    text = out.getvalue()
    assert all(name in text for name in ("moving window", "fixed window", "GCRA"))
    assert "2.0x (vs fixed window)" in text
    assert "missed" in text
