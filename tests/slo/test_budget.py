"""Exact budget math: objectives, burn rates, budgeting methods, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.slo._budget import (
    Budgeting,
    BudgetingMethod,
    DataStatus,
    as_decimal,
    budget_report,
    burn_rate,
    error_budget,
    objective_from_percent,
    objective_from_ratio,
    period_reports,
    sli,
    wilson_interval,
    wilson_lower_at_least,
    z_score,
)
from sloguard.slo._windows import (
    CalendarUnit,
    CalendarWindow,
    Exclusions,
    MinuteRange,
    RollingWindow,
    to_minute,
)

NINES3 = Fraction(999, 1000)
HOUR = RollingWindow(timedelta(hours=1))
FIVE_MINUTES = timedelta(minutes=5)


def steady(start: int, minutes: int, good: int, total: int) -> list[tuple[int, int, int]]:
    return [(m, good, total) for m in range(start, start + minutes)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("99.9", NINES3, id="string"),
        pytest.param(Decimal("99.95"), Fraction(9995, 10000), id="decimal"),
        pytest.param(Fraction(999, 10), NINES3, id="fraction"),
        pytest.param(99.9, NINES3, id="float-by-its-repr"),
        pytest.param(99, Fraction(99, 100), id="int"),
    ],
)
def test_objectives_from_percent_are_exact(value: object, expected: Fraction) -> None:
    assert objective_from_percent(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("100", id="hundred"),
        pytest.param("0", id="zero"),
        pytest.param(float("nan"), id="nan"),
        pytest.param("ninety", id="words"),
    ],
)
def test_objectives_outside_zero_to_hundred_percent_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        objective_from_percent(value)  # type: ignore[arg-type]


def test_the_budget_of_99_9_percent_has_no_float_noise() -> None:
    budget = error_budget(objective_from_percent(99.9))

    assert budget == Fraction(1, 1000)
    assert str(as_decimal(budget)) == "0.001000"


def test_no_events_have_no_sli_and_no_burn_rate() -> None:
    assert sli(0, 0) is None
    assert burn_rate(0, 0, NINES3) is None
    assert burn_rate(999, 1000, NINES3) == 1


def test_an_occurrences_report_spends_bad_events_against_the_budget() -> None:
    series = steady(0, 60, 998, 1000)

    report = budget_report(series, objective=NINES3, window=HOUR, at=60)

    assert (report.status, report.good, report.bad) == (DataStatus.OK, 59880, 120)
    assert report.sli == Fraction(998, 1000)
    assert [report.burn_rate, report.consumed, report.remaining] == [2, 2, -1]
    assert report.as_dict()["remaining"] == "-1.000000"


@pytest.mark.parametrize(
    ("series", "status"),
    [
        pytest.param([], DataStatus.NO_DATA, id="no-buckets"),
        pytest.param([(10, 0, 0)], DataStatus.NO_DATA, id="empty-buckets"),
        pytest.param(steady(0, 9, 1, 1), DataStatus.INSUFFICIENT_DATA, id="below-min-events"),
        pytest.param(steady(0, 10, 1, 1), DataStatus.OK, id="at-min-events"),
    ],
)
def test_too_few_events_give_a_status_instead_of_a_number(
    series: list[tuple[int, int, int]], status: DataStatus
) -> None:
    report = budget_report(series, objective=NINES3, window=HOUR, at=60, min_events=10)

    assert report.status is status
    assert (report.sli is None) is (status is not DataStatus.OK)
    assert (report.remaining is None) is (status is not DataStatus.OK)


# Eleven slices with one good of two events, one slice with 1000 of 1000 good.
UNEVEN = [(m * 5, 1, 2) for m in range(11)] + [(55, 1000, 1000)]


@pytest.mark.parametrize(
    ("budgeting", "expected"),
    [
        pytest.param(Budgeting(), Fraction(1011, 1022), id="occurrences-weigh-events"),
        pytest.param(
            Budgeting(BudgetingMethod.TIMESLICES, FIVE_MINUTES, Fraction(99, 100)),
            Fraction(1, 12),
            id="timeslices-count-good-slices",
        ),
        pytest.param(
            Budgeting(BudgetingMethod.RATIO_TIMESLICES, FIVE_MINUTES),
            Fraction(13, 24),
            id="ratio-timeslices-average-slice-ratios",
        ),
    ],
)
def test_each_budgeting_method_weighs_the_same_events_its_own_way(
    budgeting: Budgeting, expected: Fraction
) -> None:
    report = budget_report(UNEVEN, objective=NINES3, window=HOUR, at=60, budgeting=budgeting)

    assert report.sli == expected


def test_timeslices_leave_slices_without_events_out() -> None:
    series = [(0, 10, 10), (1, 5, 10), (7, 0, 0)]  # minutes 2..59: no data at all
    budgeting = Budgeting(BudgetingMethod.TIMESLICES, timedelta(minutes=1), Fraction(9, 10))

    report = budget_report(series, objective=NINES3, window=HOUR, at=60, budgeting=budgeting)

    assert (report.good_slices, report.slices, report.sli) == (1, 2, Fraction(1, 2))


def test_a_slice_meeting_the_target_exactly_is_good() -> None:
    budgeting = Budgeting(BudgetingMethod.TIMESLICES, FIVE_MINUTES, Fraction(9, 10))

    report = budget_report([(0, 9, 10)], objective=NINES3, window=HOUR, at=60, budgeting=budgeting)

    assert report.sli == 1


def test_time_slices_start_at_the_start_of_the_window() -> None:
    # The window [3, 63) slices as [3, 8), [8, 13), ...: minutes 3-7 are one bad slice.
    series = [(m, 0, 1) for m in range(3, 8)] + [(m, 1, 1) for m in range(8, 63)]
    budgeting = Budgeting(BudgetingMethod.TIMESLICES, FIVE_MINUTES, Fraction(1, 2))

    report = budget_report(series, objective=NINES3, window=HOUR, at=63, budgeting=budgeting)

    assert (report.good_slices, report.slices) == (11, 12)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"method": BudgetingMethod.TIMESLICES}, id="timeslices-without-target"),
        pytest.param(
            {"method": BudgetingMethod.OCCURRENCES, "timeslice_target": Fraction(1, 2)},
            id="target-on-occurrences",
        ),
        pytest.param({"timeslice": timedelta(seconds=30)}, id="sub-minute-slice"),
    ],
)
def test_inconsistent_budgeting_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Budgeting(**kwargs)  # type: ignore[arg-type]


def test_excluded_buckets_count_nowhere_in_a_report() -> None:
    series = steady(0, 50, 1000, 1000) + steady(50, 10, 0, 1000)
    maintenance = Exclusions.of([MinuteRange(50, 60)])

    report = budget_report(series, objective=NINES3, window=HOUR, at=60, exclusions=maintenance)

    assert (report.bad, report.total, report.sli) == (0, 50_000, Fraction(1))
    assert report.excluded_minutes == 10


def test_time_to_exhaustion_uses_the_recent_burn_rate() -> None:
    # 23 hours at burn rate 0, then an hour at 10: a rolling day has 14/24 of its budget left,
    # which lasts 1 day x 14/24 / 10 at burn rate 10.
    series = steady(0, 1380, 1000, 1000) + steady(1380, 60, 990, 1000)
    window = RollingWindow(timedelta(days=1))

    report = budget_report(series, objective=NINES3, window=window, at=1440)

    assert report.current_burn_rate == 10
    assert report.remaining == Fraction(14, 24)
    assert report.time_to_exhaustion == timedelta(days=1) * 14 / 24 / 10


def test_an_overspent_budget_is_exhausted_now() -> None:
    report = budget_report(steady(0, 60, 0, 10), objective=NINES3, window=HOUR, at=60)

    assert report.remaining == -999
    assert report.time_to_exhaustion == timedelta(0)


def test_period_reports_give_each_calendar_month_its_own_budget() -> None:
    jan, feb = (
        to_minute(datetime(2024, 1, 1, tzinfo=UTC)),
        to_minute(datetime(2024, 2, 1, tzinfo=UTC)),
    )
    series = steady(jan, 10, 999, 1000) + steady(feb, 10, 998, 1000)
    months = CalendarWindow(CalendarUnit.MONTH)

    reports = period_reports(series, objective=NINES3, calendar=months, start=jan, end=feb + 20)

    assert [r.burn_rate for r in reports] == [1, 2]
    assert [r.period for r in reports] == [timedelta(days=31), timedelta(days=29)]
    assert reports[-1].span == MinuteRange(feb, feb + 20)


def test_a_calendar_report_measures_the_period_to_date() -> None:
    feb = to_minute(datetime(2024, 2, 1, tzinfo=UTC))
    series = steady(feb - 10, 20, 0, 1)

    report = budget_report(
        series, objective=NINES3, window=CalendarWindow(CalendarUnit.MONTH), at=feb + 5
    )

    assert (report.span, report.total, report.period) == (
        MinuteRange(feb, feb + 5),
        5,
        timedelta(days=29),
    )


def test_z_scores_are_one_sided_quantiles_to_six_decimals() -> None:
    assert z_score("0.95") == Fraction("1.644854")
    assert z_score(Fraction(975, 1000)) == Fraction("1.959964")


def test_the_wilson_interval_matches_the_textbook_figures() -> None:
    interval = wilson_interval(2, 10, Fraction("1.96"))

    assert interval is not None
    assert [str(as_decimal(bound, 4)) for bound in interval] == ["0.0567", "0.5098"]


def test_a_report_with_z_carries_the_wilson_bounds_of_its_burn_rate() -> None:
    report = budget_report(steady(0, 10, 0, 1), objective=NINES3, window=HOUR, at=60, z=Fraction(2))

    assert report.burn_rate_bounds is not None
    low, high = report.burn_rate_bounds
    assert low < 1000 == high == report.burn_rate


counts = st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)).map(
    lambda c: (min(c), max(c[1], 1)) if c[0] <= c[1] else (c[1], c[0])
)


@given(good_total=counts, percent=st.decimals("50", "99.999", places=3))
def test_consumed_and_remaining_budget_add_up_to_exactly_one(
    good_total: tuple[int, int], percent: Decimal
) -> None:
    good, total = good_total
    series = [(0, good, total)]

    report = budget_report(series, objective=objective_from_percent(percent), window=HOUR, at=60)

    assert report.consumed is not None
    assert report.remaining is not None
    assert report.consumed + report.remaining == 1


@given(first=counts, second=counts)
def test_the_burn_rate_of_a_window_weighs_its_halves_by_their_events(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    series = [(0, *first), (30, *second)]
    whole = budget_report(series, objective=NINES3, window=HOUR, at=60).burn_rate
    halves = [burn_rate(*half, NINES3) for half in (first, second)]

    assert halves[0] is not None
    assert halves[1] is not None
    assert whole == (first[1] * halves[0] + second[1] * halves[1]) / (first[1] + second[1])


slices = st.lists(st.tuples(st.integers(0, 59), counts), min_size=1, max_size=40)


@given(buckets=slices, target=st.fractions(Fraction(1, 100), 1), size=st.integers(1, 15))
def test_timeslice_slis_stay_between_zero_and_one(
    buckets: list[tuple[int, tuple[int, int]]], target: Fraction, size: int
) -> None:
    series = [(m, g, t) for m, (g, t) in buckets]
    methods = [
        Budgeting(BudgetingMethod.TIMESLICES, timedelta(minutes=size), target),
        Budgeting(BudgetingMethod.RATIO_TIMESLICES, timedelta(minutes=size)),
    ]

    for budgeting in methods:
        value = budget_report(series, objective=NINES3, window=HOUR, at=60, budgeting=budgeting).sli
        assert value is not None
        assert 0 <= value <= 1


@given(buckets=slices)
def test_ratio_timeslices_equal_the_plain_mean_of_slice_ratios(
    buckets: list[tuple[int, tuple[int, int]]],
) -> None:
    series = [(m, g, t) for m, (g, t) in buckets]
    per_minute: dict[int, tuple[int, int]] = {}
    for m, g, t in series:
        pg, pt = per_minute.get(m, (0, 0))
        per_minute[m] = (pg + g, pt + t)
    budgeting = Budgeting(BudgetingMethod.RATIO_TIMESLICES)

    report = budget_report(series, objective=NINES3, window=HOUR, at=60, budgeting=budgeting)

    ratios = [Fraction(g, t) for g, t in per_minute.values()]
    assert report.sli == sum(ratios, Fraction(0)) / len(ratios)


@given(good_total=counts, z=st.fractions(Fraction(1, 2), 4), ratio=st.fractions(0, 1))
def test_the_exact_wilson_check_agrees_with_the_computed_bound(
    good_total: tuple[int, int], z: Fraction, ratio: Fraction
) -> None:
    good, total = good_total
    interval = wilson_interval(total - good, total, z)
    assert interval is not None
    low = interval[0]

    if wilson_lower_at_least(total - good, total, z, ratio):
        assert low >= ratio - Fraction(1, 10**29)
    else:
        assert low < ratio + Fraction(1, 10**29)


def test_ratio_objectives_are_checked_too() -> None:
    assert objective_from_ratio("0.999") == NINES3
    with pytest.raises(ValueError):
        objective_from_ratio(1)
