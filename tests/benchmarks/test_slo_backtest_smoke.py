"""The backtest benchmark still runs and its scan really finds the outages it planted.

Speed is not asserted here (``make bench`` measures it); the data and the
counting are, on a quick run and on one SLO's history.
"""

from __future__ import annotations

from benchmarks.slo_backtest import DAYS, LOOKBACK, QUICK_SLOS, START, history, run, tables


def test_history_covers_ninety_days_and_the_lookback_with_outages() -> None:
    rows = history(3)
    assert len(rows) == DAYS * 1440 + LOOKBACK
    assert rows[LOOKBACK][0] == START
    assert max(total - good for _, good, total in rows) >= rows[0][2] * 15 // 100


def test_quick_run_counts_every_bucket_evaluation_and_finds_firings() -> None:
    result = run(quick=True, progress=lambda message: None)
    assert result["bucket_evaluations"] == QUICK_SLOS * DAYS * 1440 * 4
    assert result["firing_intervals"] >= QUICK_SLOS
    assert result["scan_evaluations_per_second"] > 0
    assert len(tables(result)) == 1
