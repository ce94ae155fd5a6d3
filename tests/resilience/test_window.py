"""The sliding window: counts, bucket expiry, totals."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.resilience._window import SlidingWindow


def totals(window: SlidingWindow) -> tuple[int, int, int]:
    return window.calls, window.failures, window.slow


def test_record_counts_calls_failures_and_slow_calls() -> None:
    window = SlidingWindow(bucket_s=1.0, buckets=10)
    window.record(100.0, failed=False, slow=False)
    window.record(100.5, failed=True, slow=False)
    window.record(101.0, failed=True, slow=True)
    assert totals(window) == (3, 2, 1)


def test_buckets_older_than_the_window_expire() -> None:
    window = SlidingWindow(bucket_s=1.0, buckets=3)
    window.record(100.0, failed=True, slow=False)
    window.record(101.0, failed=False, slow=True)
    window.record(102.9, failed=False, slow=False)
    assert totals(window) == (3, 1, 1)
    window.roll(103.0)
    assert totals(window) == (2, 0, 1)
    window.roll(104.0)
    assert totals(window) == (1, 0, 0)


def test_a_gap_longer_than_the_window_clears_everything() -> None:
    window = SlidingWindow(bucket_s=0.5, buckets=4)
    for step in range(8):
        window.record(10.0 + step * 0.25, failed=True, slow=True)
    window.record(1_000.0, failed=False, slow=False)
    assert totals(window) == (1, 0, 0)


def test_an_earlier_time_counts_into_the_current_bucket() -> None:
    window = SlidingWindow(bucket_s=1.0, buckets=2)
    window.record(50.0, failed=False, slow=False)
    window.record(49.0, failed=True, slow=False)
    window.roll(51.0)
    assert totals(window) == (2, 1, 0)
    window.roll(52.0)
    assert totals(window) == (0, 0, 0)


def test_one_bucket_window_forgets_at_each_bucket_boundary() -> None:
    window = SlidingWindow(bucket_s=2.0, buckets=1)
    window.record(10.0, failed=True, slow=False)
    window.record(11.9, failed=True, slow=False)
    window.record(12.0, failed=False, slow=False)
    assert totals(window) == (1, 0, 0)


@pytest.mark.parametrize("bucket_s", [0.1, 0.3, 1 / 3, 0.7, 2.5])
@pytest.mark.parametrize("origin", [0.0, 123_456.0], ids=["zero", "uptime"])
def test_a_bucket_ends_exactly_where_floor_division_says(bucket_s: float, origin: float) -> None:
    for k in range(1, 5_000, 7):
        window = SlidingWindow(bucket_s, buckets=1)
        at = origin + k * bucket_s
        before = math.nextafter(at, -math.inf)
        window.record(before, failed=True, slow=False)
        window.record(at, failed=False, slow=False)
        rolled = at // bucket_s > before // bucket_s
        assert totals(window) == ((1, 0, 0) if rolled else (2, 1, 0))


def test_clear_forgets_every_call() -> None:
    window = SlidingWindow(bucket_s=1.0, buckets=5)
    window.record(1.0, failed=True, slow=True)
    window.clear()
    assert totals(window) == (0, 0, 0)


@pytest.mark.parametrize(
    ("bucket_s", "buckets"),
    [pytest.param(0.0, 3, id="zero-bucket"), pytest.param(1.0, 0, id="no-buckets")],
)
def test_bad_sizes_are_rejected(bucket_s: float, buckets: int) -> None:
    with pytest.raises(ValueError, match="bucket"):
        SlidingWindow(bucket_s, buckets)


events = st.lists(
    st.tuples(st.floats(0.0, 3.0), st.booleans(), st.booleans()), min_size=1, max_size=60
)


@given(events)
def test_totals_equal_a_recount_of_the_calls_still_in_the_window(
    steps: list[tuple[float, bool, bool]],
) -> None:
    window = SlidingWindow(bucket_s=1.0, buckets=4)
    now, kept = 100.0, []
    for gap, failed, slow in steps:
        now += gap
        window.record(now, failed, slow)
        kept.append((now // 1.0, failed, slow))
        live = [k for k in kept if k[0] > now // 1.0 - 4]
        assert totals(window) == (
            len(live),
            sum(k[1] for k in live),
            sum(k[2] for k in live),
        )
