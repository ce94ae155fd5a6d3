"""Backtests: incidents, detection and reset per tier, budgets per period, comparisons."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sloguard.cli import slo_tools
from sloguard.slo._backtest import (
    HistoryFileError,
    backtest,
    compare,
    find_incidents,
    load_history,
)
from sloguard.slo._model import SLODefinition
from sloguard.slo._simulate import Segment, segments_series
from sloguard.slo._specload import load_slo_files
from sloguard.slo._windows import SeriesIndex
from sloguard.store import BucketRow, SQLiteStore

OCT_1 = 29_846_880  # 2026-10-01T00:00Z in unix minutes
SPEC = """
apiVersion: sloguard.dev/v1
kind: SLO
metadata: {{name: {name}, service: shop}}
spec:
  objective: 99.9
  window: 30d
  sli: {{requests: {{routes: ["/checkout"]}}}}
  alerting: {alerting}
"""
TICKETS_ONLY = "{tiers: [{name: t-1d, severity: ticket, budgetPercent: 10, longWindow: 1d}]}"


def _definition(tmp_path: Path, alerting: str = "{tiers: default}") -> SLODefinition:
    path = tmp_path / f"spec{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(SPEC.format(name="checkout", alerting=alerting))
    return load_slo_files([path])[0]


def _outage_month() -> list[tuple[int, int, int]]:
    """Ten healthy days, 10 minutes of 15% errors, then healthy to day 40."""
    segments = [Segment(14_400, Fraction(0)), Segment(10, Fraction(15, 100))]
    return segments_series([*segments, Segment(43_190, Fraction(0))], 1000, OCT_1)


def test_step_outage_pages_once_detected_after_six_minutes_and_reset_after_five(
    tmp_path: Path,
) -> None:
    result = backtest(_definition(tmp_path), _outage_month(), OCT_1, OCT_1 + 57_600)
    assert (result.pages, result.tickets) == (1, 0)
    [(incident, timings)] = result.incidents
    assert (incident.start, incident.end) == (OCT_1 + 14_400, OCT_1 + 14_410)
    page_1h = next(t for t in timings if t.tier == "page-1h")
    assert (page_1h.detection, page_1h.reset) == (6, 5)


def test_budget_is_reported_per_calendar_month_for_a_rolling_spec(tmp_path: Path) -> None:
    result = backtest(_definition(tmp_path), _outage_month(), OCT_1, OCT_1 + 57_600)
    assert len(result.periods) == 2
    october = result.periods[0]
    assert october.bad == 1500
    assert october.total == 31 * 1440 * 1000


def test_over_budget_minutes_closer_than_five_minutes_are_one_incident() -> None:
    ratios = [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    index = SeriesIndex([(m, 100 - 10 * r, 100) for m, r in enumerate(ratios)])
    spans = [(i.start, i.end) for i in find_incidents(index, Fraction(999, 1000), 0, 15)]
    assert spans == [(1, 7), (13, 14)]


def test_comparison_shows_a_ticket_only_spec_missing_the_short_outage(tmp_path: Path) -> None:
    series = _outage_month()
    a = backtest(_definition(tmp_path), series, OCT_1, OCT_1 + 57_600)
    b = backtest(_definition(tmp_path, TICKETS_ONLY), series, OCT_1, OCT_1 + 57_600)
    diff = compare(a, b)
    assert diff["missed"] == {"a": 0, "b": 1}
    assert diff["incidents"][0]["a_detection_minutes"] == 6


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param("h.csv", "minute,good,total\n10,9,10\n11,10,10\n", id="csv-minutes"),
        pytest.param(
            "h.csv",
            "timestamp,good,total\n1970-01-01T00:10:00Z,9,10\n660,10,10\n",
            id="csv-timestamps",
        ),
        pytest.param("h.json", '[[10, 9, 10], {"minute": 11, "good": 10, "total": 10}]', id="json"),
    ],
)
def test_history_files_read_minutes_or_timestamps(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert load_history(path) == [(10, 9, 10), (11, 10, 10)]


def test_history_file_with_more_good_than_total_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("minute,good,total\n10,11,10\n")
    with pytest.raises(HistoryFileError, match="good <= total"):
        load_history(path)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("backtest")(slo_tools.backtest_command)
    app.command("other")(slo_tools.spec_tests)
    return app


def test_backtest_command_compares_two_specs_from_a_history_file(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    rows = "\n".join(f"{m},{g},{t}" for m, g, t in _outage_month()[13_000:16_000])
    history.write_text("minute,good,total\n" + rows + "\n")
    (tmp_path / "a.yaml").write_text(SPEC.format(name="checkout", alerting="{tiers: default}"))
    (tmp_path / "b.yaml").write_text(SPEC.format(name="checkout", alerting=TICKETS_ONLY))
    args = ["backtest", str(tmp_path / "a.yaml"), "--compare", str(tmp_path / "b.yaml")]
    result = CliRunner().invoke(_cli(), [*args, "--file", str(history), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["pages"] for r in payload["results"]] == [1, 0]
    assert payload["comparison"]["missed"] == {"a": 0, "b": 1}


def test_backtest_command_exits_2_on_an_unreadable_history(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SPEC.format(name="checkout", alerting="{tiers: default}"))
    (tmp_path / "h.csv").write_text("minute,good\n1,2\n")
    args = ["backtest", str(tmp_path / "a.yaml"), "--file", str(tmp_path / "h.csv")]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 2
    assert "h.csv" in result.stderr


def test_backtest_command_reads_the_store_from_the_start_of_the_budget_month(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "sli.db") as store:
        store.add(
            BucketRow("checkout", m, "/checkout", "2xx", "", g, t) for m, g, t in _outage_month()
        )
    (tmp_path / "a.yaml").write_text(SPEC.format(name="checkout", alerting="{tiers: default}"))
    args = ["backtest", str(tmp_path / "a.yaml"), "--store", str(tmp_path / "sli.db"), "--json"]
    window = ["--start", "2026-10-08T00:00:00Z", "--end", "2026-10-20T00:00:00Z"]
    result = CliRunner().invoke(_cli(), [*args, *window])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["results"]
    assert report["pages"] == 1
    assert report["periods"][0]["total"] == 19 * 1440 * 1000  # October 1 to 20
