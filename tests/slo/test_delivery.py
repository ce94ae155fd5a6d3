"""Alert delivery: a JSON webhook (MockTransport) and a real Alertmanager's v2 API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sloguard.slo._alerting import AlertPhase
from sloguard.slo._delivery import AlertmanagerNotifier, AlertNotice, Retry, WebhookNotifier
from tests.harness.servers import AlertmanagerServer

NOW = datetime.now(UTC).replace(microsecond=0)


def notice(phase: AlertPhase = AlertPhase.FIRING, ends_at: datetime | None = None) -> AlertNotice:
    return AlertNotice(
        slo="checkout",
        service="shop",
        tier="page-1h",
        severity="page",
        phase=phase,
        starts_at=NOW - timedelta(minutes=3),
        ends_at=ends_at,
        summary="checkout burns its budget",
        burn_rates={"1h": "20.0000", "5m": "150.0000"},
        threshold="14.4000",
        generator_url="http://127.0.0.1:9464/api/slos/checkout",
    )


def scripted(*statuses: int) -> tuple[httpx.Client, list[Any]]:
    bodies: list[Any] = []
    replies = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(next(replies))

    return httpx.Client(transport=httpx.MockTransport(handler)), bodies


def test_webhook_posts_changed_alerts_as_json() -> None:
    client, bodies = scripted(200)
    hook = WebhookNotifier("http://127.0.0.1:1/hook", client=client, sleep=lambda s: None)
    hook.notify([notice()], [])
    alert = bodies[0]["alerts"][0]
    assert (alert["slo"], alert["tier"], alert["status"]) == ("checkout", "page-1h", "firing")
    assert alert["burn_rates"] == {"1h": "20.0000", "5m": "150.0000"}
    assert hook.stats.delivered == 1


def test_webhook_stays_silent_when_nothing_changed() -> None:
    client, bodies = scripted()
    WebhookNotifier("http://127.0.0.1:1/hook", client=client).notify([], [notice()])
    assert bodies == []


@pytest.mark.parametrize(
    ("statuses", "delivered", "failed", "waits"),
    [
        pytest.param((503, 502, 200), 1, 0, [0.5, 1.0], id="recovers-after-two-5xx"),
        pytest.param((500, 500, 500, 500), 0, 1, [0.5, 1.0, 2.0], id="gives-up-after-4"),
        pytest.param((400,), 0, 1, [], id="4xx-is-not-retried"),
    ],
)
def test_webhook_retries_with_bounded_backoff_and_never_raises(
    statuses: tuple[int, ...], delivered: int, failed: int, waits: list[float]
) -> None:
    client, _ = scripted(*statuses)
    slept: list[float] = []
    hook = WebhookNotifier("http://127.0.0.1:1/h", client=client, retry=Retry(), sleep=slept.append)
    hook.notify([notice()], [])
    assert (hook.stats.delivered, hook.stats.failed, slept) == (delivered, failed, waits)


def test_unreachable_receiver_is_counted_not_raised() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    hook = WebhookNotifier("http://127.0.0.1:1/h", client=client, sleep=lambda s: None)
    hook.notify([notice()], [])
    assert hook.stats.failed == 1
    assert hook.stats.retries == 3
    assert hook.stats.last_error is not None
    assert "refused" in hook.stats.last_error


def test_firing_tier_appears_in_alertmanager_with_its_labels(
    alertmanager_server: AlertmanagerServer,
) -> None:
    name = f"SLOBurn{uuid.uuid4().hex[:8]}"
    with AlertmanagerNotifier(alertmanager_server.url, alertname=name) as manager:
        manager.notify([notice()], [], now=NOW)
    [alert] = alertmanager_server.alerts(f'alertname="{name}"')
    assert alert["labels"] == {
        "alertname": name,
        "slo": "checkout",
        "severity": "page",
        "tier": "page-1h",
        "service": "shop",
    }
    assert alert["annotations"]["burn_rate_5m"] == "150.0000"
    assert alert["generatorURL"] == "http://127.0.0.1:9464/api/slos/checkout"
    assert manager.stats.delivered == 1


def test_resolved_tier_gets_ends_at_and_leaves_alertmanagers_active_list(
    alertmanager_server: AlertmanagerServer,
) -> None:
    name = f"SLOBurn{uuid.uuid4().hex[:8]}"
    ended = NOW - timedelta(seconds=1)
    resolved = notice(AlertPhase.RESOLVED, ends_at=ended)
    with AlertmanagerNotifier(alertmanager_server.url, alertname=name) as manager:
        manager.notify([notice()], [], now=NOW)
        assert len(alertmanager_server.alerts(f'alertname="{name}"')) == 1
        assert manager.payload(resolved, NOW)["endsAt"] == ended.isoformat()
        manager.notify([resolved], [], now=NOW)
    assert alertmanager_server.alerts(f'alertname="{name}"') == []


def test_still_firing_alerts_are_resent_to_alertmanager_with_a_future_ends_at() -> None:
    client, bodies = scripted(200)
    manager = AlertmanagerNotifier(
        "http://127.0.0.1:1", client=client, valid_for=timedelta(minutes=2)
    )
    manager.notify([], [notice()], now=NOW)
    [alert] = bodies[0]
    assert alert["endsAt"] == (NOW + timedelta(minutes=2)).isoformat()
    assert alert["startsAt"] == (NOW - timedelta(minutes=3)).isoformat()
