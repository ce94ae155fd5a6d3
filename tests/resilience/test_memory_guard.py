"""The memory guard, driven by a manual clock and synthetic usage series (no sleeping)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pytest

from sloguard.resilience._cgroup import MemoryReading
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._memory_guard import (
    MemoryGuard,
    MemoryPolicy,
    MemoryPressure,
    MemoryState,
    MemoryStatus,
)
from sloguard.resilience._priority import Priority, ShedReason

GiB = 1 << 30


class SeriesReader:
    """Usage values handed out one per read; the last one repeats."""

    kind = "synthetic"

    def __init__(self, usages: Iterable[float], limit: int | None = 1_000) -> None:
        self.usages = list(usages)
        self.limit = limit
        self.reads = 0

    def describe(self) -> str:
        return "synthetic series"

    def read(self) -> MemoryReading:
        usage = self.usages[min(self.reads, len(self.usages) - 1)]
        self.reads += 1
        if isinstance(usage, BaseException):
            raise usage
        return MemoryReading(int(usage), self.limit)


def run(pressure: MemoryPressure, usages: Iterable[int], step_s: float = 1.0) -> MemoryStatus:
    status = pressure.status
    for i, usage in enumerate(usages):
        status = pressure.observe(i * step_s, MemoryReading(usage, 1_000))
    return status


def test_steady_usage_below_the_threshold_never_sheds() -> None:
    status = run(MemoryPressure(MemoryPolicy()), [800] * 30)
    assert status.state is MemoryState.NORMAL
    assert status.threshold == pytest.approx(0.85)


def test_steady_usage_at_the_threshold_sheds() -> None:
    status = run(MemoryPressure(MemoryPolicy()), [850] * 3)
    assert status.state is MemoryState.SHEDDING
    assert status.ratio == pytest.approx(0.85)


def test_fast_growth_lowers_the_threshold_and_sheds_earlier() -> None:
    # +10 MB/s on a 1 GB limit: 300 MB within the 30 s horizon
    policy = MemoryPolicy(growth_half_life_s=2.0)
    usages = [int(0.5 * GiB + 10_000_000 * t) for t in range(20)]
    pressure = MemoryPressure(policy)
    status = pressure.status
    for t, usage in enumerate(usages):
        status = pressure.observe(float(t), MemoryReading(usage, GiB))
    assert status.growth_bytes_per_s == pytest.approx(10_000_000, rel=0.05)
    assert status.threshold == pytest.approx(0.6)
    assert status.state is MemoryState.SHEDDING
    assert status.ratio < 0.85


def test_threshold_is_floored_at_min_threshold() -> None:
    pressure = MemoryPressure(MemoryPolicy(min_threshold=0.7))
    status = run(pressure, [0, 500, 1_000])
    assert status.threshold == 0.7


def test_shrinking_usage_does_not_raise_the_threshold_above_base() -> None:
    status = run(MemoryPressure(MemoryPolicy()), [900, 700, 500, 300])
    assert status.threshold == pytest.approx(0.85)


def test_recovery_needs_usage_below_threshold_minus_hysteresis() -> None:
    pressure = MemoryPressure(MemoryPolicy(hysteresis=0.05, min_shed_s=0.0, growth_weight=0.0))
    assert run(pressure, [860]).state is MemoryState.SHEDDING
    assert pressure.observe(10.0, MemoryReading(820, 1_000)).state is MemoryState.SHEDDING
    assert pressure.observe(11.0, MemoryReading(799, 1_000)).state is MemoryState.NORMAL


def test_shedding_lasts_at_least_min_shed_s() -> None:
    pressure = MemoryPressure(MemoryPolicy(min_shed_s=5.0, growth_weight=0.0))
    pressure.observe(0.0, MemoryReading(900, 1_000))
    assert pressure.observe(4.9, MemoryReading(100, 1_000)).state is MemoryState.SHEDDING
    status = pressure.observe(5.0, MemoryReading(100, 1_000))
    assert (status.state, status.since) == (MemoryState.NORMAL, 5.0)


def test_a_configured_limit_caps_the_source_limit() -> None:
    pressure = MemoryPressure(MemoryPolicy(limit_bytes=500))
    status = pressure.observe(0.0, MemoryReading(450, 1_000))
    assert (status.limit_bytes, status.state) == (500, MemoryState.SHEDDING)


def test_without_any_limit_the_guard_never_sheds() -> None:
    status = MemoryPressure(MemoryPolicy()).observe(0.0, MemoryReading(10**12, None))
    assert (status.state, status.limit_bytes, status.ratio) == (MemoryState.NORMAL, None, 0.0)


def test_guard_samples_at_most_once_per_interval() -> None:
    clock = ManualClock()
    reader = SeriesReader([100])
    guard = MemoryGuard(reader, MemoryPolicy(interval_s=0.5), clock=clock)
    for _ in range(1_000):
        guard.check(Priority.LOW)
    clock.advance(0.5)
    guard.check(Priority.LOW)
    assert reader.reads == 2


def test_guard_sheds_below_keep_priority_only() -> None:
    clock = ManualClock()
    guard = MemoryGuard(SeriesReader([900]), MemoryPolicy(retry_after_s=7.0), clock=clock)
    low, normal = guard.check(Priority.LOW), guard.check(Priority.NORMAL)
    assert low is not None
    assert normal is not None
    assert (low.reason, low.code, low.retry_after_s) == (ShedReason.MEMORY, "SHED_201", 7.0)
    assert guard.check(Priority.HIGH) is None
    assert guard.check(Priority.CRITICAL) is None


def test_guard_enters_and_leaves_shedding_with_the_clock() -> None:
    clock = ManualClock()
    policy = MemoryPolicy(interval_s=1.0, min_shed_s=3.0, growth_weight=0.0)
    guard = MemoryGuard(SeriesReader([500, 900, 900, 500, 500, 500, 500]), policy, clock=clock)
    states = []
    for _ in range(7):
        states.append(guard.check(Priority.LOW) is not None)
        clock.advance(1.0)
    # in at t=1; out at t=4, the first reading below 0.8 once 3 s have passed
    assert states == [False, True, True, True, False, False, False]


def test_a_failing_reader_fails_open_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    reader = SeriesReader([900, OSError("gone"), OSError("gone"), 100])
    guard = MemoryGuard(reader, MemoryPolicy(interval_s=1.0), clock=clock)
    assert guard.check(Priority.LOW) is not None
    with caplog.at_level(logging.WARNING, logger="sloguard.resilience.memory"):
        for _ in range(2):
            clock.advance(1.0)
            assert guard.check(Priority.LOW) is None
    assert sum("cannot read" in r.message for r in caplog.records) == 1
    assert guard.status.error == "OSError: gone"


def test_listeners_hear_each_change_of_state() -> None:
    clock = ManualClock()
    policy = MemoryPolicy(interval_s=1.0, min_shed_s=0.0, growth_weight=0.0)
    guard = MemoryGuard(SeriesReader([900, 100]), policy, clock=clock)
    heard: list[tuple[MemoryState, MemoryState]] = []
    guard.add_listener(lambda old, new: heard.append((old.state, new.state)))
    guard.refresh()
    clock.advance(1.0)
    guard.refresh()
    assert heard == [
        (MemoryState.NORMAL, MemoryState.SHEDDING),
        (MemoryState.SHEDDING, MemoryState.NORMAL),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"threshold": 1.5}, "'threshold'", id="threshold"),
        pytest.param({"min_threshold": 0.9}, "'min_threshold'", id="min-above-base"),
        pytest.param({"hysteresis": 0.9}, "'hysteresis'", id="hysteresis"),
        pytest.param({"interval_s": 0.0}, "'interval_s'", id="interval"),
        pytest.param({"min_shed_s": -1.0}, "'min_shed_s'", id="min-shed"),
        pytest.param({"limit_bytes": 0}, "'limit_bytes'", id="limit"),
    ],
)
def test_bad_policy_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MemoryPolicy(**kwargs)  # type: ignore[arg-type]
