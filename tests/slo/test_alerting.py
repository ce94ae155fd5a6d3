"""Burn-rate tiers: thresholds, evaluation, the alert state machine, lint, history scans."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.slo._alerting import (
    DEFAULT_TIERS,
    AlertPhase,
    AlertState,
    BurnRateTier,
    Evidence,
    LintLevel,
    Severity,
    TierReason,
    evaluate_tiers,
    lint_tiers,
    step,
)
from sloguard.slo._history import FiringInterval, iter_history, scan_history
from sloguard.slo._windows import Exclusions, MinuteRange, SeriesIndex, datetime_of

NINES3 = Fraction(999, 1000)
FIVE_MINUTES = timedelta(minutes=5)
DAYS30 = timedelta(days=30)
PAGE_1H = DEFAULT_TIERS[0]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def traffic(
    errors: dict[int, int], start: int, end: int, total: int = 100
) -> list[tuple[int, int, int]]:
    """Constant traffic with ``errors[m]`` bad events in minute m."""
    return [(m, total - errors.get(m, 0), total) for m in range(start, end)]


@pytest.mark.parametrize(
    ("period", "thresholds"),
    [
        pytest.param(DAYS30, ["14.4", "6", "3", "1"], id="30d"),
        pytest.param(timedelta(days=28), ["13.44", "5.6", "2.8", "14/15"], id="28d"),
        pytest.param(timedelta(days=7), ["3.36", "1.4", "0.7", "7/30"], id="7d"),
    ],
)
def test_default_tiers_scale_to_the_slo_period(period: timedelta, thresholds: list[str]) -> None:
    assert [tier.threshold(period) for tier in DEFAULT_TIERS] == [Fraction(t) for t in thresholds]


def test_a_tier_fires_when_both_windows_burn_at_the_threshold() -> None:
    series = traffic(dict.fromkeys(range(5000, 5010), 15), 0, 5100)

    results = evaluate_tiers(series, DEFAULT_TIERS, NINES3, DAYS30, at=5010)

    assert [r.condition for r in results] == [True, False, False, False]
    assert results[0].long is not None
    assert results[0].long.burn_rate == 25
    assert results[1].reason is TierReason.BELOW_THRESHOLD


def test_a_recovered_short_window_stops_a_tier_the_long_window_still_holds() -> None:
    series = traffic(dict.fromkeys(range(100, 110), 15), 0, 200)

    (result,) = evaluate_tiers(series, [PAGE_1H], NINES3, DAYS30, at=115)

    assert result.long is not None
    assert result.long.reason is TierReason.MET
    assert result.short is not None
    assert result.short.burn_rate == 0
    assert (result.condition, result.reason) == (False, TierReason.BELOW_THRESHOLD)


@pytest.mark.parametrize(
    ("series", "evidence", "reason"),
    [
        pytest.param([], Evidence(), TierReason.NO_DATA, id="no-data"),
        pytest.param(
            [(59, 0, 5)], Evidence(min_events=10), TierReason.INSUFFICIENT_DATA, id="few-events"
        ),
        pytest.param(
            [(59, 19, 20)], Evidence(z=Fraction("1.644854")), TierReason.NOT_CONFIDENT, id="1-in-20"
        ),
        pytest.param(
            [(59, 0, 30)], Evidence(z=Fraction("1.644854")), TierReason.MET, id="thirty-bad"
        ),
    ],
)
def test_a_window_needs_evidence_before_it_can_page(
    series: list[tuple[int, int, int]], evidence: Evidence, reason: TierReason
) -> None:
    (result,) = evaluate_tiers(series, [PAGE_1H], NINES3, DAYS30, at=60, evidence=evidence)

    assert result.reason is reason
    assert result.condition is (reason is TierReason.MET)


def test_a_disabled_tier_never_fires() -> None:
    tier = replace(PAGE_1H, enabled=False)

    (result,) = evaluate_tiers([(59, 0, 100)], [tier], NINES3, DAYS30, at=60)

    assert (result.condition, result.reason, result.long) == (False, TierReason.DISABLED, None)


def test_errors_inside_a_maintenance_window_fire_no_alert() -> None:
    series = traffic(dict.fromkeys(range(50, 60), 100), 0, 60)
    maintenance = Exclusions.of([MinuteRange(50, 60)])

    (result,) = evaluate_tiers(series, [PAGE_1H], NINES3, DAYS30, at=60, exclusions=maintenance)

    assert result.condition is False
    assert result.short is not None
    assert result.short.reason is TierReason.NO_DATA


FOR_5M = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("state", "condition", "now", "for_", "phase"),
    [
        pytest.param(AlertState(), True, 0, timedelta(0), AlertPhase.FIRING, id="fires-at-once"),
        pytest.param(AlertState(), True, 0, FOR_5M, AlertPhase.PENDING, id="waits-for"),
        pytest.param(
            AlertState(AlertPhase.PENDING, minute(0)), True, 4, FOR_5M, None, id="still-pending"
        ),
        pytest.param(
            AlertState(AlertPhase.PENDING, minute(0)), True, 5, FOR_5M, AlertPhase.FIRING, id="due"
        ),
        pytest.param(
            AlertState(AlertPhase.PENDING, minute(0)),
            False,
            3,
            FOR_5M,
            AlertPhase.INACTIVE,
            id="pending-cancelled",
        ),
        pytest.param(
            AlertState(AlertPhase.FIRING, minute(0), minute(0)),
            False,
            9,
            FOR_5M,
            AlertPhase.RESOLVED,
            id="resolves",
        ),
        pytest.param(
            AlertState(AlertPhase.FIRING, minute(0), minute(0)), True, 9, FOR_5M, None, id="holds"
        ),
        pytest.param(
            AlertState(AlertPhase.RESOLVED, minute(0), minute(0), minute(9)),
            True,
            20,
            FOR_5M,
            AlertPhase.PENDING,
            id="new-incident",
        ),
        pytest.param(AlertState(), False, 0, FOR_5M, None, id="quiet"),
    ],
)
def test_the_alert_state_machine(
    state: AlertState, condition: bool, now: int, for_: timedelta, phase: AlertPhase | None
) -> None:
    new, transition = step(state, condition, minute(now), for_=for_)

    if phase is None:
        assert (new, transition) == (state, None)
    else:
        assert transition is not None
        assert (new.phase, transition.before, transition.after) == (phase, state.phase, phase)


def test_a_firing_alert_remembers_when_it_fired_and_resolved() -> None:
    state = AlertState()
    for now, condition in [(0, True), (5, True), (6, True), (8, False)]:
        state, _ = step(state, condition, minute(now), for_=FOR_5M)

    assert state == AlertState(AlertPhase.RESOLVED, minute(0), minute(5), minute(8))


def test_alert_states_round_trip_through_a_dict() -> None:
    state = AlertState(AlertPhase.RESOLVED, minute(0), minute(5), minute(8))

    assert AlertState.from_dict(state.to_dict()) == state
    assert AlertState.from_dict({}) == AlertState()


def test_an_alert_state_with_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        AlertState.from_dict({"phase": "pending", "pending_since": "2024-01-01T00:00:00"})


def page_x(short_window: timedelta) -> BurnRateTier:
    return BurnRateTier("x", Fraction(1, 100), timedelta(hours=1), short_window, Severity.PAGE)


def codes(tiers: list[BurnRateTier], objective: Fraction = NINES3) -> set[tuple[str, str | None]]:
    return {(f.code, f.tier) for f in lint_tiers(tiers, objective, DAYS30)}


def test_lint_finds_nothing_wrong_with_the_default_tiers() -> None:
    findings = lint_tiers(DEFAULT_TIERS, NINES3, DAYS30)

    assert [f for f in findings if f.level is not LintLevel.INFO] == []
    assert "fires it after 0:01:00 (60 s)" in findings[1].message  # 2% of 43.2 min, to the minute


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        pytest.param(
            [page_x(timedelta(hours=1))],
            ("short-not-shorter", "x"),
            id="short-as-long",
        ),
        pytest.param(
            [page_x(timedelta(seconds=30))],
            ("below-resolution", "x"),
            id="sub-minute",
        ),
        pytest.param(
            [page_x(timedelta(seconds=90))],
            ("off-resolution", "x"),
            id="between-minutes",
        ),
        pytest.param([PAGE_1H, PAGE_1H], ("duplicate-name", "page-1h"), id="duplicate"),
        pytest.param(
            [PAGE_1H, replace(PAGE_1H, name="steeper", budget_share=Fraction(3, 100))],
            ("dominated", "steeper"),
            id="dominated",
        ),
    ],
)
def test_lint_flags_tiers_that_cannot_work_as_meant(
    tiers: list[BurnRateTier], expected: tuple[str, str]
) -> None:
    assert expected in codes(tiers)


def test_lint_warns_of_a_tier_only_a_total_outage_reaches() -> None:
    # At 90% a total outage burns at 10: exactly 10% of a 30-day budget in 7.2 hours.
    tier = BurnRateTier("x", Fraction(1, 10), timedelta(hours=7.2), FIVE_MINUTES, Severity.PAGE)

    assert ("outage-only", "x") in codes([tier], Fraction(9, 10))


def test_a_ticket_on_the_same_windows_as_a_louder_page_is_dominated() -> None:
    ticket = replace(PAGE_1H, name="ticket", severity=Severity.TICKET)

    assert ("dominated", "ticket") in codes([PAGE_1H, ticket])
    assert ("dominated", "page-1h") not in codes([PAGE_1H, ticket])


def test_a_scan_marks_an_alert_still_firing_at_the_end_as_ongoing() -> None:
    series = traffic(dict.fromkeys(range(50, 60), 100), 0, 60)

    (history,) = scan_history(series, [PAGE_1H], NINES3, DAYS30, 0, 60)

    assert history.intervals == (FiringInterval(51, 51, 60, True),)


def test_a_scan_waits_out_for_before_firing() -> None:
    series = traffic(dict.fromkeys(range(50, 60), 100), 0, 80)
    tier = replace(PAGE_1H, for_=timedelta(minutes=3, seconds=1))

    (history,) = scan_history(series, [tier], NINES3, DAYS30, 0, 80)

    assert history.intervals == (FiringInterval(51, 55, 65, False),)


def test_a_scan_of_a_disabled_tier_is_empty() -> None:
    series = traffic(dict.fromkeys(range(50, 60), 100), 0, 80)

    histories = scan_history(
        series, [replace(PAGE_1H, enabled=False), PAGE_1H], NINES3, DAYS30, 0, 80
    )

    assert [len(h.intervals) for h in histories] == [0, 1]


def replay(
    series: list[tuple[int, int, int]],
    tiers: list[BurnRateTier],
    start: int,
    end: int,
    evidence: Evidence,
) -> list[list[FiringInterval]]:
    """The firing intervals from iter_history fed through the state machine, step by step."""
    states = [AlertState() for _ in tiers]
    found: list[list[FiringInterval]] = [[] for _ in tiers]
    for s in iter_history(series, tiers, NINES3, DAYS30, start, end, evidence=evidence):
        for i, tier in enumerate(tiers):
            states[i], change = step(states[i], s.conditions[i], datetime_of(s.at), for_=tier.for_)
            if change and change.after is AlertPhase.FIRING:
                since = states[i].pending_since
                assert since is not None
                found[i].append(FiringInterval(minute_of(since), s.at, end, True))
            elif change and change.after is AlertPhase.RESOLVED:
                found[i][-1] = replace(found[i][-1], end=s.at, ongoing=False)
    return found


def minute_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


random_tiers = st.lists(
    st.builds(
        BurnRateTier,
        name=st.just("t"),
        budget_share=st.fractions(Fraction(1, 1000), Fraction(1, 20)),
        long_window=st.integers(2, 90).map(lambda m: timedelta(minutes=m)),
        short_window=st.integers(1, 30).map(lambda m: timedelta(minutes=m)),
        severity=st.just(Severity.PAGE),
        for_=st.integers(0, 5).map(lambda m: timedelta(minutes=m)),
    ),
    min_size=1,
    max_size=3,
)
evidences = st.sampled_from([Evidence(), Evidence(min_events=150), Evidence(z=Fraction(2))])
minutes_of_errors = st.dictionaries(st.integers(0, 300), st.integers(0, 100), max_size=80)


@settings(max_examples=60, deadline=None)
@given(
    tiers=random_tiers,
    errors=minutes_of_errors,
    gaps=st.sets(st.integers(0, 300), max_size=100),
    evidence=evidences,
)
def test_a_history_scan_agrees_with_replaying_every_minute(
    tiers: list[BurnRateTier], errors: dict[int, int], gaps: set[int], evidence: Evidence
) -> None:
    series = [b for b in traffic(errors, 0, 300) if b[0] not in gaps]

    histories = scan_history(series, tiers, NINES3, DAYS30, 100, 300, evidence=evidence)

    assert [list(h.intervals) for h in histories] == replay(series, tiers, 100, 300, evidence)


@settings(max_examples=40, deadline=None)
@given(tiers=random_tiers, errors=minutes_of_errors, at=st.integers(100, 299), evidence=evidences)
def test_stepping_through_history_agrees_with_evaluating_one_instant(
    tiers: list[BurnRateTier], errors: dict[int, int], at: int, evidence: Evidence
) -> None:
    series = SeriesIndex(traffic(errors, 0, 300))

    history = iter_history(series, tiers, NINES3, DAYS30, 100, 300, evidence=evidence)
    steps = {s.at: s.conditions for s in history}
    results = evaluate_tiers(series, tiers, NINES3, DAYS30, at=at, evidence=evidence)

    assert steps[at] == tuple(r.condition for r in results)


def test_a_long_healthy_history_with_one_incident_scans_to_the_same_answer_block_by_block() -> None:
    # A week of minutes exercises the block filter; the incident sits across block edges.
    errors = dict.fromkeys(range(5000, 5013), 100)
    series = traffic(errors, 0, 10_080, total=1000)

    fast = scan_history(series, DEFAULT_TIERS, NINES3, DAYS30, 4320, 10_080)

    assert [list(h.intervals) for h in fast] == replay(
        series, list(DEFAULT_TIERS), 4320, 10_080, Evidence()
    )
    assert fast[0].intervals
    assert not fast[1].intervals
