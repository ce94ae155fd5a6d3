"""RED metrics: labels, exposition validity, multi-process exactness."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from sloguard.settings import MetricsSettings
from sloguard.telemetry.metrics import HTTPMetrics, exposition, status_class


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (100, "1xx"),
        (204, "2xx"),
        (301, "3xx"),
        (404, "4xx"),
        (499, "4xx"),
        (503, "5xx"),
        (999, "9xx"),
        (-1, "0xx"),
        (1000, "0xx"),
    ],
)
def test_status_class(status: int, expected: str) -> None:
    assert status_class(status) == expected


def test_one_request_updates_every_instrument() -> None:
    registry = CollectorRegistry()
    metrics = HTTPMetrics(registry, MetricsSettings())
    metrics.started("GET")
    assert registry.get_sample_value("sloguard_http_requests_in_flight", {"method": "GET"}) == 1
    metrics.finished("GET", "/items/{id}", 200, 0.02, 512)
    labels = {"method": "GET", "route": "/items/{id}", "status_class": "2xx"}
    assert registry.get_sample_value("sloguard_http_requests_total", labels) == 1
    assert (
        registry.get_sample_value(
            "sloguard_http_request_duration_seconds_bucket", {**labels, "le": "0.025"}
        )
        == 1
    )
    assert registry.get_sample_value("sloguard_http_requests_in_flight", {"method": "GET"}) == 0
    assert (
        registry.get_sample_value(
            "sloguard_http_response_size_bytes_sum", {"method": "GET", "route": "/items/{id}"}
        )
        == 512
    )


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (make test installs it)"
)
def test_exposition_passes_promtool_check_metrics() -> None:
    registry = CollectorRegistry()
    metrics = HTTPMetrics(registry, MetricsSettings())
    for route, status in [("/a", 200), ("/b/{id}", 503), ("<unmatched>", 404)]:
        metrics.started("GET")
        metrics.finished("GET", route, status, 0.1, 10)
    body, content_type = exposition(registry, None, None)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    assert content_type.startswith("text/plain")


def test_openmetrics_is_served_when_asked_and_parses() -> None:
    registry = CollectorRegistry()
    metrics = HTTPMetrics(registry, MetricsSettings())
    metrics.started("GET")
    metrics.finished("GET", "/a", 200, 0.1, 10)
    body, content_type = exposition(registry, "application/openmetrics-text; version=1.0.0", None)
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (sample,) = [s for s in families["sloguard_http_requests"].samples if s.name.endswith("_total")]
    assert sample.value == 1.0


def _worker(directory: str, requests: int) -> None:
    registry = CollectorRegistry()
    metrics = HTTPMetrics(registry, MetricsSettings(multiprocess_dir=Path(directory)))
    for n in range(requests):
        metrics.started("GET")
        metrics.finished("GET", "/items/{id}", 500 if n % 10 == 0 else 200, 0.01, 100)


def test_multiprocess_mode_sums_every_worker_exactly(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_worker, args=(str(tmp_path), 250)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    body, _ = exposition(CollectorRegistry(), None, tmp_path)
    text = body.decode()
    assert (
        'sloguard_http_requests_total{method="GET",route="/items/{id}",status_class="2xx"} 900.0'
        in text
    )
    assert (
        'sloguard_http_requests_total{method="GET",route="/items/{id}",status_class="5xx"} 100.0'
        in text
    )


def test_multiprocess_scrapes_keep_this_processs_own_collectors(tmp_path: Path) -> None:
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector

    class BreakerState(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield GaugeMetricFamily("sloguard_test_breaker_open", "state read at scrape", value=1)

    spawn = multiprocessing.get_context("spawn")
    worker = spawn.Process(target=_worker, args=(str(tmp_path), 10))
    worker.start()
    worker.join(30)
    registry = CollectorRegistry()
    registry.register(BreakerState())
    text = exposition(registry, None, tmp_path)[0].decode()
    assert "sloguard_test_breaker_open 1.0" in text
    assert text.count("# TYPE sloguard_http_requests_total counter") == 1


def test_histogram_cells_fall_back_to_observe_without_prometheus_internals() -> None:
    from sloguard.telemetry.metrics import _histogram_cells

    observed: list[float] = []

    class PublicOnly:
        def observe(self, amount: float) -> None:
            observed.append(amount)

    total, buckets, bounds = _histogram_cells(PublicOnly())
    total(0.25)
    buckets[0](1)
    assert observed == [0.25]
    assert bounds == (float("inf"),)
