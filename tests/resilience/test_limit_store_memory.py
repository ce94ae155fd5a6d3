"""The in-memory limiter store: exact, bounded, and the same API as Redis's."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.resilience._clock import ManualClock
from sloguard.resilience._gcra import Gcra, GcraDecision
from sloguard.resilience._limit_store import MemoryLimiterStore
from sloguard.resilience._ratelimit import Algorithm, RateLimit
from sloguard.resilience._sliding import EMPTY_STATE

ALGORITHMS = [
    pytest.param(Algorithm.GCRA, id="gcra"),
    pytest.param(Algorithm.SLIDING_WINDOW, id="sliding"),
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ten_seconds_at_three_times_100_per_second_admits_1000_within_one_percent(
    algorithm: Algorithm,
) -> None:
    clock = ManualClock()
    store = MemoryLimiterStore(clock=clock)
    limit = RateLimit("api", 100, 1.0, burst=1, algorithm=algorithm)
    admitted = 0
    for _ in range(3000):
        admitted += store.decide_sync(limit, "client").allowed
        clock.advance(1 / 300)
    assert abs(admitted - 1000) <= 10


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_traffic_at_exactly_the_rate_is_admitted_within_one_percent(algorithm: Algorithm) -> None:
    clock = ManualClock(start=0.5)
    store = MemoryLimiterStore(clock=clock)
    limit = RateLimit("api", 100, 1.0, algorithm=algorithm)
    admitted = 0
    for _ in range(1000):
        admitted += store.decide_sync(limit, "client").allowed
        clock.advance(0.01)
    # GCRA is exact; the sliding counter's estimate may refuse a few on window edges
    assert admitted >= 990


def test_keys_are_counted_apart_and_hot_keys_use_their_override() -> None:
    store = MemoryLimiterStore(clock=ManualClock())
    limit = RateLimit("t", 2, 60.0, key="tenant", overrides={"big": 5})
    small = [store.decide_sync(limit, "small").allowed for _ in range(3)]
    big = [store.decide_sync(limit, "big").allowed for _ in range(6)]
    assert small == [True, True, False]
    assert big == [True] * 5 + [False]


def test_the_async_api_gives_the_same_answers() -> None:
    store = MemoryLimiterStore(clock=ManualClock())
    limit = RateLimit("a", 2, 60.0)

    async def three() -> list[bool]:
        return [(await store.decide(limit, "k")).allowed for _ in range(3)]

    assert asyncio.run(three()) == [True, True, False]


def test_expired_keys_are_swept_when_the_store_is_full() -> None:
    clock = ManualClock()
    store = MemoryLimiterStore(clock=clock, max_keys=100)
    limit = RateLimit("ip", 10, 1.0)
    for n in range(100):
        store.decide_sync(limit, f"10.0.0.{n}")
    clock.advance(5.0)
    store.decide_sync(limit, "10.0.1.1")
    assert len(store) == 1


def test_a_full_store_of_live_keys_forgets_the_least_recently_used() -> None:
    clock = ManualClock()
    store = MemoryLimiterStore(clock=clock, max_keys=100)
    limit = RateLimit("ip", 1, 3600.0)
    store.decide_sync(limit, "hot")
    for n in range(150):
        store.decide_sync(limit, f"cold-{n}")
        store.decide_sync(limit, "hot")
    assert len(store) <= 100
    assert not store.decide_sync(limit, "hot").allowed
    assert store.decide_sync(limit, "cold-0").allowed


def test_concurrent_threads_never_admit_more_than_the_limit() -> None:
    store = MemoryLimiterStore(clock=ManualClock())
    limit = RateLimit("shared", 500, 3600.0)
    admitted: list[int] = []

    def worker() -> None:
        admitted.append(sum(store.decide_sync(limit, "k").allowed for _ in range(200)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 500


def test_a_bad_size_names_the_field() -> None:
    with pytest.raises(ValueError, match="'max_keys'"):
        MemoryLimiterStore(max_keys=0)


def model_answers(
    limit: RateLimit, steps: list[tuple[float, int]]
) -> list[tuple[bool, int, float]]:
    """What the sans-I/O model says for each (time step, cost), state kept by hand."""
    model, now, answers = limit.model, 1_000.0, []
    state: object = 0.0 if isinstance(model, Gcra) else EMPTY_STATE
    for step, cost in steps:
        now += step
        decided = model.decide(state, now, cost)  # type: ignore[arg-type]
        if decided.allowed:
            state = decided.new_tat if isinstance(decided, GcraDecision) else decided.state
        answers.append((decided.allowed, decided.remaining, decided.retry_after_s))
    return answers


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([0.0, 0.01, 0.3, 1.7, 5.0]), st.integers(1, 4))))
def test_the_inline_fast_path_answers_exactly_as_the_sans_io_model(
    algorithm: Algorithm, steps: list[tuple[float, int]]
) -> None:
    clock = ManualClock(start=1_000.0)
    store = MemoryLimiterStore(clock=clock)
    limit = RateLimit("same", 5, 2.0, burst=3, algorithm=algorithm)
    answers = []
    for step, cost in steps:
        clock.advance(step)
        d = store.decide_sync(limit, "k", cost)
        answers.append((d.allowed, d.remaining, d.retry_after_s))
    assert answers == model_answers(limit, steps)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_limit_through_decide_all_matches_decide(algorithm: Algorithm) -> None:
    clock = ManualClock()
    single, grouped = MemoryLimiterStore(clock=clock), MemoryLimiterStore(clock=clock)
    limit = RateLimit("one", 3, 1.0, algorithm=algorithm)
    for _ in range(5):
        a, (b,) = single.decide_sync(limit, "k"), grouped.decide_all_sync([(limit, "k", 1)])
        assert a == b
        clock.advance(0.1)


def test_a_refused_new_key_leaves_no_entry() -> None:
    store = MemoryLimiterStore(clock=ManualClock())
    limit = RateLimit("big", 10, 1.0, burst=2)
    assert not store.decide_sync(limit, "k", cost=3).allowed
    assert len(store) == 0
