"""Rate limits in the guard: 429 problem+json with Retry-After and RateLimit headers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sloguard.asgi import Guard, guard
from sloguard.settings import Settings
from tests.harness.servers import RedisServer

SECRET = "s" * 48


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok")


def shop() -> Starlette:
    return Starlette(
        routes=[Route("/items/{n}", ok, methods=["GET", "POST"]), Route("/healthz", ok)]
    )


def settings_with(*limits: dict[str, Any], **resilience: Any) -> Settings:
    return Settings.model_validate(
        {
            "resilience": {"enabled": True, "rate_limits": list(limits), **resilience},
            "sli": {"enabled": False},
            "logging": {"configure_root": False},
        }
    )


def send_all(
    app: Guard, requests: list[tuple[str, str, dict[str, str]]], client: str = "10.0.0.1"
) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(client, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.request(m, p, headers=h) for m, p, h in requests]

    return asyncio.run(go())


def gets(path: str, n: int, **headers: str) -> list[tuple[str, str, dict[str, str]]]:
    return [("GET", path, dict(headers))] * n


def test_requests_over_the_limit_get_rate_429_with_retry_after_and_policy_headers() -> None:
    guarded = guard(shop(), settings_with({"name": "per-ip", "limit": 3, "period_s": 60}))
    responses = send_all(guarded, gets("/items/1", 4, **{"x-request-id": "req-rl"}))
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["ratelimit-policy"] == '"per-ip";q=3;w=60'
    assert responses[0].headers["ratelimit"] == '"per-ip";r=2;t=20'
    refused = responses[3]
    assert refused.headers["retry-after"] == "20"
    body = json.loads(refused.content)
    assert (body["code"], body["request_id"]) == ("RATE_429", "req-rl")
    assert body["violated-policies"] == ["per-ip"]
    guarded.close()


def test_forwarded_for_is_not_believed_unless_proxies_are_trusted() -> None:
    limit = {"name": "per-ip", "limit": 1, "period_s": 60}
    spoofing = [("GET", "/items/1", {"x-forwarded-for": f"198.51.100.{i}"}) for i in range(3)]
    untrusting = guard(shop(), settings_with(limit))
    assert [r.status_code for r in send_all(untrusting, spoofing)] == [200, 429, 429]
    trusting = guard(shop(), settings_with(limit, client_ip={"trusted_hops": 1}))
    assert [r.status_code for r in send_all(trusting, spoofing)] == [200, 200, 200]
    untrusting.close()
    trusting.close()


def test_a_limit_applies_only_to_its_routes_and_methods() -> None:
    limit = {"name": "writes", "limit": 1, "routes": ["/items/*"], "methods": ["POST"]}
    guarded = guard(shop(), settings_with(limit))
    requests = [("POST", "/items/1", {}), ("GET", "/items/1", {}), ("POST", "/items/2", {})]
    requests += gets("/healthz", 2)
    assert [r.status_code for r in send_all(guarded, requests)] == [200, 200, 429, 200, 200]
    guarded.close()


def test_a_hot_key_gets_its_own_limit() -> None:
    limit = {"name": "per-ip", "limit": 1, "overrides": {"10.0.0.9": 3}}
    guarded = guard(shop(), settings_with(limit))
    assert [r.status_code for r in send_all(guarded, gets("/healthz", 4), "10.0.0.9")] == [
        200,
        200,
        200,
        429,
    ]
    guarded.close()


def test_principal_limits_run_after_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JWT_SECRET", SECRET)
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nroles:\n  user: {permissions: ['GET /items/**']}\n")
    settings = Settings.model_validate(
        {
            "resilience": {
                "enabled": True,
                "rate_limits": [{"name": "per-user", "key": "principal", "limit": 2}],
            },
            "auth": {
                "enabled": True,
                "static_keys": [{"env": "TEST_JWT_SECRET", "algorithms": ["HS256"]}],
                "policy": {"file": str(policy), "poll_interval_s": 60},
            },
            "sli": {"enabled": False},
            "logging": {"configure_root": False},
        }
    )
    now = int(time.time())

    def bearer(sub: str) -> dict[str, str]:
        claims = {"sub": sub, "roles": ["user"], "iat": now, "exp": now + 300}
        return {"authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}

    guarded = guard(shop(), settings)
    requests = [("GET", "/items/1", bearer("alice"))] * 3 + [("GET", "/items/1", bearer("bob"))]
    assert [r.status_code for r in send_all(guarded, requests)] == [200, 200, 429, 200]
    guarded.close()


def test_a_redis_outage_fails_open_or_closed_per_limit(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    open_limit = {"name": "open", "limit": 100, "routes": ["/healthz"]}
    closed_limit = {"name": "closed", "limit": 100, "routes": ["/items/*"], "fail_closed": True}

    async def go(redis: RedisServer) -> list[int]:
        settings = settings_with(
            open_limit, closed_limit, redis={"url": redis.url, "timeout_s": 1.0}
        )
        guarded = guard(shop(), settings, registry=registry)
        transport = httpx.ASGITransport(app=guarded, client=("10.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            statuses = [(await http.get("/items/1")).status_code]
            redis.stop()
            for path in ("/healthz", "/healthz", "/items/1"):
                statuses.append((await http.get(path)).status_code)
        assert guarded.resilience is not None
        await guarded.resilience.aclose()
        return statuses

    with RedisServer(tmp_path).start() as redis:
        assert asyncio.run(go(redis)) == [200, 200, 200, 503]
    degraded = registry.get_sample_value(
        "sloguard_rate_limit_decisions_total", {"limit": "open", "result": "degraded"}
    )
    assert degraded == 2.0


def test_paths_without_a_template_are_matched_by_path_and_skip_route_keys() -> None:
    by_route = {"name": "per-route", "key": "route", "limit": 1}
    by_path = {"name": "legacy", "limit": 1, "routes": ["/legacy/*"]}
    guarded = guard(shop(), settings_with(by_route, by_path))
    statuses = [
        r.status_code for r in send_all(guarded, [*gets("/nope", 2), *gets("/legacy/x", 2)])
    ]
    assert statuses == [404, 404, 404, 429]
    guarded.close()
