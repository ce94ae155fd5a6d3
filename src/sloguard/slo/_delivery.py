"""Deliver alert notices: a JSON webhook, and Alertmanager's v2 API.

The evaluation loop must keep evaluating when a receiver is down, so nothing
here raises into it: each POST is retried a bounded number of times with
exponential backoff, then the failure is logged and counted in
:class:`DeliveryStats`. The sleep between attempts is injected, so tests run
without waiting.

The webhook receives only changes (firing, resolved). Alertmanager forgets an
alert that is not re-sent (its ``endsAt`` passes), so it also receives every
still-firing alert on each evaluation, with ``endsAt`` a few intervals ahead,
the way Prometheus sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

import httpx

from sloguard.slo._alerting import AlertPhase

__all__ = [
    "AlertNotice",
    "AlertmanagerNotifier",
    "DeliveryStats",
    "Notifier",
    "Retry",
    "WebhookNotifier",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """One tier's alert as delivered: firing (``ends_at`` None) or resolved."""

    slo: str
    service: str
    tier: str
    severity: str
    phase: AlertPhase
    starts_at: datetime
    ends_at: datetime | None
    summary: str
    burn_rates: dict[str, str] = field(default_factory=dict)
    threshold: str | None = None
    generator_url: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "service": self.service,
            "tier": self.tier,
            "severity": self.severity,
            "status": "resolved" if self.phase is AlertPhase.RESOLVED else "firing",
            "starts_at": self.starts_at.isoformat(),
            "ends_at": None if self.ends_at is None else self.ends_at.isoformat(),
            "summary": self.summary,
            "burn_rates": dict(self.burn_rates),
            "threshold": self.threshold,
            "generator_url": self.generator_url,
        }


@dataclass(frozen=True, slots=True)
class Retry:
    """Bounded retries: ``attempts`` in all, waits ``base_s * 2**n`` capped at ``max_s``."""

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 10.0

    def delays(self) -> list[float]:
        return [min(self.base_s * 2**n, self.max_s) for n in range(self.attempts - 1)]


@dataclass(slots=True)
class DeliveryStats:
    """Counters a notifier keeps (exposed by ``/metrics`` and the JSON API)."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0
    last_error: str | None = None


class Notifier(Protocol):
    stats: DeliveryStats

    def notify(self, changed: Sequence[AlertNotice], firing: Sequence[AlertNotice]) -> None:
        """Deliver; ``changed`` are this evaluation's transitions, ``firing`` all firing now."""


class _Poster:
    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None,
        retry: Retry,
        sleep: Callable[[float], None],
        timeout_s: float,
    ) -> None:
        self.url = url
        self.stats = DeliveryStats()
        self._client = client or httpx.Client(timeout=timeout_s)
        self._retry = retry
        self._sleep = sleep

    def _post(self, payload: object) -> bool:
        delays = self._retry.delays()
        for attempt in range(self._retry.attempts):
            try:
                response = self._client.post(self.url, json=payload)
                if response.status_code < 300:
                    self.stats.delivered += 1
                    return True
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                retryable = response.status_code >= 500 or response.status_code == 429
            except httpx.HTTPError as exc:
                error, retryable = f"{type(exc).__name__}: {exc}", True
            self.stats.last_error = error
            if not retryable or attempt == len(delays):
                break
            self.stats.retries += 1
            self._sleep(delays[attempt])
        self.stats.failed += 1
        log.warning("alert delivery to %s failed: %s", self.url, self.stats.last_error)
        return False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WebhookNotifier(_Poster):
    """POSTs ``{"alerts": [notice…]}`` as JSON for each evaluation that changed something."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        retry: Retry = Retry(),
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__(url, client=client, retry=retry, sleep=sleep, timeout_s=timeout_s)

    def notify(self, changed: Sequence[AlertNotice], firing: Sequence[AlertNotice]) -> None:
        if changed:
            self._post({"version": "1", "alerts": [n.as_json() for n in changed]})


class AlertmanagerNotifier(_Poster):
    """``POST /api/v2/alerts`` to one Alertmanager (``base_url`` without the path)."""

    def __init__(
        self,
        base_url: str,
        *,
        alertname: str = "SLOErrorBudgetBurn",
        valid_for: timedelta = timedelta(minutes=5),
        client: httpx.Client | None = None,
        retry: Retry = Retry(),
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 5.0,
    ) -> None:
        url = base_url.rstrip("/") + "/api/v2/alerts"
        super().__init__(url, client=client, retry=retry, sleep=sleep, timeout_s=timeout_s)
        self.alertname = alertname
        self.valid_for = valid_for

    def payload(self, notice: AlertNotice, now: datetime) -> dict[str, Any]:
        ends_at = notice.ends_at if notice.ends_at is not None else now + self.valid_for
        annotations = {"summary": notice.summary}
        if notice.threshold is not None:
            annotations["burn_rate_threshold"] = notice.threshold
        for window, rate in notice.burn_rates.items():
            annotations[f"burn_rate_{window}"] = rate
        alert: dict[str, Any] = {
            "labels": {
                "alertname": self.alertname,
                "slo": notice.slo,
                "severity": notice.severity,
                "tier": notice.tier,
                "service": notice.service,
            },
            "annotations": annotations,
            "startsAt": notice.starts_at.isoformat(),
            "endsAt": ends_at.isoformat(),
        }
        if notice.generator_url:
            alert["generatorURL"] = notice.generator_url
        return alert

    def notify(
        self,
        changed: Sequence[AlertNotice],
        firing: Sequence[AlertNotice],
        *,
        now: datetime | None = None,
    ) -> None:
        seen = {(n.slo, n.tier) for n in changed}
        notices = [*changed, *(n for n in firing if (n.slo, n.tier) not in seen)]
        if notices:
            at = now or datetime.now().astimezone()
            self._post([self.payload(n, at) for n in notices])
