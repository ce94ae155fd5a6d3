"""The sans-I/O breaker state machine: trips, open periods, probes, episodes."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.resilience._core import BreakerCore
from sloguard.resilience._types import Admission, BreakerPolicy, BreakerState, Outcome

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
S, F, IGN = Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED
T0 = 1_000.0


def core(**fields: object) -> BreakerCore:
    return BreakerCore("dep", BreakerPolicy(**fields), rng=random.Random(7))  # type: ignore[arg-type]


def run(breaker: BreakerCore, outcomes: str, now: float = T0, duration_s: float = 0.0) -> list[str]:
    """Admit and record one call per letter (s, f, i); the reasons of the transitions."""
    reasons = []
    for letter in outcomes:
        admission, moved = breaker.admit(now)
        if moved:
            reasons.append(moved.reason)
        if admission.allowed:
            outcome = {"s": S, "f": F, "i": IGN}[letter]
            moved = breaker.record(admission, outcome, duration_s, now)
            if moved:
                reasons.append(moved.reason)
    return reasons


def tripped(breaker: BreakerCore, now: float = T0) -> BreakerCore:
    breaker.record(breaker.admit(now)[0], F, 0.0, now)
    assert breaker.state is OPEN
    return breaker


def test_closed_admits_every_call_with_one_shared_admission() -> None:
    breaker = core()
    first, _ = breaker.admit(T0)
    second, _ = breaker.admit(T0 + 5)
    assert first is second is breaker.closed_admission
    assert (first.allowed, first.state, first.probe) == (True, CLOSED, False)


def test_consecutive_failures_trip_and_a_success_resets_the_streak() -> None:
    breaker = core(consecutive_failures=3)
    assert run(breaker, "ffsff") == []
    assert run(breaker, "f") == ["consecutive_failures"]
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("fields", "outcomes", "reasons"),
    [
        pytest.param({"failure_ratio": 0.5, "min_calls": 4}, "fff", [], id="ratio-below-min-calls"),
        pytest.param({"failure_ratio": 0.5, "min_calls": 4}, "fffs", ["failure_ratio"], id="ratio"),
        pytest.param({"failure_ratio": 0.5, "min_calls": 4}, "sssfs", [], id="ratio-under"),
        pytest.param(
            {"failure_ratio": 0.1, "min_calls": 30},
            "f" * 3 + "s" * 27,
            ["failure_ratio"],
            id="ratio-float-edge",
        ),
        pytest.param(
            {"failure_count": 3, "min_calls": 100},
            "fsfsf",
            ["failure_count"],
            id="count-ignores-min-calls",
        ),
        pytest.param({"failure_count": 3}, "fsfs", [], id="count-under"),
    ],
)
def test_window_strategies_trip_when_met(
    fields: dict[str, object], outcomes: str, reasons: list[str]
) -> None:
    breaker = core(consecutive_failures=None, **fields)
    assert run(breaker, outcomes) == reasons


def test_slow_call_ratio_trips_on_slow_successes_after_min_calls() -> None:
    breaker = core(consecutive_failures=None, slow_call_ratio=0.5, slow_call_s=1.0, min_calls=4)
    assert run(breaker, "sss", duration_s=2.0) == []
    assert run(breaker, "s", duration_s=0.1) == ["slow_call_ratio"]


def test_failures_that_left_the_window_no_longer_count() -> None:
    breaker = core(consecutive_failures=None, failure_count=3, window_s=10.0, bucket_s=1.0)
    assert run(breaker, "ff", now=T0) == []
    assert run(breaker, "f", now=T0 + 10.0) == []
    assert breaker.snapshot(T0 + 10.0).failures == 1
    assert run(breaker, "ff", now=T0 + 19.0) == ["failure_count"]


def test_ignored_outcomes_change_no_count() -> None:
    breaker = core(consecutive_failures=2, failure_count=5)
    assert run(breaker, "fiiii") == []
    snapshot = breaker.snapshot(T0)
    assert (snapshot.calls, snapshot.failures, snapshot.consecutive_failures) == (1, 1, 1)
    assert snapshot.ignored_total == 4


def test_open_rejects_with_the_time_left() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=30.0))
    admission, moved = breaker.admit(T0 + 10.0)
    assert (admission.allowed, admission.state, moved) == (False, OPEN, None)
    assert admission.retry_after_s == pytest.approx(20.0)
    assert breaker.snapshot(T0).rejected_total == 1


def test_first_admit_after_the_open_period_is_a_half_open_probe() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=30.0))
    admission, moved = breaker.admit(T0 + 30.0)
    assert moved is not None
    assert (moved.old, moved.new, moved.reason) == (
        OPEN,
        HALF_OPEN,
        "open_elapsed",
    )
    assert (admission.allowed, admission.probe, admission.episode) == (True, True, breaker.episode)


@pytest.mark.parametrize("probes", [1, 3, 10])
def test_half_open_admits_exactly_n_probes(probes: int) -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=1.0, half_open_probes=probes))
    answers = [breaker.admit(T0 + 2.0)[0] for _ in range(probes + 5)]
    assert sum(a.allowed for a in answers) == probes
    assert all(a.probe for a in answers[:probes])
    assert {a.retry_after_s for a in answers[probes:]} == {breaker.policy.bucket_s}


def test_half_open_closes_after_m_probe_successes_and_forgets_the_episode() -> None:
    breaker = tripped(
        core(consecutive_failures=1, open_s=1.0, half_open_probes=3, half_open_successes=2)
    )
    probes = [breaker.admit(T0 + 2.0)[0] for _ in range(3)]
    assert breaker.record(probes[0], S, 0.0, T0 + 2.0) is None
    moved = breaker.record(probes[1], S, 0.0, T0 + 2.0)
    assert moved is not None
    assert (moved.new, moved.reason) == (CLOSED, "probes_succeeded")
    assert breaker.record(probes[2], F, 0.0, T0 + 2.0) is None
    snapshot = breaker.snapshot(T0 + 2.0)
    assert (snapshot.state, snapshot.level, snapshot.failures, snapshot.probes_admitted) == (
        CLOSED,
        0,
        0,
        0,
    )


def test_a_probe_failure_reopens_with_backoff_up_to_the_cap() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=10.0, backoff=2.0, max_open_s=35.0))
    now, periods = T0, []
    for _ in range(4):
        now += 1_000.0
        probe, _ = breaker.admit(now)
        moved = breaker.record(probe, F, 0.0, now)
        assert moved is not None
        assert moved.reason == "probe_failed"
        periods.append(moved.open_for_s)
    assert periods == [20.0, 35.0, 35.0, 35.0]
    assert breaker.level == 4


def test_a_slow_probe_reopens_only_when_slow_calls_trip() -> None:
    for ratio, state in ((0.5, OPEN), (None, CLOSED)):
        breaker = tripped(core(consecutive_failures=1, slow_call_ratio=ratio, slow_call_s=1.0))
        probe, _ = breaker.admit(T0 + 100.0)
        breaker.record(probe, S, 5.0, T0 + 100.0)
        assert breaker.state is state


def test_jitter_keeps_the_open_period_within_bounds() -> None:
    periods = []
    for seed in range(200):
        breaker = BreakerCore(
            "dep",
            BreakerPolicy(consecutive_failures=1, open_s=10.0, jitter=0.2),
            rng=random.Random(seed),
        )
        moved = breaker.record(breaker.admit(T0)[0], F, 0.0, T0)
        assert moved is not None
        periods.append(moved.open_for_s)
    assert 8.0 <= min(periods) < 8.5
    assert 11.5 < max(periods) <= 12.0


def test_seeded_jitter_is_deterministic() -> None:
    def period() -> float:
        breaker = BreakerCore(
            "dep", BreakerPolicy(consecutive_failures=1, jitter=0.5), rng=random.Random(42)
        )
        return tripped(breaker).opened_until

    assert period() == period()


def test_outcomes_of_an_older_episode_are_dropped() -> None:
    breaker = core(consecutive_failures=2, open_s=1.0)
    early = [breaker.admit(T0)[0] for _ in range(3)]
    breaker.record(early[0], F, 0.0, T0)
    breaker.record(early[1], F, 0.0, T0)
    probe, _ = breaker.admit(T0 + 5.0)
    assert breaker.record(early[2], F, 0.0, T0 + 5.0) is None
    assert breaker.state is HALF_OPEN
    moved = breaker.record(probe, S, 0.0, T0 + 5.0)
    assert moved is not None
    assert moved.new is CLOSED


def test_a_non_probe_outcome_in_half_open_is_dropped() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=1.0))
    breaker.admit(T0 + 2.0)
    stray = Admission(True, CLOSED, episode=breaker.episode)
    assert breaker.record(stray, F, 0.0, T0 + 2.0) is None
    assert breaker.state is HALF_OPEN


def test_an_ignored_probe_gives_its_slot_back() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=1.0, half_open_probes=1))
    probe, _ = breaker.admit(T0 + 2.0)
    assert not breaker.admit(T0 + 2.0)[0].allowed
    breaker.record(probe, IGN, 0.0, T0 + 2.0)
    again, _ = breaker.admit(T0 + 2.0)
    assert again.allowed
    assert again.probe


def test_rejected_admissions_are_never_recorded() -> None:
    breaker = tripped(core(consecutive_failures=1, open_s=10.0))
    rejected, _ = breaker.admit(T0 + 1.0)
    assert breaker.record(rejected, F, 0.0, T0 + 1.0) is None
    assert breaker.snapshot(T0).failures_total == 1


def test_force_open_holds_until_reset() -> None:
    breaker = core()
    moved = breaker.force_open(T0)
    assert moved is not None
    assert (moved.new, moved.reason, moved.open_for_s) == (
        OPEN,
        "forced",
        math.inf,
    )
    assert breaker.force_open(T0) is None
    admission, _ = breaker.admit(T0 + 1e9)
    assert (admission.allowed, admission.retry_after_s) == (False, breaker.policy.max_open_s)
    reset = breaker.reset(T0 + 1e9)
    assert reset is not None
    assert (reset.old, reset.new, reset.reason) == (OPEN, CLOSED, "reset")


def test_reset_of_a_closed_breaker_clears_counts_without_a_transition() -> None:
    breaker = core(consecutive_failures=3)
    run(breaker, "ff")
    assert breaker.reset(T0) is None
    assert run(breaker, "ff") == []


def test_apply_remote_sets_state_without_counting() -> None:
    breaker = core()
    moved = breaker.apply_remote(OPEN, T0 + 40.0, episode=7, level=2, now=T0)
    assert moved is not None
    assert (moved.source, moved.reason, moved.open_for_s) == (
        "remote",
        "remote",
        40.0,
    )
    snapshot = breaker.snapshot(T0)
    assert (snapshot.state, snapshot.episode, snapshot.level, snapshot.opened_until) == (
        OPEN,
        7,
        2,
        T0 + 40.0,
    )
    assert breaker.admit(T0 + 10.0)[0].retry_after_s == pytest.approx(30.0)
    assert breaker.apply_remote(OPEN, T0 + 40.0, episode=7, level=2, now=T0) is None


def test_apply_remote_closed_gives_a_fresh_closed_admission() -> None:
    breaker = tripped(core(consecutive_failures=1))
    moved = breaker.apply_remote(CLOSED, 0.0, episode=breaker.episode, level=0, now=T0)
    assert moved is not None
    assert moved.new is CLOSED
    admission, _ = breaker.admit(T0)
    assert admission is breaker.closed_admission
    assert admission.episode == breaker.episode


def test_a_lock_free_success_ends_the_failure_streak() -> None:
    breaker = core(consecutive_failures=3)
    assert run(breaker, "ff") == []
    assert breaker.closed_success is not None
    breaker.closed_success()
    assert run(breaker, "ff") == []
    assert run(breaker, "f") == ["consecutive_failures"]


def test_lock_free_successes_add_to_the_success_total_and_reading_it_adds_none() -> None:
    breaker = core()
    success = breaker.closed_success
    assert success is not None
    run(breaker, "ff")
    for _ in range(3):
        success()
    run(breaker, "s")
    first, second = breaker.snapshot(T0), breaker.snapshot(T0)
    assert (first.successes_total, first.consecutive_failures) == (4, 0)
    assert second == first


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"failure_ratio": 0.5}, id="failure-ratio"),
        pytest.param({"failure_count": 3}, id="failure-count"),
        pytest.param({"slow_call_ratio": 0.5}, id="slow-call-ratio"),
    ],
)
def test_a_window_strategy_counts_every_success_under_the_lock(fields: dict[str, object]) -> None:
    assert core(**fields).closed_success is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("sfi"), st.floats(0.0, 20.0)), max_size=80))
def test_lock_free_successes_behave_exactly_like_recorded_ones(
    steps: list[tuple[str, float]],
) -> None:
    policy = BreakerPolicy(consecutive_failures=3, open_s=5.0, backoff=2.0, jitter=0.1)
    locked = BreakerCore("p", policy, rng=random.Random(3))
    lock_free = BreakerCore("p", policy, rng=random.Random(3))
    now, outcome_of = T0, {"s": S, "f": F, "i": IGN}
    for letter, gap in steps:
        now += gap
        seen = []
        for breaker in (locked, lock_free):
            admission, moved = breaker.admit(now)
            outcome = outcome_of[letter]
            if breaker is lock_free and outcome is S and admission is breaker.closed_admission:
                breaker.closed_success()  # type: ignore[misc]
            elif admission.allowed:
                moved = breaker.record(admission, outcome, 0.0, now) or moved
            seen.append(moved and moved.reason)
        assert seen[0] == seen[1]
    assert locked.snapshot(now) == lock_free.snapshot(now)


def test_transitions_carry_no_wall_time_from_the_core() -> None:
    moved = core(consecutive_failures=1).record(Admission(True, CLOSED), F, 0.0, T0)
    assert moved is not None
    assert moved.at == 0.0
    assert moved.source == "local"


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["admit", "success", "failure", "ignored", "slow", "force", "reset"]),
        st.floats(0.0, 20.0),
        st.integers(0, 5),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.integers(1, 3), st.integers(0, 2))
def test_counts_never_go_negative_and_state_invariants_hold(
    events: list[tuple[str, float, int]], probes: int, extra: int
) -> None:
    policy = BreakerPolicy(
        consecutive_failures=3,
        failure_ratio=0.5,
        failure_count=6,
        slow_call_ratio=0.8,
        min_calls=4,
        window_s=10.0,
        bucket_s=1.0,
        open_s=5.0,
        backoff=2.0,
        max_open_s=20.0,
        jitter=0.1,
        half_open_probes=probes,
        half_open_successes=max(1, probes - extra),
    )
    breaker, now, held = BreakerCore("p", policy, rng=random.Random(0)), T0, []
    for kind, gap, pick in events:
        now += gap
        if kind == "admit":
            held.append(breaker.admit(now)[0])
        elif kind == "force":
            breaker.force_open(now)
        elif kind == "reset":
            breaker.reset(now)
        elif held:
            outcome = {"success": S, "slow": S, "failure": F, "ignored": IGN}[kind]
            breaker.record(held.pop(pick % len(held)), outcome, 3.0 if kind == "slow" else 0.0, now)
        snap = breaker.snapshot(now)
        assert (
            min(
                snap.calls,
                snap.failures,
                snap.slow_calls,
                snap.probes_admitted,
                snap.probes_succeeded,
            )
            >= 0
        )
        assert snap.failures <= snap.calls
        assert snap.slow_calls <= snap.calls
        assert snap.probes_admitted <= probes
        assert snap.probes_succeeded < policy.half_open_successes
        assert (snap.opened_until > 0) == (snap.state is OPEN)
        assert (breaker.closed_admission is not None) == (snap.state is CLOSED)
        if snap.state is not CLOSED:
            assert snap.calls == 0
            assert snap.consecutive_failures == 0
        else:
            assert snap.probes_admitted == 0
            assert snap.level == 0
