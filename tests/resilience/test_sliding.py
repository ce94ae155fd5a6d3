"""The sliding window counter: the previous window weighted by its overlap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.resilience._sliding import EMPTY_STATE, SlidingState, SlidingWindow


def test_a_window_admits_the_limit_then_refuses() -> None:
    window = SlidingWindow(limit=3, period_s=10.0)
    state, answers = EMPTY_STATE, []
    for _ in range(4):
        decision = window.decide(state, now=100.0)
        state = decision.state
        answers.append((decision.allowed, decision.remaining))
    assert answers == [(True, 2), (True, 1), (True, 0), (False, 0)]


def test_the_previous_window_counts_by_its_remaining_overlap() -> None:
    window = SlidingWindow(limit=10, period_s=10.0)
    full = SlidingState(window=9, previous=0, current=10)
    # at 102.5 a quarter of the new window has passed: 10 x 0.75 = 7.5 still count
    decision = window.decide(full, now=102.5)
    assert decision.allowed
    assert decision.remaining == 1
    assert decision.state == SlidingState(window=10, previous=10, current=1)


def test_a_refusal_waits_until_the_old_window_has_slid_out_enough() -> None:
    window = SlidingWindow(limit=10, period_s=10.0)
    state = SlidingState(window=10, previous=10, current=0)
    decision = window.decide(state, now=100.0)
    assert not decision.allowed
    assert decision.retry_after_s == pytest.approx(1.0)
    assert window.decide(state, now=101.0).allowed


def test_a_full_current_window_waits_into_the_next_one() -> None:
    window = SlidingWindow(limit=4, period_s=10.0)
    state = SlidingState(window=10, previous=0, current=4)
    decision = window.decide(state, now=105.0)
    assert not decision.allowed
    # 5 s to the next window, then 4 x (1 - t/10) <= 3 needs t = 2.5 s
    assert decision.retry_after_s == pytest.approx(7.5)


def test_two_windows_gone_forget_everything() -> None:
    window = SlidingWindow(limit=2, period_s=1.0)
    state = SlidingState(window=5, previous=2, current=2)
    assert window.roll(state, now=7.5) == SlidingState(7, 0, 0)


def test_a_cost_above_the_limit_waits_a_whole_period() -> None:
    decision = SlidingWindow(limit=2, period_s=30.0).decide(EMPTY_STATE, now=1.0, cost=3)
    assert not decision.allowed
    assert decision.retry_after_s == 30.0


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="'period_s'"):
        SlidingWindow(limit=1, period_s=-1.0)
    with pytest.raises(ValueError, match="'limit'"):
        SlidingWindow(limit=0, period_s=1.0)


def test_three_times_the_rate_for_ten_seconds_admits_the_rate_within_one_percent() -> None:
    window = SlidingWindow(limit=100, period_s=1.0)
    state, admitted = EMPTY_STATE, 0
    for tick in range(3000):
        decision = window.decide(state, now=500.0 + tick / 300)
        state, admitted = decision.state, admitted + decision.allowed
    assert abs(admitted - 1000) <= 10


@given(gaps=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=300), limit=st.integers(1, 30))
def test_a_retry_after_wait_is_enough(gaps: list[float], limit: int) -> None:
    window = SlidingWindow(limit=limit, period_s=1.0)
    state, now = EMPTY_STATE, 1000.0
    for gap in gaps:
        now += gap
        decision = window.decide(state, now)
        if not decision.allowed:
            assert window.decide(decision.state, now + decision.retry_after_s + 1e-6).allowed
        state = decision.state
