"""Adaptive concurrency limits: synthetic latency series in, limits out; no clock, no sleep."""

from __future__ import annotations

from typing import Any

import pytest

from sloguard.resilience._adaptive import (
    AdaptiveConcurrencyLimiter,
    AdaptivePermit,
    AIMDLimit,
    Gradient2Limit,
    LimitAlgorithm,
)
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._priority import Priority, ShedDecision, ShedReason
from sloguard.resilience._types import Outcome


def saturate(algorithm: LimitAlgorithm, rtt_s: float, samples: int) -> int:
    """Feed ``samples`` requests of ``rtt_s`` while the service runs at its limit."""
    for _ in range(samples):
        algorithm.update(rtt_s, algorithm.limit, False)
    return algorithm.limit


def test_gradient2_grows_to_its_maximum_while_latency_stays_flat() -> None:
    limit = Gradient2Limit(initial_limit=20, max_limit=200)
    assert saturate(limit, 0.010, 300) == 200


def test_gradient2_converges_down_when_latency_rises_and_recovers_when_it_falls() -> None:
    limit = Gradient2Limit(initial_limit=100, max_limit=200)
    before = saturate(limit, 0.010, 300)
    overloaded = saturate(limit, 0.050, 200)
    recovered = saturate(limit, 0.010, 300)
    assert before == 200
    assert overloaded < 30
    assert recovered >= 180


def test_gradient2_tolerates_latency_within_its_tolerance() -> None:
    limit = Gradient2Limit(initial_limit=50, max_limit=200, tolerance=1.5)
    saturate(limit, 0.010, 50)
    assert saturate(limit, 0.014, 50) > 50


def test_gradient2_never_leaves_its_bounds() -> None:
    limit = Gradient2Limit(initial_limit=10, min_limit=8, max_limit=12)
    assert saturate(limit, 0.010, 100) == 12
    assert saturate(limit, 5.0, 100) == 8


def test_gradient2_ignores_samples_while_the_service_is_app_limited() -> None:
    limit = Gradient2Limit(initial_limit=40)
    for _ in range(100):
        limit.update(0.010, 5, False)
    for _ in range(100):
        limit.update(0.500, 5, False)
    assert limit.limit == 40


def test_gradient2_backs_off_on_a_drop_whatever_the_latency() -> None:
    limit = Gradient2Limit(initial_limit=100, smoothing=1.0)
    assert limit.update(0.001, 1, True) == 54


def test_aimd_adds_one_per_success_at_the_limit() -> None:
    limit = AIMDLimit(initial_limit=10, max_limit=15)
    assert saturate(limit, 0.010, 3) == 13
    assert saturate(limit, 0.010, 10) == 15


def test_aimd_converges_down_when_latency_passes_the_timeout_and_recovers() -> None:
    limit = AIMDLimit(initial_limit=100, min_limit=5, backoff_ratio=0.9, timeout_s=0.1)
    overloaded = saturate(limit, 0.250, 30)
    recovered = saturate(limit, 0.020, 60)
    assert overloaded == 5
    assert recovered == 65


def test_aimd_does_not_grow_while_app_limited() -> None:
    limit = AIMDLimit(initial_limit=20)
    for _ in range(50):
        limit.update(0.010, 3, False)
    assert limit.limit == 20


def test_aimd_multiplies_down_on_a_drop() -> None:
    limit = AIMDLimit(initial_limit=100, backoff_ratio=0.5)
    assert limit.update(0.001, 100, True) == 50


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda: Gradient2Limit(min_limit=0), "'min_limit'", id="g2-min"),
        pytest.param(lambda: Gradient2Limit(initial_limit=2000), "'initial_limit'", id="g2-init"),
        pytest.param(lambda: Gradient2Limit(smoothing=0), "'smoothing'", id="g2-smoothing"),
        pytest.param(lambda: Gradient2Limit(tolerance=0.5), "'tolerance'", id="g2-tolerance"),
        pytest.param(lambda: AIMDLimit(backoff_ratio=1.0), "'backoff_ratio'", id="aimd-backoff"),
        pytest.param(lambda: AIMDLimit(timeout_s=0), "'timeout_s'", id="aimd-timeout"),
        pytest.param(lambda: AIMDLimit(app_limited_ratio=2), "'app_limited_ratio'", id="aimd-app"),
    ],
)
def test_bad_algorithm_settings_name_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build()  # type: ignore[operator]


class RecordingLimit:
    """A fixed limit that remembers its samples (our own seam)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.samples: list[tuple[float, int, bool]] = []

    def update(self, rtt_s: float, in_flight: int, dropped: bool) -> int:
        self.samples.append((round(rtt_s, 6), in_flight, dropped))
        return self.limit


def test_limiter_refuses_with_shed_102_above_the_class_ceiling() -> None:
    limiter = AdaptiveConcurrencyLimiter(RecordingLimit(10), retry_after_s=3.0)
    permits = [limiter.acquire(Priority.LOW) for _ in range(5)]
    assert all(isinstance(p, AdaptivePermit) for p in permits)
    refused = limiter.acquire(Priority.LOW)
    assert isinstance(refused, ShedDecision)
    assert (refused.reason, refused.code, refused.retry_after_s) == (
        ShedReason.ADAPTIVE,
        "SHED_102",
        3.0,
    )
    assert isinstance(limiter.acquire(Priority.CRITICAL), AdaptivePermit)


def test_release_feeds_the_measured_latency_and_admission_in_flight() -> None:
    clock = ManualClock()
    algorithm = RecordingLimit(10)
    limiter = AdaptiveConcurrencyLimiter(algorithm, clock=clock)
    first, second = limiter.acquire(), limiter.acquire()
    assert isinstance(first, AdaptivePermit)
    assert isinstance(second, AdaptivePermit)
    clock.advance(0.25)
    second.release(Outcome.FAILURE)
    first.release(latency_s=0.1)
    first.release()
    assert algorithm.samples == [(0.25, 2, True), (0.1, 1, False)]
    assert limiter.in_flight == 0


def test_ignored_outcomes_free_the_slot_without_a_sample() -> None:
    algorithm = RecordingLimit(10)
    limiter = AdaptiveConcurrencyLimiter(algorithm, clock=ManualClock())
    permit = limiter.acquire()
    assert isinstance(permit, AdaptivePermit)
    with pytest.raises(KeyError), permit:
        raise KeyError("handler failed")
    assert (algorithm.samples, limiter.in_flight) == ([], 0)


def test_ceilings_follow_the_limit_as_it_moves() -> None:
    limiter = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=10, backoff_ratio=0.5))
    assert limiter.snapshot().ceilings == (5, 8, 9, 10)
    permit = limiter.acquire(Priority.CRITICAL)
    assert isinstance(permit, AdaptivePermit)
    permit.release(Outcome.FAILURE, latency_s=0.01)
    assert limiter.limit == 5
    assert limiter.snapshot().ceilings == (2, 4, 4, 5)


def test_limiter_defaults_to_gradient2() -> None:
    assert isinstance(AdaptiveConcurrencyLimiter().algorithm, Gradient2Limit)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda r: AIMDLimit(initial_limit=40, app_limited_ratio=r), id="aimd"),
        pytest.param(lambda r: Gradient2Limit(initial_limit=40, app_limited_ratio=r), id="g2"),
    ],
)
def test_a_lower_app_limited_ratio_lets_the_limit_grow_at_lower_in_flight(build: Any) -> None:
    default, lowered = build(0.5), build(0.25)
    for _ in range(20):
        default.update(0.010, 12, False)
        lowered.update(0.010, 12, False)
    assert default.limit == 40
    assert lowered.limit > 40
