"""RED figures (rate, errors, duration) read from sloguard's own registry.

The demo shows what sloguard measured, not what the load generator timed:
it snapshots the guard's Prometheus registry, takes the difference of two
snapshots (a window, or the whole run), and turns the histogram buckets of
that difference into p50/p95/p99 the way PromQL's ``histogram_quantile``
does, so the numbers match what a Prometheus server would show for the same
scrape data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

__all__ = [
    "MetricsSnapshot",
    "RedRow",
    "RouteSeries",
    "histogram_quantile",
    "read_registry",
    "red_rows",
]

REQUESTS = "sloguard_http_requests_total"
DURATION_BUCKET = "sloguard_http_request_duration_seconds_bucket"
QUANTILES = (0.5, 0.95, 0.99)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper_bound, count)`` buckets.

    Follows Prometheus' ``bucketQuantile`` for classic histograms: the
    buckets must include ``+Inf``; equal bounds are merged and counts forced
    monotonic; the answer is interpolated linearly inside the bucket holding
    the rank, a rank in the ``+Inf`` bucket gives the highest finite bound,
    and a first bucket with a bound at or below zero gives that bound. NaN
    when there are no observations (or fewer than two buckets).
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    for index in range(1, len(merged)):  # scrapes can tear: counts never go down
        merged[index][1] = max(merged[index][1], merged[index - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    if count == 0:  # rank 0 in an empty bucket: Go's 0/0, which PromQL passes on as NaN
        return math.nan
    return start + (end - start) * (rank / count)


@dataclass(frozen=True, slots=True)
class RouteSeries:
    """One route's counters: requests by status class and its duration buckets."""

    requests: Mapping[str, float]
    buckets: tuple[tuple[float, float], ...]  # cumulative, summed over status classes

    @property
    def total(self) -> float:
        return sum(self.requests.values())

    @property
    def errors(self) -> float:
        return sum(n for cls, n in self.requests.items() if cls.startswith("5"))

    def minus(self, older: RouteSeries | None) -> RouteSeries:
        if older is None:
            return self
        previous = dict(older.buckets)
        return RouteSeries(
            requests={c: n - older.requests.get(c, 0.0) for c, n in self.requests.items()},
            buckets=tuple((le, n - previous.get(le, 0.0)) for le, n in self.buckets),
        )


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The registry's RED series at one moment, keyed by ``(method, route)``."""

    at: float
    routes: Mapping[tuple[str, str], RouteSeries]

    @property
    def total(self) -> float:
        return sum(series.total for series in self.routes.values())

    def minus(self, older: MetricsSnapshot) -> MetricsSnapshot:
        return MetricsSnapshot(
            at=self.at,
            routes={key: s.minus(older.routes.get(key)) for key, s in self.routes.items()},
        )


def read_registry(registry: CollectorRegistry, at: float) -> MetricsSnapshot:
    """Snapshot the RED series in ``registry`` (taken at time ``at``)."""
    requests: dict[tuple[str, str], dict[str, float]] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            labels = sample.labels
            if sample.name == REQUESTS:
                key = (labels.get("method", ""), labels.get("route", ""))
                by_class = requests.setdefault(key, {})
                cls = labels.get("status_class", "")
                by_class[cls] = by_class.get(cls, 0.0) + sample.value
            elif sample.name == DURATION_BUCKET:
                key = (labels.get("method", ""), labels.get("route", ""))
                per_bound = buckets.setdefault(key, {})
                bound = float(labels["le"])
                per_bound[bound] = per_bound.get(bound, 0.0) + sample.value
    return MetricsSnapshot(
        at=at,
        routes={
            key: RouteSeries(
                requests=requests.get(key, {}),
                buckets=tuple(sorted(buckets.get(key, {}).items())),
            )
            for key in requests.keys() | buckets.keys()
        },
    )


@dataclass(frozen=True, slots=True)
class RedRow:
    """One route's rate, errors and duration quantiles over a span of time."""

    method: str
    route: str
    requests: float
    rate: float  # requests per second
    errors: float  # 5xx responses
    p50: float  # seconds; NaN without observations
    p95: float
    p99: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def red_rows(newer: MetricsSnapshot, older: MetricsSnapshot) -> list[RedRow]:
    """RED per route between two snapshots, busiest route first."""
    span = newer.at - older.at
    rows = []
    for (method, route), series in newer.minus(older).routes.items():
        if series.total <= 0:
            continue
        p50, p95, p99 = (histogram_quantile(q, series.buckets) for q in QUANTILES)
        rows.append(
            RedRow(
                method=method,
                route=route,
                requests=series.total,
                rate=series.total / span if span > 0 else 0.0,
                errors=series.errors,
                p50=p50,
                p95=p95,
                p99=p99,
            )
        )
    rows.sort(key=lambda r: (-r.requests, r.route, r.method))
    return rows
