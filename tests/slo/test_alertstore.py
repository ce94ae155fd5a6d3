"""Alert state persists per (SLO, tier) beside the SLI buckets, with a transition log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sloguard.slo._alerting import AlertPhase, AlertState, step
from sloguard.slo._alertstore import AlertStore, AlertStoreError
from sloguard.store import BucketRow, SQLiteStore

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def test_an_unknown_tier_loads_as_inactive(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "sli.db") as alerts:
        assert alerts.load("checkout", "page-1h") == AlertState()
        assert alerts.load_all() == {}


def test_saved_state_reloads_after_reopening_the_file(tmp_path: Path) -> None:
    firing, transition = step(AlertState(), True, NOW)
    with AlertStore(tmp_path / "sli.db") as alerts:
        alerts.save("checkout", "page-1h", firing, transition)
    with AlertStore(tmp_path / "sli.db") as alerts:
        assert alerts.load("checkout", "page-1h") == firing
        assert alerts.load_all() == {("checkout", "page-1h"): firing}


def test_transitions_are_logged_in_order_per_slo(tmp_path: Path) -> None:
    firing, fired = step(AlertState(), True, NOW)
    resolved, cleared = step(firing, False, NOW + timedelta(minutes=7))
    with AlertStore(tmp_path / "sli.db") as alerts:
        alerts.save("checkout", "page-1h", firing, fired)
        alerts.save("search", "ticket-1d", firing, fired)
        alerts.save("checkout", "page-1h", resolved, cleared)
        logged = [(r.after, r.at) for r in alerts.transitions("checkout")]
        assert len(alerts.transitions()) == 3
    assert logged == [(AlertPhase.FIRING, NOW), (AlertPhase.RESOLVED, NOW + timedelta(minutes=7))]


def test_alert_tables_share_the_file_with_the_sli_buckets(tmp_path: Path) -> None:
    path = tmp_path / "sli.db"
    firing, transition = step(AlertState(), True, NOW)
    with AlertStore(path) as alerts:
        alerts.save("checkout", "page-1h", firing, transition)
    with SQLiteStore(path) as store:
        store.add([BucketRow("checkout", 100, "/pay", "2xx", "", 5, 5)])
        assert store.series("checkout", 0, 200) == [(100, 5, 5)]
    with AlertStore(path) as alerts:
        assert alerts.load("checkout", "page-1h").phase is AlertPhase.FIRING


def test_an_unopenable_path_raises_the_package_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(AlertStoreError) as caught:
        AlertStore(tmp_path / "dir.db")
    assert caught.value.path == tmp_path / "dir.db"
