"""GCRA: a token bucket of ``burst`` refilled at ``limit / period_s``, as one number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.resilience._gcra import Gcra


def test_a_new_key_admits_the_whole_burst_then_refuses() -> None:
    gcra = Gcra(limit=10, period_s=1.0, burst=3)
    tat, answers = 0.0, []
    for _ in range(4):
        decision = gcra.decide(tat, now=100.0)
        tat = decision.new_tat
        answers.append((decision.allowed, decision.remaining))
    assert answers == [(True, 2), (True, 1), (True, 0), (False, 0)]


def test_a_refusal_says_to_wait_one_emission_interval_and_keeps_the_tat() -> None:
    gcra = Gcra(limit=10, period_s=1.0, burst=1)
    first = gcra.decide(0.0, now=100.0)
    refused = gcra.decide(first.new_tat, now=100.02)
    assert not refused.allowed
    assert refused.new_tat == first.new_tat
    assert refused.retry_after_s == pytest.approx(0.08)
    assert gcra.decide(first.new_tat, now=100.0 + 0.1).allowed


def test_reset_after_is_the_time_until_the_bucket_is_full_again() -> None:
    gcra = Gcra(limit=100, period_s=60.0, burst=100)
    decision = gcra.decide(0.0, now=0.0, cost=5)
    assert decision.reset_after_s == pytest.approx(3.0)
    assert decision.remaining == 95


def test_a_cost_larger_than_the_burst_is_never_admitted() -> None:
    gcra = Gcra(limit=10, period_s=1.0, burst=5)
    decision = gcra.decide(0.0, now=50.0, cost=6)
    assert not decision.allowed
    assert decision.remaining == 5
    assert decision.retry_after_s >= gcra.tolerance_s


def test_three_times_the_rate_for_ten_seconds_admits_the_rate_within_one_percent() -> None:
    gcra = Gcra(limit=100, period_s=1.0, burst=1)
    tat, admitted = 0.0, 0
    for tick in range(3000):
        decision = gcra.decide(tat, now=tick / 300)
        tat, admitted = decision.new_tat, admitted + decision.allowed
    assert abs(admitted - 1000) <= 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"limit": 0, "period_s": 1.0, "burst": 1}, "limit", id="limit"),
        pytest.param({"limit": 1, "period_s": 0.0, "burst": 1}, "period_s", id="period"),
        pytest.param({"limit": 1, "period_s": float("inf"), "burst": 1}, "period_s", id="inf"),
        pytest.param({"limit": 1, "period_s": 1.0, "burst": 0}, "burst", id="burst"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"'{field}'"):
        Gcra(**kwargs)  # type: ignore[arg-type]


@given(
    limit=st.integers(1, 50),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=200),
    costs=st.lists(st.integers(1, 3), min_size=200, max_size=200),
)
def test_admitted_units_never_exceed_the_burst_plus_the_refill(
    limit: int, burst: int, gaps: list[float], costs: list[int]
) -> None:
    gcra = Gcra(limit=limit, period_s=1.0, burst=burst)
    tat, now, admitted = 0.0, 1000.0, 0
    for gap, cost in zip(gaps, costs, strict=False):
        now += gap
        decision = gcra.decide(tat, now, cost)
        tat = decision.new_tat
        admitted += cost if decision.allowed else 0
        assert 0 <= decision.remaining <= burst
    assert admitted <= burst + limit * (now - 1000.0) + 1e-6
