"""Inbound breakers in the guard: a failing route trips, is refused with BRK_503, recovers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sloguard.asgi import Guard, guard
from sloguard.settings import Settings
from tests.harness.servers import RedisServer


class Flaky:
    def __init__(self) -> None:
        self.status = 500
        self.calls = 0

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        return PlainTextResponse("x", status_code=self.status)


def app_with(flaky: Flaky) -> Starlette:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/pay/{n}", flaky.endpoint),
            Route("/other", ok),
            Route("/orders/{n}", flaky.endpoint),
        ]
    )


def settings_with(*breakers: dict[str, Any], redis_url: str | None = None) -> Settings:
    return Settings.model_validate(
        {
            "resilience": {
                "enabled": True,
                "breakers": list(breakers),
                "redis": {"url": redis_url, "sync_interval_s": 0.02},
            },
            "sli": {"enabled": False},
            "logging": {"configure_root": False},
        }
    )


def get_all(app: Guard, *paths: str) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.get(path) for path in paths]

    return asyncio.run(go())


def test_a_route_that_keeps_failing_is_refused_with_brk_503_and_retry_after() -> None:
    flaky = Flaky()
    app = guard(
        app_with(flaky),
        settings_with({"name": "pay", "routes": ["/pay/*"], "consecutive_failures": 3}),
    )
    responses = get_all(app, *["/pay/1"] * 5, "/other")
    assert [r.status_code for r in responses] == [500, 500, 500, 503, 503, 200]
    assert flaky.calls == 3
    refused = responses[3]
    assert refused.headers["retry-after"] == "30"
    assert json.loads(refused.content)["code"] == "BRK_503"
    app.close()


def test_per_route_breakers_trip_independently() -> None:
    flaky = Flaky()
    entry = {"name": "api", "routes": ["*"], "per_route": True, "consecutive_failures": 2}
    app = guard(app_with(flaky), settings_with(entry))
    statuses = [r.status_code for r in get_all(app, "/pay/1", "/pay/2", "/pay/3", "/orders/1")]
    assert statuses == [500, 500, 503, 500]
    app.close()


def test_breaker_state_and_transitions_are_exported_as_metrics() -> None:
    registry = CollectorRegistry()
    entry = {"name": "pay", "routes": ["/pay/*"], "consecutive_failures": 1}
    app = guard(app_with(Flaky()), settings_with(entry), registry=registry)
    get_all(app, "/pay/1", "/pay/2")
    scrape = generate_latest(registry).decode()
    assert 'breaker="pay",state="open"} 1.0' in scrape
    assert 'reason="consecutive_failures"' in scrape
    app.close()


def test_two_instances_sharing_redis_see_each_others_trip(tmp_path: Any) -> None:
    entry = {"name": "shared-pay", "routes": ["/pay/*"], "consecutive_failures": 2}
    with RedisServer(tmp_path).start() as redis:
        first = guard(app_with(Flaky()), settings_with(entry, redis_url=redis.url))
        healthy = Flaky()
        healthy.status = 200
        second = guard(app_with(healthy), settings_with(entry, redis_url=redis.url))
        assert [r.status_code for r in get_all(first, "/pay/1", "/pay/1")] == [500, 500]
        deadline = time.monotonic() + 2.0
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses = [r.status_code for r in get_all(second, "/pay/1")]
            if statuses == [503]:
                break
            time.sleep(0.02)
        assert statuses == [503]
        first.close()
        second.close()
