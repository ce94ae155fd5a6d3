"""The observe layer's fast paths give what the general paths give."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from sloguard.asgi import _observer
from sloguard.context import new_request_id
from sloguard.settings import MetricsSettings
from sloguard.telemetry.logging import JsonFormatter
from sloguard.telemetry.metrics import HTTPMetrics
from tests.asgi.conftest import TRACEPARENT_FIXTURE, Harness

REQUESTS = [
    pytest.param("/items/1", {}, id="plain"),
    pytest.param(
        "/items/2?page=2&token=hunter2",
        {"referer": "https://shop.test/", "authorization": "Bearer abcdefghijkl"},
        id="redacted-query-and-headers",
    ),
    pytest.param("/items/3", {"traceparent": TRACEPARENT_FIXTURE}, id="continued-trace"),
    pytest.param("/boom", {}, id="exception"),
    pytest.param("/fail", {}, id="error-code"),
    pytest.param(
        "/nowhere/ü", {"user-agent": "curl/8 \xfc".encode("latin-1")}, id="unmatched-unicode"
    ),
]
_IDS = re.compile(r'"(trace_id|span_id)":"[0-9a-f]+"')


def access_logger() -> tuple[str, io.StringIO]:
    """A fresh non-propagating access logger with one JSON handler.

    Made inside the test, so pytest's capture handlers (attached to the
    non-propagating loggers that exist when a test starts) stay off it.
    """
    name = f"tests.access.{uuid.uuid4().hex}"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(static_fields={"service": "shop"}))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return name, stream


def frozen_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "perf_counter", lambda: 100.0)
    monkeypatch.setattr(time, "time", lambda: 1_717_171_717.5)
    monkeypatch.setattr(time, "time_ns", lambda: 1_717_171_717_500_000_000)


def spy_direct(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each access line's direct attempt answered."""
    answers: list[bool] = []
    real = _observer.log_direct

    def spied(*args: Any) -> bool:
        answers.append(real(*args))
        return answers[-1]

    monkeypatch.setattr(_observer, "log_direct", spied)
    return answers


def get(harness: Harness, path: str, headers: dict[str, Any]) -> None:
    try:
        harness.get(path, headers={"x-request-id": "req-fast-1", **headers})
    except RuntimeError as exc:  # /boom's, re-raised by the test transport
        assert str(exc) == "boom"  # noqa: PT017


@pytest.mark.parametrize(("path", "headers"), REQUESTS)
def test_direct_access_line_is_the_logged_line_byte_for_byte(
    make_harness: Callable[..., Harness],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    headers: dict[str, Any],
) -> None:
    name, stream = access_logger()
    harness = make_harness(
        logging={"access_logger": name, "logged_headers": ["referer", "authorization"]}
    )
    frozen_clocks(monkeypatch)
    answers = spy_direct(monkeypatch)
    get(harness, path, headers)  # the direct line
    logging.getLogger(name).handlers[0].addFilter(lambda record: True)  # forces the record
    get(harness, path, headers)
    direct, logged = stream.getvalue().splitlines()
    assert answers == [True, False]
    assert _IDS.sub(r'"\1":"-"', direct) == _IDS.sub(r'"\1":"-"', logged)
    assert "hunter2" not in direct
    assert "abcdefghijkl" not in direct


def test_direct_access_line_carries_the_server_spans_ids(
    make_harness: Callable[..., Harness],
) -> None:
    name, stream = access_logger()
    harness = make_harness(logging={"access_logger": name})
    harness.get("/items/1")
    (span,) = harness.spans()
    line: dict[str, Any] = json.loads(stream.getvalue())
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")
    assert line["route"] == "/items/{item_id}"


def test_direct_access_line_without_tracing_has_the_request_id_only(
    make_harness: Callable[..., Harness],
) -> None:
    name, stream = access_logger()
    harness = make_harness(logging={"access_logger": name}, tracing={"enabled": False})
    response = harness.get("/items/1")
    line: dict[str, Any] = json.loads(stream.getvalue())
    assert line["request_id"] == response.headers["x-request-id"]
    assert "trace_id" not in line


@pytest.mark.parametrize(
    ("duration_s", "size"),
    [
        pytest.param(0.005, 100, id="on-a-bound"),
        pytest.param(0.0051, 101, id="just-above-a-bound"),
        pytest.param(0.0, 0, id="zero"),
        pytest.param(99.0, 10**9, id="above-every-finite-bound"),
    ],
)
def test_histogram_cells_match_observe(duration_s: float, size: int) -> None:
    settings = MetricsSettings()
    metrics = HTTPMetrics(CollectorRegistry(), settings)
    reference = CollectorRegistry()
    durations = Histogram("d", "d", buckets=settings.duration_buckets, registry=reference)
    sizes = Histogram("s", "s", buckets=settings.size_buckets, registry=reference)
    metrics.started("GET")
    metrics.finished("GET", "/r", 200, duration_s, size)
    durations.observe(duration_s)
    sizes.observe(size)
    ours = metrics.registry.collect()
    buckets = {
        s.labels["le"]: s.value for m in ours for s in m.samples if s.name.endswith("_bucket")
    }
    theirs = {
        s.labels["le"]: s.value
        for m in reference.collect()
        for s in m.samples
        if s.name.endswith("_bucket")
    }
    assert buckets == theirs


def test_request_ids_are_unique_across_threads() -> None:
    found: list[list[str]] = [[] for _ in range(4)]

    def mint(into: list[str]) -> None:
        into.extend(new_request_id() for _ in range(5_000))

    threads = [threading.Thread(target=mint, args=(ids,)) for ids in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in found for i in ids]
    assert len(set(every)) == len(every) == 20_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in every)
