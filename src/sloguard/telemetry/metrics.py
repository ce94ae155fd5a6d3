"""RED metrics for HTTP servers with prometheus_client.

Series (labels kept bounded: the route is a template or ``<unmatched>``, the
status is a class):

* ``sloguard_http_requests_total{method,route,status_class}``
* ``sloguard_http_request_duration_seconds{method,route,status_class}`` (histogram)
* ``sloguard_http_requests_in_flight{method}``
* ``sloguard_http_response_size_bytes{method,route}`` (histogram)

Multi-process servers (``uvicorn --workers``, ``gunicorn -w``) keep one
process's counters invisible to the others, so a scrape of one worker would
see a fraction. With ``metrics.multiprocess_dir`` (or ``PROMETHEUS_MULTIPROC_DIR``)
set, prometheus_client's multiprocess mode writes every worker's values to
files in that directory, and :func:`exposition` sums them: the numbers are
exact whichever worker answers the scrape. The directory must be empty when
the server starts (documented in docs/observe.md).

Label children are cached per label tuple: ``labels()`` takes a lock and
builds a key on every call, the cache makes the per-request cost a dict hit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    values,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from sloguard.settings import MetricsSettings

__all__ = ["HTTPMetrics", "exposition", "multiprocess_dir", "status_class"]

_STATUS_CLASSES = tuple(f"{n}xx" for n in range(10))
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_CHILD_CACHE_LIMIT = 10_000


def status_class(status: int) -> str:
    """``"2xx"`` for 204; out-of-range codes give ``"0xx"`` (never raises)."""
    index = status // 100
    return _STATUS_CLASSES[index] if 0 <= index < 10 else "0xx"


def multiprocess_dir(settings: MetricsSettings) -> Path | None:
    """The multiprocess directory in force, switching prometheus_client to it.

    Settings win over the environment; setting the variable too makes child
    processes (workers spawned later) follow.
    """
    if settings.multiprocess_dir is not None:
        path = settings.multiprocess_dir
        path.mkdir(parents=True, exist_ok=True)
        if os.environ.get(_MULTIPROC_ENV) != str(path):
            os.environ[_MULTIPROC_ENV] = str(path)
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        return path
    env = os.environ.get(_MULTIPROC_ENV)
    return Path(env) if env else None


class HTTPMetrics:
    """The RED instruments, registered in one registry."""

    def __init__(self, registry: CollectorRegistry, settings: MetricsSettings) -> None:
        self.registry = registry
        self.multiprocess_dir = multiprocess_dir(settings)
        self.requests = Counter(
            "sloguard_http_requests",
            "HTTP requests served, by method, route template and status class.",
            ("method", "route", "status_class"),
            registry=registry,
        )
        self.duration = Histogram(
            "sloguard_http_request_duration_seconds",
            "Time from the first byte of the request to the last byte of the response.",
            ("method", "route", "status_class"),
            buckets=settings.duration_buckets,
            registry=registry,
        )
        self.in_flight = Gauge(
            "sloguard_http_requests_in_flight",
            "HTTP requests being served.",
            ("method",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.response_size = Histogram(
            "sloguard_http_response_size_bytes",
            "Response body size in bytes.",
            ("method", "route"),
            buckets=settings.size_buckets,
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram, Histogram]] = {}
        self._in_flight: dict[str, Gauge] = {}

    def started(self, method: str) -> None:
        gauge = self._in_flight.get(method)
        if gauge is None:
            gauge = self._in_flight[method] = self.in_flight.labels(method)
        gauge.inc()

    def finished(self, method: str, route: str, status: int, duration_s: float, size: int) -> None:
        key = (method, route, status_class(status))
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key),
                self.duration.labels(*key),
                self.response_size.labels(method, route),
            )
            if len(self._children) < _CHILD_CACHE_LIMIT:
                self._children[key] = children
        counter, duration, size_histogram = children
        counter.inc()
        duration.observe(duration_s)
        size_histogram.observe(size)
        self._in_flight[method].dec()

    def mark_process_dead(self) -> None:
        """Drop this process's live gauges (multiprocess mode) at shutdown."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), str(self.multiprocess_dir)
            )


def exposition(
    registry: CollectorRegistry, accept: str | None, multiprocess_path: Path | None
) -> tuple[bytes, str]:
    """Body and content type for a scrape, honouring ``Accept`` (OpenMetrics)."""
    encoder, content_type = choose_encoder(accept or "")
    if multiprocess_path is None:
        return encoder(registry), content_type
    # every worker's counters, merged from the files, and next to them the
    # families only this process knows (custom collectors reading state at
    # scrape time: breakers, the shedder, the auth policy, asyncio tasks); a
    # family the files already have is left out, so nothing is counted twice
    shared = list(
        multiprocess.MultiProcessCollector(None, path=str(multiprocess_path)).collect()  # type: ignore[no-untyped-call]
    )
    names = {family.name for family in shared}
    local = [f for f in registry.collect() if f.name not in names and f.samples]
    merged = CollectorRegistry()
    merged.register(_Families([*shared, *local]))
    return encoder(merged), content_type


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
