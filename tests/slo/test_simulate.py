"""Simulated incident shapes against the SRE Workbook's figures (ch. 5, 99.9% over 30 days)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from fractions import Fraction

import pytest
import typer
from typer.testing import CliRunner

from sloguard.cli import slo_tools
from sloguard.slo._alerting import DEFAULT_TIERS
from sloguard.slo._backtest import TierTiming
from sloguard.slo._simulate import (
    Scenario,
    Segment,
    periodic_spikes,
    segments_series,
    simulate,
    slow_drift,
    step_outage,
)

OBJECTIVE = Fraction(999, 1000)
PERIOD = timedelta(days=30)


def _timing(timings: Sequence[TierTiming], name: str) -> tuple[int | None, int | None]:
    found = next(t for t in timings if t.tier == name)
    return found.detection, found.reset


def test_fifteen_percent_for_ten_minutes_fires_the_1h_tier_after_six_and_resets_after_five() -> (
    None
):
    result = simulate(
        step_outage(Fraction(15, 100), timedelta(minutes=10)), DEFAULT_TIERS, OBJECTIVE, PERIOD
    )
    assert _timing(result.timings, "page-1h") == (6, 5)
    assert _timing(result.timings, "page-6h") == (None, None)


def test_total_outage_fires_the_1h_tier_after_one_minute() -> None:
    # 1h x 14.4 x 0.001 = 0.864 minutes of total outage: the first whole minute.
    result = simulate(
        step_outage(Fraction(1), timedelta(minutes=30)), DEFAULT_TIERS, OBJECTIVE, PERIOD
    )
    assert _timing(result.timings, "page-1h")[0] == 1


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(
            periodic_spikes(Fraction(1, 2), timedelta(minutes=2), timedelta(minutes=30), 5),
            id="spikes",
        ),
        pytest.param(slow_drift(Fraction(0), Fraction(5, 100), timedelta(hours=6)), id="drift"),
    ],
)
def test_long_tiers_detect_later_than_the_1h_tier(scenario: Scenario) -> None:
    result = simulate(scenario, DEFAULT_TIERS, OBJECTIVE, PERIOD)
    fast, slow = _timing(result.timings, "page-1h")[0], _timing(result.timings, "ticket-1d")[0]
    assert fast is not None
    assert slow is not None
    assert fast < slow


def test_segments_round_bad_events_half_up_at_the_rate() -> None:
    series = segments_series([Segment(2, Fraction(1, 2000)), Segment(1, Fraction(1, 4))], 1000, 7)
    assert series == [(7, 999, 1000), (8, 999, 1000), (9, 750, 1000)]


def test_simulate_command_prints_json_per_tier() -> None:
    app = typer.Typer()
    app.command("simulate")(slo_tools.simulate_command)
    app.command("other")(slo_tools.spec_tests)
    result = CliRunner().invoke(app, ["simulate", "step", "--error-ratio", "0.15", "--json"])
    assert result.exit_code == 0, result.output
    tiers = json.loads(result.stdout)["tiers"]
    assert tiers[0] == {
        "tier": "page-1h",
        "severity": "page",
        "detection_minutes": 6,
        "reset_minutes": 5,
    }


def test_simulate_command_rejects_an_unknown_shape() -> None:
    app = typer.Typer()
    app.command("simulate")(slo_tools.simulate_command)
    app.command("other")(slo_tools.spec_tests)
    result = CliRunner().invoke(app, ["simulate", "sawtooth"])
    assert result.exit_code == 2
