"""The user API: decorator, context managers, call, fallback, errors, registry."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from sloguard.errors import SloguardHTTPError, problem_body
from sloguard.resilience._breaker import (
    BreakerOpenError,
    BreakerRegistry,
    CircuitBreaker,
    retry_after_header,
)
from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import BreakerPolicy, BreakerState, Transition

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN


class Boom(Exception):
    pass


def breaker(clock: ManualClock | None = None, **options: object) -> CircuitBreaker:
    policy_fields = {k: options.pop(k) for k in list(options) if k in BreakerPolicy.__slots__}
    policy = BreakerPolicy(**{"consecutive_failures": 2, "open_s": 10.0, **policy_fields})  # type: ignore[arg-type]
    return CircuitBreaker("dep", policy, clock=clock or ManualClock(), **options)  # type: ignore[arg-type]


def fail(brk: CircuitBreaker, times: int = 2) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            brk.call(raise_boom)


def raise_boom() -> None:
    raise Boom


def test_decorated_sync_function_keeps_its_name_and_result() -> None:
    brk = breaker()

    @brk
    def add(a: int, b: int) -> int:
        return a + b

    assert (add(2, b=3), add.__name__) == (5, "add")


def test_failures_open_the_breaker_and_then_calls_fail_fast() -> None:
    brk, called = breaker(), []
    fail(brk)
    with pytest.raises(BreakerOpenError) as caught:
        brk.call(called.append, 1)
    assert called == []
    error = caught.value
    assert (error.name, error.state, error.retry_after_s, error.headers) == (
        "dep",
        OPEN,
        10.0,
        {"Retry-After": "10"},
    )


def test_breaker_open_error_renders_as_a_503_problem() -> None:
    error = BreakerOpenError("http:payments.internal", 2.5, OPEN)
    assert isinstance(error, SloguardHTTPError)
    body = json.loads(problem_body(error.code, error.detail, request_id="r-1"))
    assert (body["status"], body["code"], body["request_id"]) == (503, "BRK_503", "r-1")
    assert "payments" not in body["detail"]
    assert error.headers == {"Retry-After": "3"}


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        pytest.param(0.01, "1", id="under-one"),
        pytest.param(1.0, "1", id="one"),
        pytest.param(1.01, "2", id="rounds-up"),
        pytest.param(299.5, "300", id="large"),
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


def test_excluded_exceptions_do_not_open_the_breaker() -> None:
    brk = breaker(classifier=FailureClassifier(exclude=(Boom,)))
    fail(brk, times=5)
    assert brk.state is CLOSED


def test_fallback_answers_instead_of_raising_while_open() -> None:
    brk = breaker(fallback=lambda exc, x: ("fallback", type(exc).__name__, x))
    fail(brk)
    assert brk.call(lambda x: x, 7) == ("fallback", "BreakerOpenError", 7)


def test_fallback_on_failure_replaces_a_failed_call() -> None:
    brk = breaker(fallback=lambda exc: f"saw {type(exc).__name__}", fallback_on_failure=True)
    assert brk.call(raise_boom) == "saw Boom"
    assert brk.call(raise_boom) == "saw Boom"
    assert brk.state is OPEN


def test_with_block_records_success_and_failure() -> None:
    brk = breaker()
    with brk:
        pass
    for _ in range(2):
        with pytest.raises(Boom), brk:
            raise Boom
    with pytest.raises(BreakerOpenError), brk:
        pytest.fail("an open breaker must not run the block")


def test_nested_blocks_of_two_breakers_report_to_their_own_breaker() -> None:
    outer, inner = breaker(), breaker()

    def nested() -> None:
        with outer:
            with inner:
                pass
            raise Boom

    for _ in range(2):
        with pytest.raises(Boom):
            nested()
    assert (outer.state, inner.state) == (OPEN, CLOSED)


def test_the_clock_times_calls_for_the_slow_call_strategy() -> None:
    clock = ManualClock()
    brk = breaker(
        clock, consecutive_failures=None, slow_call_ratio=0.5, slow_call_s=1.0, min_calls=2
    )
    brk.call(clock.advance, 1.5)
    brk.call(clock.advance, 2.0)
    assert brk.state is OPEN


def test_decorated_async_function_is_guarded() -> None:
    brk = breaker()

    @brk
    async def fetch(x: int) -> int:
        if x < 0:
            raise Boom
        return x

    async def main() -> None:
        assert await fetch(1) == 1
        for _ in range(2):
            with pytest.raises(Boom):
                await fetch(-1)
        with pytest.raises(BreakerOpenError):
            await fetch(1)

    asyncio.run(main())
    assert fetch.__name__ == "fetch"


def test_async_fallback_is_awaited() -> None:
    async def fallback(exc: BaseException) -> str:
        return "cached"

    brk = breaker(fallback=fallback)
    fail(brk)

    async def never() -> str:
        raise AssertionError("not called while open")

    assert asyncio.run(brk.call_async(never)) == "cached"


def test_async_with_block_counts_like_a_sync_one() -> None:
    brk = breaker()

    async def main() -> None:
        async with brk:
            await asyncio.sleep(0)
        for _ in range(2):
            with pytest.raises(Boom):
                async with brk:
                    raise Boom

    asyncio.run(main())
    assert brk.state is OPEN


def test_a_cancelled_probe_gives_its_slot_back() -> None:
    clock = ManualClock()
    brk = breaker(clock)
    fail(brk)
    clock.advance(10.0)

    async def main() -> None:
        blocked = asyncio.Event()

        async def probe() -> None:
            async with brk:
                await blocked.wait()

        task = asyncio.create_task(probe())
        await asyncio.sleep(0)
        with pytest.raises(BreakerOpenError):
            async with brk:
                pass
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with brk:
            pass

    asyncio.run(main())
    assert brk.state is CLOSED


@pytest.mark.parametrize("probes", [1, 4])
def test_1000_concurrent_tasks_in_half_open_admit_exactly_n_probes(probes: int) -> None:
    clock = ManualClock()
    brk = breaker(clock, half_open_probes=probes, half_open_successes=probes)
    fail(brk)
    clock.advance(10.0)

    async def one(release: asyncio.Event) -> bool:
        try:
            async with brk:
                await release.wait()
        except BreakerOpenError:
            return False
        return True

    async def main() -> list[bool]:
        release = asyncio.Event()
        tasks = [asyncio.create_task(one(release)) for _ in range(1_000)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(*tasks)

    assert sum(asyncio.run(main())) == probes
    assert brk.state is CLOSED


def test_a_backend_with_another_name_or_policy_is_refused() -> None:
    backend = LocalBreaker("other")
    with pytest.raises(ValueError, match="backend"):
        CircuitBreaker("dep", backend=backend)
    with pytest.raises(ValueError, match="policy"):
        CircuitBreaker("other", BreakerPolicy(open_s=1.0), backend=backend)


def test_listeners_added_to_the_breaker_see_transitions() -> None:
    brk, seen = breaker(), []
    brk.add_listener(seen.append)
    fail(brk)
    brk.reset()
    assert [(t.old, t.new) for t in seen] == [(CLOSED, OPEN), (OPEN, CLOSED)]


def test_registry_returns_one_breaker_per_name() -> None:
    registry = BreakerRegistry(BreakerPolicy(open_s=5.0))
    first = registry.get("a")
    assert registry.get("a") is first
    assert registry.get("b") is not first
    assert ([b.name for b in registry], "a" in registry, len(registry)) == (["a", "b"], True, 2)
    assert first.policy.open_s == 5.0


def test_registry_uses_the_policy_and_backend_factories() -> None:
    made: list[tuple[str, float]] = []

    def backend(name: str, policy: BreakerPolicy) -> LocalBreaker:
        made.append((name, policy.open_s))
        return LocalBreaker(name, policy, rng=random.Random(0))

    registry = BreakerRegistry(
        policy_factory=lambda name: BreakerPolicy(open_s=len(name)), backend_factory=backend
    )
    assert registry.get("abc").backend.policy.open_s == 3.0
    assert made == [("abc", 3.0)]


def test_registry_listeners_reach_present_and_future_breakers() -> None:
    registry = BreakerRegistry(BreakerPolicy(consecutive_failures=1), clock=ManualClock())
    registry.get("early")
    seen: list[Transition] = []
    registry.add_listener(seen.append)
    for name in ("early", "late"):
        with pytest.raises(Boom):
            registry.get(name).call(raise_boom)
    assert [t.name for t in seen] == ["early", "late"]


def test_blocks_exited_out_of_order_still_report_to_their_own_breaker() -> None:
    first, second = breaker(), breaker()
    for _ in range(2):
        first.__enter__()
        second.__enter__()
        first.__exit__(Boom, Boom(), None)
        second.__exit__(None, None, None)
    assert (first.state, second.state) == (OPEN, CLOSED)
    with pytest.raises(RuntimeError, match="never entered"):
        second.__exit__(None, None, None)


def test_decorated_async_function_falls_back_on_failure_and_when_open() -> None:
    brk = breaker(fallback=lambda exc: type(exc).__name__, fallback_on_failure=True)

    @brk
    async def fetch() -> str:
        raise Boom

    async def main() -> list[str]:
        return [await fetch() for _ in range(3)]

    assert asyncio.run(main()) == ["Boom", "Boom", "BreakerOpenError"]


@pytest.mark.parametrize("form", ["decorator", "call", "with"])
def test_a_success_admitted_before_a_trip_is_counted_but_changes_nothing(form: str) -> None:
    brk = breaker(consecutive_failures=1)

    def trips_meanwhile() -> str:
        fail(brk, 1)
        return "ok"

    if form == "with":
        with brk:
            trips_meanwhile()
    else:
        assert (
            brk(trips_meanwhile)() if form == "decorator" else brk.call(trips_meanwhile)
        ) == "ok"
    snapshot = brk.backend.snapshot()  # type: ignore[attr-defined]
    assert (brk.state, snapshot.successes_total, snapshot.failures_total) == (OPEN, 1, 1)


def test_interleaved_tasks_report_against_their_own_admission() -> None:
    clock = ManualClock()
    brk = breaker(clock, consecutive_failures=1)

    async def admitted_closed_then_fails(entered: asyncio.Event, probing: asyncio.Event) -> None:
        async with brk:
            entered.set()
            await probing.wait()
            raise Boom

    async def probe(
        entered: asyncio.Event, probing: asyncio.Event, stale: asyncio.Task[None]
    ) -> None:
        await entered.wait()
        fail(brk, 1)
        clock.advance(11.0)
        async with brk:
            probing.set()
            with pytest.raises(Boom):
                await stale  # the stale block exits (and fails) while this probe is open

    async def main() -> None:
        entered, probing = asyncio.Event(), asyncio.Event()
        stale = asyncio.create_task(admitted_closed_then_fails(entered, probing))
        await probe(entered, probing, stale)

    asyncio.run(main())
    assert brk.state is CLOSED


def test_exited_blocks_do_not_pile_up() -> None:
    from sloguard.resilience._breaker import _ACTIVE

    brk, other = breaker(), breaker()
    for _ in range(100):
        with brk, other:
            pass
    chain, length = _ACTIVE.get(), 0
    while chain is not None:
        chain, length = chain[3], length + 1
    assert length <= 2
