"""The breaker benchmark still runs, and every breaker it times is really in the call path.

Speed is not asserted here (``make bench`` measures it); behaviour is: each
variant, fed a failing function, stops calling it after its documented trip
(5 consecutive failures for sloguard, pybreaker, aiobreaker and purgatory; the
20-call minimum of sloguard's failure-ratio window), the bare call never
stops, sloguard counts every success of a timed round, and the quick run's
result has every row its tables print.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from rich.console import Console

from benchmarks import breaker

CALLS = 30
SYNC_TRIPS = {
    "bare": CALLS,
    "sloguard-decorator": 5,
    "sloguard-call": 5,
    "sloguard-with": 5,
    "sloguard-window": 20,
    "pybreaker-call": 5,
    "pybreaker-decorator": 5,
    "purgatory-decorator": 5,
    "purgatory-with": 5,
}
ASYNC_TRIPS = {
    "bare": CALLS,
    "sloguard-decorator": 5,
    "sloguard-with": 5,
    "sloguard-window": 20,
    "aiobreaker-decorator": 5,
    "purgatory-decorator": 5,
    "purgatory-with": 5,
}


class Failing:
    """Counts its calls and always raises, as a protected service that is down."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        raise RuntimeError("down")


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> Failing:
    target = Failing()

    async def awaited() -> int:  # a function: aiobreaker's decorator refuses other callables
        return target()

    monkeypatch.setattr(breaker, "_target", target)
    monkeypatch.setattr(breaker, "_async_target", awaited)
    return target


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    made = asyncio.new_event_loop()
    yield made
    made.close()


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    """The quick run's code path, with fewer calls and one timed round."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(breaker, "QUICK_CALLS", 400)
        patch.setattr(breaker, "QUICK_ROUNDS", 1)
        return breaker.run(quick=True, progress=lambda _: None)


def _call_ignoring_errors(fn: Callable[[], Any], calls: int) -> None:
    for _ in range(calls):
        try:
            fn()
        except Exception:  # noqa: S112 -- the failure or the breaker's refusal, both expected
            continue


@pytest.mark.parametrize(
    ("name", "reached"), [pytest.param(*kv, id=kv[0]) for kv in SYNC_TRIPS.items()]
)
def test_each_sync_variant_stops_calling_a_failing_function_after_its_trip(
    failing: Failing, name: str, reached: int
) -> None:
    _label, call, _count = breaker._sync_variants()[name]
    _call_ignoring_errors(call, CALLS)
    assert failing.calls == reached


# aiobreaker opens with datetime.utcnow(), deprecated on 3.12+: as an error it would stop the trip
@pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")
@pytest.mark.parametrize(
    ("name", "reached"), [pytest.param(*kv, id=kv[0]) for kv in ASYNC_TRIPS.items()]
)
def test_each_async_variant_stops_awaiting_a_failing_function_after_its_trip(
    failing: Failing, loop: asyncio.AbstractEventLoop, name: str, reached: int
) -> None:
    _label, call, _count = breaker._async_variants(loop)[name]

    async def drive(fn: Callable[[], Awaitable[Any]]) -> None:
        for _ in range(CALLS):
            try:
                await fn()
            except Exception:  # noqa: S112 -- the failure or the breaker's refusal
                continue

    loop.run_until_complete(drive(call))
    assert failing.calls == reached


def test_sloguard_sync_rows_count_every_successful_call() -> None:
    variants = breaker._sync_variants()
    counters = {name: count for name, (_, _, count) in variants.items() if count is not None}
    for name in counters:
        _call_ignoring_errors(variants[name][1], 7)
    assert {name: count() for name, count in counters.items()} == dict.fromkeys(counters, 7)
    assert set(counters) == {name for name in variants if name.startswith("sloguard-")}


def test_sloguard_async_rows_count_every_successful_call(loop: asyncio.AbstractEventLoop) -> None:
    variants = breaker._async_variants(loop)
    counters = {name: count for name, (_, _, count) in variants.items() if count is not None}

    async def drive() -> None:
        for name in counters:
            for _ in range(7):
                await variants[name][1]()

    loop.run_until_complete(drive())
    assert {name: count() for name, count in counters.items()} == dict.fromkeys(counters, 7)
    assert set(counters) == {name for name in variants if name.startswith("sloguard-")}


def test_the_compared_peers_are_rows_of_their_mode() -> None:
    loop = asyncio.new_event_loop()
    try:
        async_names = set(breaker._async_variants(loop))
    finally:
        loop.close()
    assert set(breaker._PEERS_SYNC) < set(breaker._sync_variants()) == set(SYNC_TRIPS)
    assert set(breaker._PEERS_ASYNC) < async_names == set(ASYNC_TRIPS)


def test_quick_run_reports_every_row_goal_and_contended_variant(quick: dict[str, Any]) -> None:
    assert set(quick["sync"]["rows"]) == set(SYNC_TRIPS)
    assert set(quick["async"]["rows"]) == set(ASYNC_TRIPS)
    rounds = quick["method"]["rounds"]
    assert all(len(r["rounds_ns"]) == rounds for r in quick["sync"]["rows"].values())
    sync_goal, async_goal = quick["goals"]
    assert sync_goal["fastest_peer"] in breaker._PEERS_SYNC
    assert async_goal["fastest_peer"] in breaker._PEERS_ASYNC
    assert {"bare", "sloguard", "pybreaker"} <= set(quick["threads"]["median_ns"])
    assert set(quick["prometheus_counter"]) == {"labels_inc_ns", "bound_child_inc_ns"}


def test_tables_print_every_variant_and_both_goals(quick: dict[str, Any]) -> None:
    out = io.StringIO()
    console = Console(file=out, width=250)
    for table in breaker.tables(quick):
        console.print(table)
    text = out.getvalue()
    labels = {r["label"] for mode in ("sync", "async") for r in quick[mode]["rows"].values()}
    assert all(label in text for label in labels)
    assert text.count("fastest peer overhead / sloguard overhead") == 2
