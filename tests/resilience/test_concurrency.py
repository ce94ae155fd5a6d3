"""The static concurrency limit: per app, per route, per priority class; exact under threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from sloguard.resilience._concurrency import ConcurrencyLimiter, ConcurrencyPermit
from sloguard.resilience._priority import Priority, ShedDecision, ShedReason


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond so races have every chance to show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def fill(limiter: ConcurrencyLimiter, n: int, **kwargs: object) -> list[ConcurrencyPermit]:
    permits = [limiter.acquire(**kwargs) for _ in range(n)]  # type: ignore[arg-type]
    assert all(isinstance(p, ConcurrencyPermit) for p in permits)
    return permits  # type: ignore[return-value]


def test_limit_refuses_immediately_with_shed_101_once_full() -> None:
    limiter = ConcurrencyLimiter(4, retry_after_s=2.0)
    fill(limiter, 4, priority=Priority.CRITICAL)
    refused = limiter.acquire(Priority.CRITICAL)
    assert isinstance(refused, ShedDecision)
    assert refused.reason is ShedReason.CONCURRENCY
    assert refused.code == "SHED_101"
    assert refused.retry_after_s == 2.0
    assert "concurrency limit (4)" in refused.detail


@pytest.mark.parametrize(
    ("priority", "admitted"),
    [
        pytest.param(Priority.LOW, 5, id="low-half"),
        pytest.param(Priority.NORMAL, 8, id="normal-80pc"),
        pytest.param(Priority.HIGH, 9, id="high-95pc"),
        pytest.param(Priority.CRITICAL, 10, id="critical-all"),
    ],
)
def test_each_class_fills_only_its_share_of_the_limit(priority: Priority, admitted: int) -> None:
    limiter = ConcurrencyLimiter(10)
    fill(limiter, admitted, priority=priority)
    assert isinstance(limiter.acquire(priority), ShedDecision)


def test_critical_requests_pass_while_low_ones_are_shed() -> None:
    limiter = ConcurrencyLimiter(10)
    fill(limiter, 5, priority=Priority.LOW)
    assert isinstance(limiter.acquire(Priority.LOW), ShedDecision)
    fill(limiter, 5, priority=Priority.CRITICAL)
    assert limiter.in_flight == 10


def test_release_frees_the_place_exactly_once() -> None:
    limiter = ConcurrencyLimiter(1)
    (permit,) = fill(limiter, 1, priority=Priority.CRITICAL)
    permit.release()
    permit.release()
    assert limiter.in_flight == 0
    fill(limiter, 1, priority=Priority.CRITICAL)
    assert limiter.in_flight == 1


def test_a_with_block_releases_even_when_the_request_raises() -> None:
    limiter = ConcurrencyLimiter(2)
    (permit,) = fill(limiter, 1)
    with pytest.raises(RuntimeError), permit:
        raise RuntimeError("handler failed")
    assert limiter.in_flight == 0


def test_a_route_limit_caps_that_route_only() -> None:
    limiter = ConcurrencyLimiter(route_limits={"/export": 2})
    fill(limiter, 2, priority=Priority.CRITICAL, route="/export")
    refused = limiter.acquire(Priority.CRITICAL, "/export")
    assert isinstance(refused, ShedDecision)
    assert refused.route == "/export"
    fill(limiter, 50, priority=Priority.LOW, route="/items/{id}")
    assert limiter.snapshot().routes == {"/export": (2, 2)}


def test_a_request_must_fit_under_both_the_app_and_its_route_limit() -> None:
    limiter = ConcurrencyLimiter(3, route_limits={"/export": 10})
    fill(limiter, 3, priority=Priority.CRITICAL, route="/other")
    assert isinstance(limiter.acquire(Priority.CRITICAL, "/export"), ShedDecision)
    assert limiter.snapshot().routes["/export"] == (10, 0)


def test_route_resolver_is_asked_once_per_route_template() -> None:
    asked: list[str] = []

    def resolve(route: str) -> int | None:
        asked.append(route)
        return 1 if route.startswith("/admin") else None

    limiter = ConcurrencyLimiter(route_limit=resolve)
    for permit in fill(limiter, 3, route="/items"):
        permit.release()
    fill(limiter, 1, route="/admin/x")
    assert isinstance(limiter.acquire(Priority.CRITICAL, "/admin/x"), ShedDecision)
    assert asked == ["/items", "/admin/x"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"limit": 0}, "'limit'", id="limit"),
        pytest.param({"limit": 1, "retry_after_s": 0.0}, "'retry_after_s'", id="retry-after"),
        pytest.param({"route_limits": {"/a": 0}}, "route_limits", id="route"),
    ],
)
def test_bad_configuration_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ConcurrencyLimiter(**kwargs)  # type: ignore[arg-type]


def test_in_flight_accounting_is_exact_across_threads(fast_switching: None) -> None:
    limiter = ConcurrencyLimiter(8, route_limits={"/r": 6})
    peak = [0]
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(2_000):
            permit = limiter.acquire(Priority.CRITICAL, "/r" if i % 2 else None)
            if isinstance(permit, ConcurrencyPermit):
                peak[0] = max(peak[0], limiter.in_flight)
                permit.release()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.in_flight == 0
    assert limiter.snapshot().routes == {"/r": (6, 0)}
    assert peak[0] <= 8
