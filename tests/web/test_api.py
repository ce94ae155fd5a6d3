"""The JSON API and /metrics over an evaluated service (httpx ASGITransport, no server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from sloguard.slo._alertstore import AlertStore
from sloguard.slo._service import SLOService
from sloguard.store import SQLiteStore
from sloguard.web import create_app
from tests.slo.test_service import DEFINITION, INCIDENT, incident_rows

FIRING_AT = INCIDENT + timedelta(minutes=8)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[SLOService]:
    path = tmp_path / "sli.db"
    with SQLiteStore(path) as store, AlertStore(path) as alerts:
        store.add(incident_rows())
        yield SLOService([DEFINITION], store, alerts)


def get(app: Starlette, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get(path)

    return asyncio.run(go())


def test_slo_list_shows_budget_burn_rates_and_the_firing_tier(service: SLOService) -> None:
    service.evaluate_once(FIRING_AT)
    [slo] = get(create_app(service), "/api/slos").json()
    assert (slo["name"], slo["objective"], slo["window"]) == ("checkout", "99.9", "rolling 30d")
    assert slo["firing"] == ["page-1h"]
    page = slo["tiers"][0]
    assert page["burn_rates"] == {"1h": "20.0000", "5m": "150.0000"}
    assert page["threshold"] == "14.4000"
    assert page["state"]["phase"] == "firing"
    assert 0 < float(slo["budget_remaining"]) < 1


def test_one_slo_carries_hourly_budget_history(service: SLOService) -> None:
    service.evaluate_once(INCIDENT + timedelta(minutes=90))
    body = get(create_app(service), "/api/slos/checkout").json()
    history = body["budget_history"]
    assert len(history) == 30 * 24 + 1
    assert history[-2] == {"at": INCIDENT.isoformat(), "remaining": "1.000000"}
    assert history[-1]["remaining"] == body["budget_remaining"]


@pytest.mark.parametrize(
    ("evaluate", "name", "error"),
    [
        pytest.param(True, "nope", "unknown SLO", id="unknown"),
        pytest.param(False, "checkout", "not evaluated yet", id="before-first-evaluation"),
    ],
)
def test_missing_slo_is_404(service: SLOService, evaluate: bool, name: str, error: str) -> None:
    if evaluate:
        service.evaluate_once(FIRING_AT)
    response = get(create_app(service), f"/api/slos/{name}")
    assert (response.status_code, response.json()["error"]) == (404, error)


def test_metrics_expose_slo_status_with_low_cardinality_labels(service: SLOService) -> None:
    service.evaluate_once(FIRING_AT)
    text = get(create_app(service), "/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("sloguard_slo_objective", (("slo", "checkout"),))] == 0.999
    assert samples[("sloguard_slo_burn_rate", (("slo", "checkout"), ("window", "5m")))] == 150
    firing = (
        "sloguard_slo_alert_firing",
        (("severity", "page"), ("slo", "checkout"), ("tier", "page-1h")),
    )
    assert samples[firing] == 1
    labels = {k for _, pairs in samples for k, _ in pairs}
    assert labels == {"slo", "window", "tier", "severity"}


def test_app_lifespan_runs_the_evaluation_loop(service: SLOService) -> None:
    app = create_app(service, interval=timedelta(hours=1), clock=lambda: FIRING_AT)

    async def go() -> None:
        async with app.router.lifespan_context(app):
            with anyio.fail_after(10):
                while service.evaluations == 0:
                    await anyio.sleep(0.01)

    asyncio.run(go())
    view = service.view("checkout")
    assert view is not None
    assert [t.result.tier.name for t in view.tiers if t.firing] == ["page-1h"]
