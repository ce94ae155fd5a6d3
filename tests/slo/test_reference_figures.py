"""The figures of the SRE Workbook, ch. 5 "Alerting on SLOs" (99.9% over 30 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sloguard.slo._alerting import (
    DEFAULT_TIERS,
    AlertPhase,
    AlertState,
    evaluate_tiers,
    lint_tiers,
    step,
)
from sloguard.slo._budget import (
    budget_spent,
    objective_from_percent,
    time_to_exhaustion,
    total_outage_exhaustion,
)
from sloguard.slo._history import FiringInterval, scan_history
from sloguard.slo._windows import SeriesIndex

NINES3 = objective_from_percent("99.9")
DAYS30 = timedelta(days=30)
PAGE_1H = DEFAULT_TIERS[0]
INCIDENT = 10_000  # the unix minute the errors start


def test_burn_rate_14_4_over_an_hour_spends_2_percent_of_the_budget() -> None:
    assert budget_spent(Fraction("14.4"), timedelta(hours=1), DAYS30) == Fraction(2, 100)
    assert PAGE_1H.threshold(DAYS30) == Fraction("14.4")


def test_at_burn_rate_1000_the_budget_lasts_about_43_minutes() -> None:
    lasts = time_to_exhaustion(Fraction(1), Fraction(1000), DAYS30)

    assert lasts == timedelta(minutes=43, seconds=12)


def test_a_90_percent_target_can_never_fire_the_2_percent_in_1_hour_page() -> None:
    findings = lint_tiers(DEFAULT_TIERS, objective_from_percent(90), DAYS30)
    never = [f for f in findings if f.code == "never-fires"]
    outage = [(m, 0, 100) for m in range(24 * 60)]  # every event bad, for a day

    (history,) = scan_history(outage, [PAGE_1H], objective_from_percent(90), DAYS30, 60, 1440)

    assert [f.tier for f in never] == ["page-1h"]
    assert "14.4 exceeds 10" in never[0].message
    assert history.intervals == ()


def test_at_99_999_percent_a_total_outage_spends_a_30_day_budget_in_about_26_seconds() -> None:
    objective = objective_from_percent("99.999")

    (summary, *_) = lint_tiers(DEFAULT_TIERS, objective, DAYS30)

    assert total_outage_exhaustion(objective, DAYS30) == timedelta(seconds=25.92)
    assert summary.code == "total-outage"
    assert "whole budget in 0:00:25.920000 (25.92 s)" in summary.message


def fifteen_percent_for_ten_minutes() -> list[tuple[int, int, int]]:
    """Three days of 1000 events a minute (every tier's windows full), 15% bad for 10 minutes."""
    return [
        (m, 850 if INCIDENT <= m < INCIDENT + 10 else 1000, 1000)
        for m in range(INCIDENT - 3 * 1440, INCIDENT + 120)
    ]


def test_15_percent_errors_for_10_minutes_page_until_5_minutes_after_they_stop() -> None:
    # The hour's burn rate crosses 14.4 with the 6th bad minute (6 x 150 / 60 = 15);
    # the 5-minute window empties of errors 5 minutes after the last bad minute.
    # The 6-hour tier never fires: 10 x 150 / 360 = 4.2 < 6.
    series = fifteen_percent_for_ten_minutes()

    (page, *quiet) = scan_history(
        series, DEFAULT_TIERS, NINES3, DAYS30, INCIDENT - 60, INCIDENT + 120
    )

    assert page.intervals == (FiringInterval(INCIDENT + 6, INCIDENT + 6, INCIDENT + 15, False),)
    assert all(h.intervals == () for h in quiet)


def test_the_same_page_minute_by_minute_through_the_alert_state_machine() -> None:
    series = SeriesIndex(fifteen_percent_for_ten_minutes())
    state, changes = AlertState(), []
    for at in range(INCIDENT - 60, INCIDENT + 120):
        (result, *_) = evaluate_tiers(series, DEFAULT_TIERS, NINES3, DAYS30, at=at)
        now = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=at)
        state, change = step(state, result.condition, now)
        if change:
            changes.append((change.after, at - INCIDENT))

    assert changes == [(AlertPhase.FIRING, 6), (AlertPhase.RESOLVED, 15)]
