"""The evaluation loop fires and resolves a synthetic incident, and remembers it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sloguard.slo import SLOSpec, definition_from_spec
from sloguard.slo._alerting import AlertPhase
from sloguard.slo._alertstore import AlertStore
from sloguard.slo._delivery import AlertNotice, DeliveryStats
from sloguard.slo._service import SLOService
from sloguard.store import BucketRow, SQLiteStore

INCIDENT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
DEFINITION = definition_from_spec(SLOSpec(name="checkout", objective=99.9), "shop")


def incident_rows(slo: str = "checkout") -> list[BucketRow]:
    """Three quiet days at 1000 requests/min, then 15% errors for 10 minutes, then quiet."""
    start = int(INCIDENT.timestamp()) // 60
    rows = []
    for minute in range(start - 3 * 1440, start + 60):
        bad = 150 if start <= minute < start + 10 else 0
        rows.append(BucketRow(slo, minute, "/pay", "2xx", "", 1000 - bad, 1000))
    return rows


class Recorder:
    def __init__(self) -> None:
        self.stats = DeliveryStats()
        self.calls: list[tuple[list[AlertNotice], list[AlertNotice]]] = []

    def notify(self, changed: Sequence[AlertNotice], firing: Sequence[AlertNotice]) -> None:
        self.calls.append((list(changed), list(firing)))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "sli.db"
    with SQLiteStore(path) as store:
        store.add(incident_rows())
    return path


def phases(service: SLOService) -> dict[str, AlertPhase]:
    view = service.view("checkout")
    assert view is not None
    return {t.result.tier.name: t.state.phase for t in view.tiers}


def test_loop_fires_the_page_during_the_incident_and_resolves_it_after(store_path: Path) -> None:
    recorder = Recorder()
    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        service = SLOService([DEFINITION], store, alerts, [recorder])
        fired = service.evaluate_once(INCIDENT + timedelta(minutes=8))
        still = service.evaluate_once(INCIDENT + timedelta(minutes=9))
        resolved = service.evaluate_once(INCIDENT + timedelta(minutes=20))
    assert [(n.tier, n.phase) for n in fired] == [("page-1h", AlertPhase.FIRING)]
    assert still == []
    assert [n.tier for n in recorder.calls[1][1]] == ["page-1h"]
    assert [(n.tier, n.phase) for n in resolved] == [("page-1h", AlertPhase.RESOLVED)]
    assert resolved[0].ends_at == INCIDENT + timedelta(minutes=20)


def test_quiet_store_fires_nothing(store_path: Path) -> None:
    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        service = SLOService([DEFINITION], store, alerts)
        assert service.evaluate_once(INCIDENT - timedelta(minutes=1)) == []
        assert set(phases(service).values()) == {AlertPhase.INACTIVE}


def test_states_survive_a_restart_and_do_not_fire_twice(store_path: Path) -> None:
    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        SLOService([DEFINITION], store, alerts).evaluate_once(INCIDENT + timedelta(minutes=8))
    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        service = SLOService([DEFINITION], store, alerts)
        assert service.evaluate_once(INCIDENT + timedelta(minutes=9)) == []
        assert phases(service)["page-1h"] is AlertPhase.FIRING
        logged = [(r.tier, r.after) for r in alerts.transitions("checkout")]
    assert logged == [("page-1h", AlertPhase.FIRING)]


def test_a_failing_notifier_does_not_stop_the_evaluation(store_path: Path) -> None:
    class Broken(Recorder):
        def notify(self, changed: Sequence[AlertNotice], firing: Sequence[AlertNotice]) -> None:
            raise RuntimeError("receiver exploded")

    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        service = SLOService([DEFINITION], store, alerts, [Broken()])
        fired = service.evaluate_once(INCIDENT + timedelta(minutes=8))
    assert [n.tier for n in fired] == ["page-1h"]
    assert service.evaluations == 1


def test_budget_history_has_one_point_per_hour_and_drops_after_the_incident(
    store_path: Path,
) -> None:
    with SQLiteStore(store_path) as store, AlertStore(store_path) as alerts:
        service = SLOService([DEFINITION], store, alerts)
        points = service.history("checkout", INCIDENT + timedelta(minutes=90))
    assert len(points) == 30 * 24 + 1
    before, after = points[-2], points[-1]
    assert (before.at, after.at) == (INCIDENT, INCIDENT + timedelta(hours=1))
    assert before.remaining == 1
    assert after.remaining is not None
    assert 0 < after.remaining < 1
