"""The guard's shed layer: refusals are problem+json with Retry-After, by priority."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sloguard.asgi import Guard, guard
from sloguard.settings import Settings


def blocking_app(gate: asyncio.Event, entered: asyncio.Queue[str]) -> Starlette:
    async def slow(request: Request) -> Response:
        await entered.put(request.url.path)
        await gate.wait()
        return PlainTextResponse("done")

    async def fast(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/slow/{n}", slow), Route("/healthz", fast), Route("/fast", fast)]
    )


def shed_settings(**shedding: Any) -> Settings:
    return Settings.model_validate(
        {
            "resilience": {"enabled": True, "shedding": shedding},
            "sli": {"enabled": False},
            "logging": {"configure_root": False},
        }
    )


def client(app: Guard) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_requests_over_the_concurrency_limit_get_shed_101_with_retry_after() -> None:
    asyncio.run(_test_requests_over_the_concurrency_limit_get_shed_101_with_retry_after())


async def _test_requests_over_the_concurrency_limit_get_shed_101_with_retry_after() -> None:
    gate, entered = asyncio.Event(), asyncio.Queue[str]()
    registry = CollectorRegistry()
    app = guard(
        blocking_app(gate, entered),
        shed_settings(max_concurrency=1, shares={"normal": 1.0, "high": 1.0}),
        registry=registry,
    )
    async with client(app) as http:
        first = asyncio.create_task(http.get("/slow/1"))
        await entered.get()
        refused = await http.get("/fast", headers={"x-request-id": "req-shed-1"})
        gate.set()
        assert (await first).status_code == 200
        assert (await http.get("/fast")).status_code == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    body = json.loads(refused.content)
    assert (body["code"], body["request_id"]) == ("SHED_101", "req-shed-1")
    scrape = generate_latest(registry).decode()
    assert 'sloguard_shed_rejected_total{code="SHED_101",priority="normal"} 1.0' in scrape
    app.close()


def test_critical_routes_are_shed_last() -> None:
    asyncio.run(_test_critical_routes_are_shed_last())


async def _test_critical_routes_are_shed_last() -> None:
    gate, entered = asyncio.Event(), asyncio.Queue[str]()
    app = guard(
        blocking_app(gate, entered),
        shed_settings(
            max_concurrency=2,
            priorities={"/healthz": "critical", "/slow/*": "low"},
            default_priority="normal",
        ),
    )
    async with client(app) as http:
        first = asyncio.create_task(http.get("/slow/1"))
        await entered.get()
        low = await http.get("/slow/2")  # low may fill half of 2: one place, taken
        normal = await http.get("/fast")  # normal: floor(2 * 0.8) = 1, taken
        health = await http.get("/healthz")  # critical may use both places
        gate.set()
        await first
    assert (low.status_code, normal.status_code, health.status_code) == (503, 503, 200)
    app.close()


def test_shed_refusals_count_as_server_errors_of_their_route() -> None:
    asyncio.run(_test_shed_refusal_is_recorded_as_the_requests_error_code())


async def _test_shed_refusal_is_recorded_as_the_requests_error_code() -> None:
    gate, entered = asyncio.Event(), asyncio.Queue[str]()
    registry = CollectorRegistry()
    app = guard(blocking_app(gate, entered), shed_settings(max_concurrency=1), registry=registry)
    async with client(app) as http:
        first = asyncio.create_task(http.get("/slow/1"))
        await entered.get()
        await http.get("/slow/2")
        gate.set()
        await first
    scrape = generate_latest(registry).decode()
    assert 'route="/slow/{n}",status_class="5xx"} 1.0' in scrape
    app.close()
