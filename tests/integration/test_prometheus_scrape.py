"""A real Prometheus scraping the guarded demo shop sees exactly the app's counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.servers import ScrapeConfig
from tests.integration.conftest import uvicorn_app

pytestmark = pytest.mark.timeout(120)

PLAN = [
    ("GET", "/products", 40),
    ("GET", "/products/1", 30),
    ("POST", "/checkout", 40),
    ("GET", "/nope", 10),
]


async def drive(base: str) -> dict[tuple[str, str], int]:
    answered: dict[tuple[str, str], int] = {}
    async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
        for method, path, times in PLAN:
            responses = await asyncio.gather(
                *(client.request(method, path, json={}) for _ in range(times))
            )
            for response in responses:
                key = (method, f"{response.status_code // 100}xx")
                answered[key] = answered.get(key, 0) + 1
    return answered


def app_counts(body: str) -> dict[tuple[str, str, str], float]:
    (family,) = [
        f for f in text_string_to_metric_families(body) if f.name == "sloguard_http_requests"
    ]
    return {
        (s.labels["method"], s.labels["route"], s.labels["status_class"]): s.value
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_prometheus_query_results_equal_the_apps_own_counts(
    prometheus_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = {
        "SLOGUARD_SLI__STORE_PATH": str(tmp_path / "sli.db"),
        "SLOGUARD_LOGGING__ACCESS_LOG": "false",
    }
    with uvicorn_app("app_shop", env, ready_path="/healthz") as shop:
        prometheus = prometheus_factory([ScrapeConfig("shop", [shop.url.removeprefix("http://")])])
        answered = asyncio.run(drive(shop.url))
        own = app_counts(httpx.get(f"{shop.url}/metrics", trust_env=False).text)
        at = prometheus.wait_for_scrape("shop")
        scraped = {
            (s.labels["method"], s.labels["route"], s.labels["status_class"]): s.value
            for s in prometheus.query('sloguard_http_requests_total{job="shop"}', time=at)
        }
    requests_sent = sum(times for _, _, times in PLAN) + 1  # + the readiness probe on /healthz
    assert sum(own.values()) == requests_sent
    assert scraped == own
    assert scraped[("GET", "<unmatched>", "4xx")] == 10
    assert scraped[("POST", "/checkout", "5xx")] == answered[("POST", "5xx")]
