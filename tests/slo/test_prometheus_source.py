"""PrometheusSource against a real Prometheus over a backfilled TSDB.

Four hours of per-minute counters (a 10-minute incident, plus another route's
errors the selector must leave out) are written as OpenMetrics sampled on the
minute and backfilled with ``promtool tsdb create-blocks-from openmetrics``.
Sampled on the minute and queried on minute boundaries, ``increase`` does not
extrapolate, so the counts read back must equal the synthetic ones exactly.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from sloguard.slo._model import RatioSLI, RawType, RequestSLI, RollingWindow, SLODefinition
from sloguard.slo._prometheus import PrometheusSource, SourceError
from tests.harness.servers import PrometheusFactory, promtool

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed"),
]

MINUTES = 240
DEFINITION = SLODefinition(
    name="checkout",
    service="shop",
    objective=Decimal("99.9"),
    sli=RequestSLI(routes=("/checkout",), methods=("POST",)),
    window=RollingWindow(timedelta(hours=1)),
)


def per_minute(k: int) -> tuple[int, int]:
    """(good, total) of the selected requests in minute ``k``: 300 of them, more at half past."""
    total = 300 + 7 * (k % 30)
    bad = total // 5 if 150 <= k < 160 else k % 3
    return total - bad, total


def counters(labels: str, counts: Iterator[int], start: int) -> Iterator[str]:
    value = 0
    for k, count in enumerate([*counts, 0]):
        yield f"sloguard_http_requests_total{{{labels}}} {value} {start + 60 * k}"
        value += count


def openmetrics(start: int) -> str:
    rows = [per_minute(k) for k in range(MINUTES)]
    lines = ["# TYPE sloguard_http_requests counter"]
    good = 'method="POST",route="/checkout",status_class="2xx"'
    lines += counters(good, (g for g, _ in rows), start)
    bad = 'method="POST",route="/checkout",status_class="5xx"'
    lines += counters(bad, (t - g for g, t in rows), start)
    noise = 'method="GET",route="/health",status_class="5xx"'
    lines += counters(noise, (50 for _ in rows), start)
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def tsdb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A backfilled TSDB directory and the history's first unix minute."""
    start = (int(time.time()) // 3600 - 5) * 3600
    workdir = tmp_path_factory.mktemp("prometheus-source")
    (workdir / "history.om.txt").write_text(openmetrics(start))
    done = promtool(
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        str(workdir / "history.om.txt"),
        str(workdir / "data"),
    )
    assert done.returncode == 0, done.stderr
    return workdir / "data", start // 60


@pytest.fixture
def source(
    prometheus_factory: PrometheusFactory, tsdb: tuple[Path, int]
) -> Iterator[PrometheusSource]:
    server = prometheus_factory(extra_args=[f"--storage.tsdb.path={tsdb[0]}"])
    with PrometheusSource(server.url) as reader:
        yield reader


def test_series_returns_the_synthetic_per_minute_counts(
    source: PrometheusSource, tsdb: tuple[Path, int]
) -> None:
    first = tsdb[1]
    expected = [(first + k, *per_minute(k)) for k in range(MINUTES)]
    assert source.series(DEFINITION, first, first + MINUTES) == expected


def test_series_reads_a_range_longer_than_one_query_in_chunks(
    prometheus_factory: PrometheusFactory, tsdb: tuple[Path, int]
) -> None:
    server = prometheus_factory(extra_args=[f"--storage.tsdb.path={tsdb[0]}"])
    first = tsdb[1]
    with PrometheusSource(server.url, max_points=7) as chunked:
        rows = chunked.series(DEFINITION, first + 100, first + 170)
    assert rows == [(first + k, *per_minute(k)) for k in range(100, 170)]


@pytest.mark.parametrize("end", [60, 155, 240], ids=["first-hour", "mid-incident", "last-hour"])
def test_instant_status_counts_the_window_ending_at_the_given_minute(
    source: PrometheusSource, tsdb: tuple[Path, int], end: int
) -> None:
    window = [per_minute(k) for k in range(end - 60, end)]
    expected = (sum(g for g, _ in window), sum(t for _, t in window))
    assert source.instant_status(DEFINITION, tsdb[1] + end) == expected


def test_a_promql_error_is_a_source_error_naming_the_query(source: PrometheusSource) -> None:
    broken = SLODefinition(
        name="broken",
        service="shop",
        objective=Decimal("99"),
        sli=RatioSLI(total="sum(rate(x[{{.window}}]) by (", bad="sum(rate(y[{{.window}}]))"),
    )
    with pytest.raises(SourceError, match=r"HTTP 400: bad_data.*query_range.*sum\(rate\(x") as info:
        source.series(broken, 0, 10)
    assert "sum(rate(x[60s]) by (" in info.value.query


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_prometheus_is_a_source_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with PrometheusSource(url, timeout_s=2) as reader, pytest.raises(SourceError) as info:
        reader.instant_status(DEFINITION, 29_000_000)
    assert info.value.url == f"{url}/api/v1/query"
    assert "unreachable" in str(info.value)


def test_a_non_prometheus_answer_is_a_source_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway"))
    with (
        httpx.Client(transport=transport) as client,
        pytest.raises(SourceError, match="HTTP 502: bad gateway"),
    ):
        PrometheusSource("http://127.0.0.1:9", client=client).instant_status(DEFINITION, 1)


def test_a_raw_ratio_sli_cannot_be_read_as_counts() -> None:
    raw = SLODefinition(
        name="raw",
        service="shop",
        objective=Decimal("99"),
        sli=RatioSLI(raw="avg(up)", raw_type=RawType.SUCCESS),
    )
    with (
        PrometheusSource("http://127.0.0.1:9") as reader,
        pytest.raises(SourceError, match="raw-ratio"),
    ):
        reader.instant_status(raw, 1)
