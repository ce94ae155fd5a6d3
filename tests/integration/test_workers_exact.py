"""Exactness across worker processes: SLI totals and metrics equal what was served."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sloguard.store import SQLiteStore
from tests.harness.processes import free_port, run_server
from tests.integration.conftest import REPO, uvicorn_app

pytestmark = pytest.mark.timeout(120)

REQUESTS = 2000


async def hammer(base: str, total: int) -> int:
    limits = httpx.Limits(max_connections=32)
    ok = 0
    async with httpx.AsyncClient(base_url=base, trust_env=False, limits=limits) as client:
        for start in range(0, total, 200):
            batch = [
                client.get(f"/products/{n % 7 + 1}") for n in range(start, min(total, start + 200))
            ]
            ok += sum(r.status_code == 200 for r in await asyncio.gather(*batch))
    return ok


def test_four_uvicorn_workers_store_exactly_n_requests(tmp_path: Path) -> None:
    store_path = tmp_path / "sli.db"
    env = {
        "SLOGUARD_SLI__STORE_PATH": str(store_path),
        "SLOGUARD_SLI__FLUSH_INTERVAL_S": "60",  # nothing flushes until shutdown: the stop must
        "SLOGUARD_METRICS__MULTIPROCESS_DIR": str(tmp_path / "prom"),
        "SLOGUARD_LOGGING__ACCESS_LOG": "false",
    }
    with uvicorn_app("app_shop", env, workers=4, ready_path="/metrics") as shop:
        served = asyncio.run(hammer(shop.url, REQUESTS))
        body = httpx.get(f"{shop.url}/metrics", trust_env=False).text
        assert shop.stop(signal.SIGTERM, timeout=30) == 0
    assert served == REQUESTS
    families = {f.name: f for f in text_string_to_metric_families(body)}
    counted = sum(
        s.value
        for s in families["sloguard_http_requests"].samples
        if s.name.endswith("_total") and s.labels["route"] == "/products/{product_id}"
    )
    assert counted == REQUESTS
    store = SQLiteStore(store_path)
    good, total = store.totals("shop-availability", 0, 2**40)
    store.close()
    assert total >= REQUESTS  # plus the /metrics and readiness requests the SLO also covers
    route_rows = store_rows(store_path)
    assert route_rows == REQUESTS


def store_rows(path: Path) -> int:
    store = SQLiteStore(path)
    try:
        rows = store.breakdown("shop-availability", 0, 2**40, by=("route",))
    finally:
        store.close()
    return sum(total for dims, _, total in rows if dims == ("/products/{product_id}",))


def test_gunicorn_preload_workers_count_each_request_once(tmp_path: Path) -> None:
    """--preload builds the guard in the master, then forks: nothing may count twice."""
    store_path = tmp_path / "sli.db"
    env = {
        "SLOGUARD_SLI__STORE_PATH": str(store_path),
        "SLOGUARD_SLI__FLUSH_INTERVAL_S": "0.5",
        "SLOGUARD_METRICS__MULTIPROCESS_DIR": str(tmp_path / "prom"),
        "SLOGUARD_LOGGING__ACCESS_LOG": "false",
    }
    port = free_port()
    cmd = [
        "gunicorn",
        "--preload",
        "-w",
        "4",
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(REPO),
        "tests.integration.app_flask:app",
    ]
    with run_server(cmd, port=port, env=env, ready_path="/metrics", cwd=REPO, timeout=30) as shop:
        served = asyncio.run(hammer(shop.url, 1000))
        body = httpx.get(f"{shop.url}/metrics", trust_env=False).text
        shop.stop(signal.SIGTERM, timeout=30)
    assert served == 1000
    families = {f.name: f for f in text_string_to_metric_families(body)}
    counted = sum(
        s.value
        for s in families["sloguard_http_requests"].samples
        if s.name.endswith("_total") and s.labels["route"] == "/products/{product_id:int}"
    )
    assert counted == 1000
    store = SQLiteStore(store_path)
    try:
        rows = store.breakdown("flask-availability", 0, 2**40, by=("route",))
    finally:
        store.close()
    assert {dims: total for dims, _, total in rows}[("/products/{product_id:int}",)] == 1000
