"""Good/total counts of an SLO read from Prometheus over its HTTP API.

The engine judges integer counts; a Prometheus-sourced SLO has its counts in
counters. This module asks Prometheus for them with the *same* PromQL the rule
generator writes (:mod:`sloguard.slo._rules` builds the bad and total rate
expressions; nothing here builds selectors), turned into counts:
``rate(x[w]) * seconds(w)`` is exactly ``increase(x[w])`` (Prometheus computes
rate as increase divided by the range), so each query is an ``increase``.

* :meth:`PrometheusSource.series`: per-minute ``(minute, good, total)`` from a
  range query (step 60 s) of the 1-minute increase at each minute's end, in
  chunks of at most ``max_points`` steps (Prometheus refuses more than 11,000).
* :meth:`PrometheusSource.instant_status`: ``(good, total)`` over the SLO's
  window from one instant query (a calendar window is read as its nominal
  rolling length, as the rules do).

Counts are approximate in general: ``increase`` extrapolates when the samples
do not cover the range (a scrape interval that does not divide the range, a
series that starts inside it at a non-zero value), and a counter's first
sample's value is never counted. With counters sampled on the minute and
queried at minute boundaries there is no extrapolation and the counts are
exact. Each count is rounded to the nearest integer (ties to even); bad is
clamped to ``[0, total]``, and good is ``total - bad``. Minutes with no
events are left out, as the store leaves them out.

Every failure (connection, HTTP status, a non-JSON body, a PromQL error)
becomes a :class:`SourceError` naming the URL and the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sloguard.settings._model import MetricsSettings
from sloguard.slo import _model as model
from sloguard.slo._rules import (
    RuleGenerationError,
    UnsupportedSLI,
    _bad_and_total,
    _check,
    nominal_period,
)

__all__ = ["MAX_POINTS", "PrometheusSource", "SourceError", "count_queries"]

MAX_POINTS = 10_000
_PARTS = ("bad", "total")


class SourceError(Exception):
    """Prometheus could not answer: unreachable, an HTTP error, or a PromQL error."""

    def __init__(self, message: str, *, url: str, query: str) -> None:
        super().__init__(f"{message} (GET {url}, query {query!r})")
        self.url = url
        self.query = query


def _duration(window: timedelta) -> str:
    return f"{int(window.total_seconds())}s"


def count_queries(
    definition: model.SLODefinition, window: timedelta, *, duration_buckets: Sequence[float]
) -> str:
    """One PromQL query for the bad and total event counts over ``window``, labelled ``part``.

    RuleGenerationError (or its UnsupportedSLI) when the SLI has no PromQL counts.
    """
    sli = _check(definition)
    if isinstance(sli, model.RatioSLI) and sli.total is None:
        raise UnsupportedSLI("a raw-ratio SLI has no event counts")
    bad, total = _bad_and_total(sli, _duration(window), duration_buckets)
    seconds = int(window.total_seconds())
    labelled = [
        f'label_replace(({expr}) * {seconds}, "part", "{part}", "", "")'
        for part, expr in zip(_PARTS, (bad, total), strict=True)
    ]
    return " or ".join(labelled)


def _counts(parts: dict[str, float]) -> tuple[int, int]:
    total = max(0, round(parts.get("total", 0.0)))
    bad = min(total, max(0, round(parts.get("bad", 0.0))))
    return total - bad, total


def _unix_seconds(at: datetime | int) -> int:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return int(at.timestamp())
    return at * 60


class PrometheusSource:
    """Reads SLO counts from the Prometheus at ``base_url`` (``http://127.0.0.1:9090``)."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10,
        duration_buckets: Sequence[float] | None = None,
        max_points: int = MAX_POINTS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout_s)
        self._timeout = timeout_s
        self._buckets = tuple(
            MetricsSettings().duration_buckets if duration_buckets is None else duration_buckets
        )
        self._max_points = max_points

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def series(
        self, definition: model.SLODefinition, start_minute: int, end_minute: int
    ) -> list[tuple[int, int, int]]:
        """``(minute, good, total)`` for each minute in ``[start, end)`` that had events."""
        query = self._query(definition, timedelta(minutes=1))
        rows: list[tuple[int, int, int]] = []
        first = start_minute + 1  # the increase over minute m is read at the end of m
        while first <= end_minute:
            last = min(end_minute, first + self._max_points - 1)
            params = {"start": first * 60, "end": last * 60, "step": 60}
            by_minute: dict[int, dict[str, float]] = {}
            for part, points in self._results("query_range", query, params, "values"):
                for stamp, value in points:
                    by_minute.setdefault(int(float(stamp)) // 60 - 1, {})[part] = float(value)
            for minute in sorted(by_minute):
                good, total = _counts(by_minute[minute])
                if total:
                    rows.append((minute, good, total))
            first = last + 1
        return rows

    def instant_status(
        self, definition: model.SLODefinition, at: datetime | int
    ) -> tuple[int, int]:
        """``(good, total)`` over the SLO's window ending at ``at`` (a datetime or unix minute)."""
        window = nominal_period(definition.window)
        query = self._query(definition, window)
        parts = {
            part: float(value[1])
            for part, value in self._results("query", query, {"time": _unix_seconds(at)}, "value")
        }
        return _counts(parts)

    def _query(self, definition: model.SLODefinition, window: timedelta) -> str:
        try:
            return count_queries(definition, window, duration_buckets=self._buckets)
        except RuleGenerationError as error:
            raise SourceError(
                f"SLO {definition.name!r} cannot be read from Prometheus: {error}",
                url=self.base_url,
                query="",
            ) from error

    def _results(
        self, endpoint: str, query: str, params: dict[str, Any], key: str
    ) -> list[tuple[str, Any]]:
        """``(part label, value or values)`` of each result series of one API call."""
        url = f"{self.base_url}/api/v1/{endpoint}"
        try:
            response = self._client.get(
                url, params={"query": query, **params}, timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise SourceError(
                f"Prometheus is unreachable: {error}", url=url, query=query
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = (
                f"{body.get('errorType')}: {body.get('error')}"
                if isinstance(body, dict)
                else response.text[:200]
            )
            raise SourceError(
                f"Prometheus answered HTTP {response.status_code}: {detail}", url=url, query=query
            )
        try:
            return [(r["metric"].get("part", ""), r[key]) for r in body["data"]["result"]]
        except (KeyError, TypeError, AttributeError) as error:
            raise SourceError(
                f"unexpected Prometheus answer: {error!r}", url=url, query=query
            ) from error
