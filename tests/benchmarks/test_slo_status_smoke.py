"""The status benchmark still runs, and both sides of it return the same totals.

Speed is not asserted here (``make bench`` measures it); the data, the
agreement of store and Prometheus, and the table are, on a quick run.
"""

from __future__ import annotations

import shutil

import pytest
from benchmarks.slo_status import QUICK_DAYS, QUICK_SLOS, STEP_MINUTES, counts, run, tables

STEPS = QUICK_DAYS * 1440 // STEP_MINUTES


def test_counts_cover_every_step_with_a_twenty_percent_outage() -> None:
    rows = counts(3, STEPS)
    assert len(rows) == STEPS
    assert max(total - good for good, total in rows) == rows[0][1] // 5


@pytest.mark.servers
@pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("prometheus") is None,
    reason="prometheus and promtool are not installed",
)
def test_quick_run_gets_the_same_totals_from_the_store_and_prometheus() -> None:
    result = run(quick=True, progress=lambda message: None)
    assert result["store_equals_prometheus"] is True
    assert result["matches_generated"] is True
    assert result["store_rows"] == QUICK_SLOS * STEPS
    assert result["prometheus_per_slo_seconds"] > 0
    assert len(tables(result)) == 1
