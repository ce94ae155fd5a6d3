"""The Redis-shared breaker's batch: exact counts, lock-free successes folded in order."""

from __future__ import annotations

from sloguard.resilience._core import BreakerCore
from sloguard.resilience._redis_breaker_batch import OutcomeBatcher
from sloguard.resilience._types import BreakerPolicy


def batcher(**fields: object) -> tuple[BreakerCore, OutcomeBatcher]:
    core = BreakerCore("dep", BreakerPolicy(**fields))  # type: ignore[arg-type]
    return core, OutcomeBatcher(core)


def tick(core: BreakerCore, times: int) -> None:
    assert core.closed_success is not None
    for _ in range(times):
        core.closed_success()


def test_the_first_failure_of_a_batch_hurries_the_agent_once() -> None:
    _, outcomes = batcher()
    assert outcomes.count(True, 0.0) is True
    assert outcomes.count(True, 0.0) is False
    outcomes.take()
    assert outcomes.count(True, 0.0) is True


def test_successes_ticked_before_a_failure_end_the_streak_before_it() -> None:
    core, outcomes = batcher()
    outcomes.count(True, 0.0)
    tick(core, 3)
    outcomes.fold()
    outcomes.count(True, 0.0)
    batch = outcomes.take()
    assert (batch.calls, batch.failures, batch.had_success, batch.trailing) == (5, 2, True, 1)


def test_successes_ticked_after_the_last_failure_are_taken_with_the_batch() -> None:
    core, outcomes = batcher()
    outcomes.count(True, 0.0)
    tick(core, 2)
    batch = outcomes.take()
    assert (batch.calls, batch.failures, batch.trailing) == (3, 1, 0)
    assert outcomes.batch.calls == 0


def test_ticks_dropped_with_their_episode_never_reach_a_later_batch() -> None:
    core, outcomes = batcher()
    tick(core, 4)
    outcomes.fold(keep=False)
    assert not outcomes.has_outcomes()
    assert outcomes.take().calls == 0


def test_slow_calls_are_counted_from_the_policys_threshold() -> None:
    _, outcomes = batcher(slow_call_ratio=0.5, slow_call_s=1.0)
    outcomes.count(False, 0.5)
    outcomes.count(False, 1.0)
    assert (outcomes.batch.calls, outcomes.batch.slow) == (2, 1)


def test_a_failed_push_gives_its_outcomes_back_within_the_same_episode_only() -> None:
    core, outcomes = batcher()
    outcomes.count(True, 0.0)
    outcomes.give_back(outcomes.take())
    assert (outcomes.batch.calls, outcomes.batch.trailing) == (1, 1)
    pushed = outcomes.take()
    core.force_open(0.0)
    outcomes.restart()
    outcomes.give_back(pushed)
    assert outcomes.batch.calls == 0
