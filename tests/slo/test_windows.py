"""Rolling and calendar windows, exclusions, and the series index they read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.slo._windows import (
    CalendarUnit,
    CalendarWindow,
    Exclusions,
    MaintenanceWindow,
    MinuteRange,
    RollingWindow,
    SeriesIndex,
    datetime_of,
    minutes_in,
    to_minute,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_rolling_window_holds_the_whole_minutes_before_the_instant() -> None:
    span = RollingWindow(timedelta(hours=1)).span(utc(2024, 1, 1, 12, 0, 30))

    assert datetime_of(span.start) == utc(2024, 1, 1, 11, 0)
    assert datetime_of(span.end) == utc(2024, 1, 1, 12, 0)
    assert span.minutes == 60


def test_an_integer_instant_is_already_a_unix_minute() -> None:
    assert to_minute(1000) == 1000
    assert to_minute(datetime_of(1000) + timedelta(seconds=59)) == 1000


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        to_minute(datetime(2024, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    "duration",
    [
        pytest.param(timedelta(seconds=90), id="partial-minute"),
        pytest.param(timedelta(0), id="zero"),
        pytest.param(timedelta(minutes=-5), id="negative"),
    ],
)
def test_windows_are_positive_whole_minutes(duration: timedelta) -> None:
    with pytest.raises(ValueError, match="whole number of minutes"):
        minutes_in(duration)


@pytest.mark.parametrize(
    ("window", "at", "start", "end"),
    [
        pytest.param(
            CalendarWindow(CalendarUnit.MONTH),
            utc(2024, 2, 15, 8),
            utc(2024, 2, 1),
            utc(2024, 3, 1),
            id="leap-february-utc",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.QUARTER, "America/New_York"),
            utc(2024, 5, 10),
            datetime(2024, 4, 1, tzinfo=NEW_YORK),
            datetime(2024, 7, 1, tzinfo=NEW_YORK),
            id="quarter-new-york",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.WEEK, "Europe/Berlin"),
            utc(2024, 3, 28, 12),
            datetime(2024, 3, 25, tzinfo=BERLIN),
            datetime(2024, 4, 1, tzinfo=BERLIN),
            id="week-across-spring-forward",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.WEEK, week_start=6),
            utc(2024, 3, 28, 12),
            utc(2024, 3, 24),
            utc(2024, 3, 31),
            id="week-starting-sunday",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.DAY, "Europe/Berlin"),
            utc(2024, 10, 27, 12),
            datetime(2024, 10, 27, tzinfo=BERLIN),
            datetime(2024, 10, 28, tzinfo=BERLIN),
            id="day-of-fall-back",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.MONTH, "Europe/Berlin"),
            utc(2024, 1, 31, 23, 30),
            datetime(2024, 2, 1, tzinfo=BERLIN),
            datetime(2024, 3, 1, tzinfo=BERLIN),
            id="local-month-already-begun",
        ),
        pytest.param(
            CalendarWindow(CalendarUnit.YEAR),
            utc(2024, 12, 31, 23, 59),
            utc(2024, 1, 1),
            utc(2025, 1, 1),
            id="year",
        ),
    ],
)
def test_calendar_period_follows_the_wall_clock_of_its_zone(
    window: CalendarWindow, at: datetime, start: datetime, end: datetime
) -> None:
    assert window.period(at) == MinuteRange(to_minute(start), to_minute(end))


def test_a_berlin_march_is_an_hour_shorter_than_31_days() -> None:
    march = CalendarWindow(CalendarUnit.MONTH, "Europe/Berlin").period(utc(2024, 3, 10))

    assert march.duration == timedelta(days=31) - timedelta(hours=1)


def test_calendar_span_runs_from_the_period_start_to_the_instant() -> None:
    window = CalendarWindow(CalendarUnit.MONTH)

    span = window.span(utc(2024, 2, 3, 4, 5))

    assert span == MinuteRange(to_minute(utc(2024, 2, 1)), to_minute(utc(2024, 2, 3, 4, 5)))


def test_calendar_periods_cover_a_range_back_to_back() -> None:
    window = CalendarWindow(CalendarUnit.MONTH, "Europe/Berlin")

    periods = list(window.periods(utc(2024, 1, 15), utc(2024, 4, 2)))

    assert [datetime_of(p.start).astimezone(BERLIN).month for p in periods] == [1, 2, 3, 4]
    assert all(a.end == b.start for a, b in zip(periods, periods[1:]))


@given(
    minute=st.integers(min_value=0, max_value=60 * 24 * 365 * 80),
    unit=st.sampled_from(list(CalendarUnit)),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
)
def test_every_instant_lies_in_exactly_one_calendar_period(
    minute: int, unit: CalendarUnit, tz: str
) -> None:
    window = CalendarWindow(unit, tz)

    period = window.period(minute)

    assert minute in period
    assert window.period(period.end).start == period.end
    assert window.period(period.start - 1).end == period.start


def test_a_maintenance_window_drops_every_minute_it_touches() -> None:
    window = MaintenanceWindow(utc(2024, 1, 1, 10, 0, 30), utc(2024, 1, 1, 10, 5))

    assert window.minutes == MinuteRange(to_minute(utc(2024, 1, 1, 10)), to_minute(window.end))
    assert window.minutes.minutes == 5


def test_overlapping_exclusions_merge_and_answer_membership() -> None:
    exclusions = Exclusions.of([MinuteRange(10, 20), MinuteRange(15, 30), MinuteRange(40, 41)])

    assert exclusions.ranges == (MinuteRange(10, 30), MinuteRange(40, 41))
    assert [m for m in range(8, 43) if exclusions.excludes(m)] == [*range(10, 30), 40]
    assert exclusions.excluded_minutes(MinuteRange(25, 45)) == 6


def test_series_index_sorts_and_adds_up_repeated_minutes() -> None:
    index = SeriesIndex([(5, 1, 2), (3, 4, 4), (5, 2, 3)])

    assert index.columns(MinuteRange(0, 10)) == ([3, 5], [4, 3], [4, 5])
    assert index.counts(MinuteRange(4, 6)) == (3, 5)


def test_series_index_refuses_more_good_than_total_events() -> None:
    with pytest.raises(ValueError, match="good <= total"):
        SeriesIndex([(1, 5, 4)])


def test_series_index_drops_excluded_buckets() -> None:
    index = SeriesIndex([(m, 0, 1) for m in range(10)], Exclusions.of([MinuteRange(2, 5)]))

    assert index.counts(MinuteRange(0, 10)) == (0, 7)
    assert len(index) == 7


buckets = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 50), st.integers(0, 50)).map(
        lambda b: (b[0], min(b[1], b[2]), max(b[1], b[2]))
    ),
    max_size=60,
)


@given(series=buckets, start=st.integers(-5, 205), length=st.integers(0, 120))
def test_window_counts_equal_the_sum_of_their_buckets(
    series: list[tuple[int, int, int]], start: int, length: int
) -> None:
    span = MinuteRange(start, start + length)

    good, total = SeriesIndex(series).counts(span)

    assert good == sum(g for m, g, _ in series if m in span)
    assert total == sum(t for m, _, t in series if m in span)


@given(series=buckets, start=st.integers(-5, 100), length=st.integers(1, 120))
def test_dense_prefix_of_sparse_buckets_gives_every_window_its_counts(
    series: list[tuple[int, int, int]], start: int, length: int
) -> None:
    span = MinuteRange(start, start + length)

    bad, total = SeriesIndex(series).dense_prefix(span)

    assert bad[-1] - bad[0] == sum(t - g for m, g, t in series if m in span)
    assert total[-1] - total[0] == sum(t for m, _, t in series if m in span)
