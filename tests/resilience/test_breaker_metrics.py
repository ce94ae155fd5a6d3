"""Breaker metrics read back from a CollectorRegistry, and the transition log line."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from sloguard.resilience._breaker import BreakerOpenError, BreakerRegistry, CircuitBreaker
from sloguard.resilience._breaker_metrics import BreakerMetrics
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._types import BreakerPolicy, BreakerState, Outcome


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def watched(**policy: object) -> tuple[CollectorRegistry, CircuitBreaker]:
    registry = CollectorRegistry()
    breaker = CircuitBreaker("db", BreakerPolicy(**policy), clock=ManualClock())  # type: ignore[arg-type]
    BreakerMetrics(registry).watch(breaker)
    return registry, breaker


def test_state_gauge_is_one_hot() -> None:
    registry, breaker = watched(consecutive_failures=1)
    fail(breaker, 1)
    states = {
        s.value: value(registry, "sloguard_breaker_state", breaker="db", state=s.value)
        for s in BreakerState
    }
    assert states == {"closed": 0.0, "open": 1.0, "half_open": 0.0}


def test_calls_and_rejections_are_counted_by_outcome() -> None:
    registry, breaker = watched(consecutive_failures=2)
    breaker.call(lambda: None)
    fail(breaker, 2)
    with pytest.raises(BreakerOpenError):
        breaker.call(lambda: None)
    outcomes = {
        o.value: value(registry, "sloguard_breaker_calls_total", breaker="db", outcome=o.value)
        for o in Outcome
    }
    assert outcomes == {"success": 1.0, "failure": 2.0, "ignored": 0.0}
    assert value(registry, "sloguard_breaker_rejected_total", breaker="db") == 1.0


def test_transitions_are_counted_with_from_to_and_reason() -> None:
    registry, breaker = watched(consecutive_failures=1)
    fail(breaker, 1)
    breaker.reset()
    labels = {"breaker": "db", "from": "closed", "to": "open", "reason": "consecutive_failures"}
    assert value(registry, "sloguard_breaker_transitions_total", **labels) == 1.0
    labels = {"breaker": "db", "from": "open", "to": "closed", "reason": "reset"}
    assert value(registry, "sloguard_breaker_transitions_total", **labels) == 1.0


def test_a_watched_registry_exports_breakers_created_later() -> None:
    registry = CollectorRegistry()
    breakers = BreakerRegistry(BreakerPolicy(consecutive_failures=1), clock=ManualClock())
    BreakerMetrics(registry).watch(breakers)
    fail(breakers.get("late"), 1)
    assert value(registry, "sloguard_breaker_state", breaker="late", state="open") == 1.0
    labels = {"breaker": "late", "from": "closed", "to": "open", "reason": "consecutive_failures"}
    assert value(registry, "sloguard_breaker_transitions_total", **labels) == 1.0


def test_each_transition_is_logged_with_structured_fields(caplog: pytest.LogCaptureFixture) -> None:
    _, breaker = watched(consecutive_failures=1)
    with caplog.at_level(logging.INFO, logger="sloguard.resilience"):
        fail(breaker, 1)
    record = caplog.records[-1]
    fields = (record.levelno, record.breaker, getattr(record, "from"), record.to, record.reason)  # type: ignore[attr-defined]
    assert fields == (logging.WARNING, "db", "closed", "open", "consecutive_failures")


def test_a_backend_without_snapshot_exports_its_state_only() -> None:
    class Bare:
        def __init__(self, inner: CircuitBreaker) -> None:
            self.inner = inner.backend
            self.name, self.policy = self.inner.name, self.inner.policy

        @property
        def state(self) -> BreakerState:
            return self.inner.state

        def add_listener(self, listener: object) -> None:
            self.inner.add_listener(listener)  # type: ignore[arg-type]

    registry = CollectorRegistry()
    BreakerMetrics(registry).watch(Bare(CircuitBreaker("bare")))  # type: ignore[arg-type]
    assert value(registry, "sloguard_breaker_state", breaker="bare", state="closed") == 1.0
    assert (
        value(registry, "sloguard_breaker_calls_total", breaker="bare", outcome="success") is None
    )
