import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram

from sloguard.demo.red import MetricsSnapshot, histogram_quantile, read_registry, red_rows

INF = math.inf
SPREAD = [(0.1, 10.0), (0.5, 20.0), (1.0, 30.0), (INF, 30.0)]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, SPREAD, 0.3, id="median-mid-bucket"),
        pytest.param(0.95, SPREAD, 0.925, id="p95-third-bucket"),
        pytest.param(1 / 3, SPREAD, 0.1, id="rank-on-a-bound"),
        pytest.param(0.0, SPREAD, 0.0, id="q-zero"),
        pytest.param(0.5, [(0.2, 4.0), (INF, 4.0)], 0.1, id="first-bucket-from-zero"),
        pytest.param(0.5, [(0.1, 0.0), (0.25, 0.0), (INF, 10.0)], 0.25, id="rank-in-inf-bucket"),
        pytest.param(0.25, [(-1.0, 2.0), (INF, 4.0)], -1.0, id="non-positive-first-bound"),
        pytest.param(0.5, [(0.1, 5.0), (0.2, 3.0), (INF, 6.0)], 0.06, id="torn-counts-monotonic"),
        pytest.param(0.5, [(INF, 30.0), (1.0, 30.0), (0.5, 20.0), (0.1, 10.0)], 0.3, id="unsorted"),
        pytest.param(0.75, [(0.1, 2.0), (0.1, 2.0), (0.2, 8.0), (INF, 8.0)], 0.15, id="dup-bound"),
        pytest.param(1.5, SPREAD, INF, id="q-above-one"),
        pytest.param(-0.5, SPREAD, -INF, id="q-below-zero"),
    ],
)
def test_histogram_quantile_matches_promql(
    q: float, buckets: list[tuple[float, float]], expected: float
) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("q", "buckets"),
    [
        pytest.param(0.5, [], id="no-buckets"),
        pytest.param(0.5, [(0.1, 3.0), (1.0, 5.0)], id="no-inf-bucket"),
        pytest.param(0.5, [(INF, 5.0)], id="only-inf"),
        pytest.param(0.5, [(0.1, 0.0), (INF, 0.0)], id="no-observations"),
        pytest.param(0.0, [(0.1, 0.0), (INF, 4.0)], id="rank-zero-in-empty-bucket"),
        pytest.param(math.nan, SPREAD, id="q-nan"),
    ],
)
def test_histogram_quantile_is_nan_where_promql_is(
    q: float, buckets: list[tuple[float, float]]
) -> None:
    assert math.isnan(histogram_quantile(q, buckets))


def registry_with(observations: dict[tuple[str, str, str], list[float]]) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ("method", "route", "status_class")
    requests = Counter("sloguard_http_requests", "r", labels, registry=registry)
    duration = Histogram(
        "sloguard_http_request_duration_seconds",
        "d",
        labels,
        buckets=(0.1, 0.5, 1.0),
        registry=registry,
    )
    for key, seconds in observations.items():
        for value in seconds:
            requests.labels(*key).inc()
            duration.labels(*key).observe(value)
    return registry


def test_read_registry_sums_buckets_over_status_classes() -> None:
    registry = registry_with(
        {("POST", "/checkout", "2xx"): [0.05, 0.3], ("POST", "/checkout", "5xx"): [0.7]}
    )
    series = read_registry(registry, at=0.0).routes["POST", "/checkout"]
    assert series.requests == {"2xx": 2.0, "5xx": 1.0}
    assert series.buckets == ((0.1, 1.0), (0.5, 2.0), (1.0, 3.0), (INF, 3.0))
    assert series.errors == 1.0


def test_red_rows_cover_only_the_span_between_snapshots() -> None:
    registry = registry_with({("GET", "/products", "2xx"): [0.05] * 10})
    older = read_registry(registry, at=100.0)
    registry_series = registry_with({("GET", "/products", "2xx"): [0.05] * 10 + [0.7] * 10})
    newer = read_registry(registry_series, at=105.0)
    [row] = red_rows(newer, older)
    assert (row.requests, row.rate, row.errors) == (10.0, 2.0, 0.0)
    assert row.p50 == pytest.approx(0.75)
    assert row.p99 == pytest.approx(0.995)


def test_red_rows_report_error_ratio_and_skip_idle_routes() -> None:
    registry = registry_with(
        {("POST", "/checkout", "2xx"): [0.2] * 3, ("POST", "/checkout", "5xx"): [0.2]}
    )
    idle = MetricsSnapshot(at=0.0, routes={})
    snapshot = read_registry(registry, at=2.0)
    [row] = red_rows(snapshot, idle)
    assert row.error_ratio == 0.25
    assert red_rows(snapshot, snapshot) == []


PROMQL_CASES = {
    "spread": SPREAD,
    "torn": [(0.1, 5.0), (0.2, 3.0), (INF, 6.0)],
    "inf_only_rank": [(0.1, 0.0), (0.25, 0.0), (INF, 10.0)],
    "negative": [(-1.0, 2.0), (INF, 4.0)],
    "dense": [(0.005, 3.0), (0.01, 9.0), (0.025, 40.0), (0.05, 41.0), (0.1, 77.0), (INF, 80.0)],
}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_histogram_quantile_agrees_with_prometheus_itself(tmp_path: Path) -> None:
    series, checks = [], []
    for name, buckets in PROMQL_CASES.items():
        for bound, count in buckets:
            le = "+Inf" if bound == INF else repr(bound)
            series.append({"series": f'{name}_bucket{{le="{le}"}}', "values": repr(count)})
        for q in (0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
            value = histogram_quantile(q, buckets)
            if math.isnan(value):
                continue  # promtool cannot compare NaN with NaN; the table above covers it
            expr = f"histogram_quantile({q}, {name}_bucket)"
            checks.append(
                {"expr": expr, "eval_time": "0m", "exp_samples": [{"labels": "{}", "value": value}]}
            )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test = {
        "rule_files": ["rules.yml"],
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    run = subprocess.run(
        ["promtool", "test", "rules", "test.yml"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
