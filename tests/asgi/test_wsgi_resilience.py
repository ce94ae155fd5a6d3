"""Shedding, rate limits and inbound breakers for WSGI apps guarded with ``guard_wsgi``."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from prometheus_client import generate_latest
from werkzeug.test import Client, EnvironBuilder, TestResponse

from sloguard.asgi import WSGIGuard, guard_wsgi
from sloguard.asgi._breaker_layer import InboundBreakers
from sloguard.asgi._wsgi_resilience import WSGIApp, WSGIShedMiddleware
from sloguard.resilience._concurrency import ConcurrencyLimiter
from sloguard.resilience._shedder import LoadShedder
from sloguard.resilience._types import BreakerState
from sloguard.settings import Settings
from sloguard.settings._resilience import ShedSettings
from tests.harness.servers import RedisServer

SECRET = "s" * 48


class Shop:
    """A Flask app whose ``/slow`` view waits for a gate and ``/pay`` answers ``status``."""

    def __init__(self) -> None:
        self.app = Flask("shop")
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.status = 200
        self.calls = 0

        @self.app.get("/items/<int:n>")
        def item(n: int) -> str:
            return f"item {n}"

        @self.app.get("/slow")
        def slow() -> str:
            self.entered.set()
            self.gate.wait(10)
            return "done"

        @self.app.get("/pay/<int:n>")
        def pay(n: int) -> tuple[str, int]:
            self.calls += 1
            return "paid", self.status

        @self.app.get("/stream")
        def stream() -> Any:
            return self.app.response_class((b"x" * 10 for _ in range(3)), mimetype="text/plain")


def settings_with(auth: dict[str, Any] | None = None, **resilience: Any) -> Settings:
    data: dict[str, Any] = {
        "resilience": {"enabled": True, **resilience},
        "sli": {"enabled": False},
        "logging": {"configure_root": False},
    }
    if auth is not None:
        data["auth"] = auth
    return Settings.model_validate(data)


class PeerClient(Client):
    """A client from one peer address that, by default, consumes and closes each
    body as a real server does (``buffered=False`` leaves that to the test)."""

    def __init__(self, app: WSGIGuard | WSGIApp, ip: str) -> None:
        super().__init__(app)
        self.ip = ip

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        kwargs.setdefault("buffered", True)
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.ip})
        return super().open(*args, **kwargs)


def client(app: WSGIGuard | WSGIApp, ip: str = "10.0.0.1") -> PeerClient:
    return PeerClient(app, ip)


def get(http: Client, path: str, **headers: str) -> TestResponse:
    return http.get(path, headers=headers)


def statuses(http: Client, *paths: str, **headers: str) -> list[int]:
    return [get(http, path, **headers).status_code for path in paths]


def shedder_of(guarded: WSGIGuard) -> LoadShedder:
    assert guarded.resilience is not None
    assert guarded.resilience.shedder is not None
    return guarded.resilience.shedder


def breakers_of(guarded: WSGIGuard) -> InboundBreakers:
    assert guarded.resilience is not None
    assert guarded.resilience.breakers is not None
    return guarded.resilience.breakers


@pytest.fixture
def shop() -> Shop:
    return Shop()


def test_requests_over_the_concurrency_limit_get_shed_101_with_retry_after(shop: Shop) -> None:
    guarded = guard_wsgi(shop.app, settings_with(shedding={"max_concurrency": 1}))
    first = threading.Thread(target=get, args=(client(guarded), "/slow"))
    first.start()
    assert shop.entered.wait(10)
    refused = get(client(guarded), "/items/1", **{"x-request-id": "req-shed"})
    shop.gate.set()
    first.join(10)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert (refused.json or {})["code"] == "SHED_101"
    assert (refused.json or {})["request_id"] == "req-shed"
    assert statuses(client(guarded), "/items/1") == [200]
    scrape = generate_latest(guarded.registry).decode()
    assert 'sloguard_shed_rejected_total{code="SHED_101",priority="normal"} 1.0' in scrape
    guarded.close()


def test_a_streamed_response_holds_its_place_until_the_server_closes_it(shop: Shop) -> None:
    guarded = guard_wsgi(shop.app, settings_with(shedding={"max_concurrency": 5}))
    response = client(guarded).get("/stream", buffered=False)
    assert shedder_of(guarded).in_flight == 1
    assert response.get_data() == b"x" * 30
    assert shedder_of(guarded).in_flight == 1
    response.close()
    assert shedder_of(guarded).in_flight == 0
    guarded.close()


def raising_app(where: str) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if where == "call":
            raise RuntimeError("boom")
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"half"
            raise RuntimeError("boom")

        return body()

    return app


@pytest.mark.parametrize("where", ["call", "body"])
def test_an_exception_from_the_app_gives_the_place_back(where: str) -> None:
    guarded = guard_wsgi(raising_app(where), settings_with(shedding={"max_concurrency": 1}))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            get(client(guarded), "/")
    assert shedder_of(guarded).in_flight == 0
    guarded.close()


def test_a_body_dropped_without_close_gives_the_place_back_when_collected() -> None:
    shedder = LoadShedder(concurrency=ConcurrencyLimiter(1))
    middleware = WSGIShedMiddleware(Shop().app, shedder, ShedSettings())
    body = middleware(EnvironBuilder(path="/items/1").get_environ(), lambda *a: None)
    assert shedder.in_flight == 1
    del body
    gc.collect()
    assert shedder.in_flight == 0


def test_requests_over_the_limit_get_rate_429_with_retry_after_and_policy_headers(
    shop: Shop,
) -> None:
    limit = {"name": "per-ip", "limit": 3, "period_s": 60}
    guarded = guard_wsgi(shop.app, settings_with(rate_limits=[limit]))
    http = client(guarded)
    responses = [get(http, "/items/1", **{"x-request-id": "req-rl"}) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["ratelimit-policy"] == '"per-ip";q=3;w=60'
    assert responses[0].headers["ratelimit"] == '"per-ip";r=2;t=20'
    refused = responses[3]
    assert refused.headers["retry-after"] == "20"
    body = json.loads(refused.data)
    assert (body["code"], body["request_id"]) == ("RATE_429", "req-rl")
    assert body["violated-policies"] == ["per-ip"]
    assert statuses(client(guarded, ip="10.0.0.2"), "/items/1") == [200]
    scrape = generate_latest(guarded.registry).decode()
    assert 'sloguard_rate_limit_decisions_total{limit="per-ip",result="limited"} 1.0' in scrape
    guarded.close()


@pytest.mark.parametrize(
    ("client_ip", "expected"),
    [
        pytest.param({}, [200, 429, 429], id="header-ignored-by-default"),
        pytest.param({"trusted_hops": 1}, [200, 200, 200], id="trusted-hop"),
        pytest.param({"trusted_proxies": ["10.0.0.0/8"]}, [200, 200, 200], id="trusted-proxy"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    shop: Shop, client_ip: dict[str, Any], expected: list[int]
) -> None:
    limit = {"name": "per-ip", "limit": 1, "period_s": 60}
    guarded = guard_wsgi(shop.app, settings_with(rate_limits=[limit], client_ip=client_ip))
    http = client(guarded)
    spoofed = [get(http, "/items/1", **{"x-forwarded-for": f"198.51.100.{i}"}) for i in range(3)]
    assert [r.status_code for r in spoofed] == expected
    guarded.close()


def test_a_limit_keyed_by_a_header_counts_each_value_and_skips_requests_without_it(
    shop: Shop,
) -> None:
    limit = {"name": "per-key", "key": "header:X-Api-Key", "limit": 1}
    guarded = guard_wsgi(shop.app, settings_with(rate_limits=[limit]))
    http = client(guarded)
    assert statuses(http, "/items/1", "/items/2", **{"x-api-key": "a"}) == [200, 429]
    assert statuses(http, "/items/1", **{"x-api-key": "b"}) == [200]
    assert statuses(http, "/items/1", "/items/2") == [200, 200]
    guarded.close()


def test_principal_limits_run_after_auth(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_JWT_SECRET", SECRET)
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nroles:\n  user: {permissions: ['GET /items/**']}\n")
    auth = {
        "enabled": True,
        "static_keys": [{"env": "TEST_JWT_SECRET", "algorithms": ["HS256"]}],
        "policy": {"file": str(policy), "poll_interval_s": 60},
    }
    limit = {"name": "per-user", "key": "principal", "limit": 2}
    guarded = guard_wsgi(shop.app, settings_with(auth, rate_limits=[limit]))
    http = client(guarded)
    assert statuses(http, "/items/1") == [401]
    assert statuses(http, *["/items/1"] * 3, authorization=bearer("alice")) == [200, 200, 429]
    assert statuses(http, "/items/1", authorization=bearer("bob")) == [200]
    guarded.close()


def bearer(subject: str) -> str:
    now = int(time.time())
    claims = {"sub": subject, "roles": ["user"], "iat": now, "exp": now + 300}
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


def test_limits_in_redis_are_shared_by_every_guarded_process(shop: Shop, redis_server: Any) -> None:
    limit = {"name": "shared-ip", "limit": 2, "period_s": 60}
    settings = settings_with(
        rate_limits=[limit],
        redis={"url": redis_server.url, "prefix": "wsgi-shared", "timeout_s": 1.0},
    )
    first, second = guard_wsgi(shop.app, settings), guard_wsgi(Shop().app, settings)
    assert statuses(client(first), "/items/1", "/items/2") == [200, 200]
    refused = get(client(second), "/items/3")
    assert (refused.status_code, (refused.json or {})["code"]) == (429, "RATE_429")
    first.close()
    second.close()


def test_a_redis_outage_fails_open_or_closed_per_limit(shop: Shop, tmp_path: Path) -> None:
    open_limit = {"name": "open", "limit": 100, "routes": ["/items/*"]}
    closed_limit = {"name": "closed", "limit": 100, "routes": ["/pay/*"], "fail_closed": True}
    with RedisServer(tmp_path).start() as redis:
        settings = settings_with(
            rate_limits=[open_limit, closed_limit], redis={"url": redis.url, "timeout_s": 1.0}
        )
        guarded = guard_wsgi(shop.app, settings)
        http = client(guarded)
        assert statuses(http, "/items/1", "/pay/1") == [200, 200]
        redis.stop()
        assert statuses(http, "/items/1") == [200]
        refused = get(http, "/pay/1")
    assert (refused.status_code, (refused.json or {})["code"]) == (503, "RATE_503")
    guarded.close()


def test_a_route_that_keeps_failing_is_refused_with_brk_503_and_retry_after(shop: Shop) -> None:
    shop.status = 500
    breaker = {"name": "pay", "routes": ["/pay/*"], "consecutive_failures": 3}
    guarded = guard_wsgi(shop.app, settings_with(breakers=[breaker]))
    http = client(guarded)
    assert statuses(http, *["/pay/1"] * 5, "/items/1") == [500, 500, 500, 503, 503, 200]
    assert shop.calls == 3
    refused = get(http, "/pay/2", **{"x-request-id": "req-brk"})
    assert refused.headers["retry-after"] == "30"
    assert (refused.json or {})["code"] == "BRK_503"
    assert (refused.json or {})["request_id"] == "req-brk"
    guarded.close()


@pytest.mark.parametrize("where", ["call", "body"])
def test_exceptions_from_the_app_count_as_breaker_failures(where: str) -> None:
    breaker = {"name": "all", "consecutive_failures": 2}
    guarded = guard_wsgi(raising_app(where), settings_with(breakers=[breaker]))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            get(client(guarded), "/")
    refused = get(client(guarded), "/")
    assert (refused.status_code, (refused.json or {})["code"]) == (503, "BRK_503")
    guarded.close()


def test_a_response_still_streaming_is_not_yet_a_breaker_outcome(shop: Shop) -> None:
    shop.status = 500
    breaker = {"name": "pay", "routes": ["/pay/*"], "consecutive_failures": 1}
    guarded = guard_wsgi(shop.app, settings_with(breakers=[breaker]))
    response = client(guarded).get("/pay/1", buffered=False)
    (backend,) = breakers_of(guarded).backends()
    states = [backend.state]
    response.close()
    states.append(backend.state)
    assert states == [BreakerState.CLOSED, BreakerState.OPEN]
    guarded.close()


def test_a_breaker_shared_in_redis_refuses_in_every_guarded_process(redis_server: Any) -> None:
    breaker = {"name": "shared-pay", "routes": ["/pay/*"], "consecutive_failures": 2}
    redis = {"url": redis_server.url, "prefix": "wsgi-brk", "sync_interval_s": 0.02}
    failing, healthy = Shop(), Shop()
    failing.status = 500
    first = guard_wsgi(failing.app, settings_with(breakers=[breaker], redis=redis))
    second = guard_wsgi(healthy.app, settings_with(breakers=[breaker], redis=redis))
    assert statuses(client(first), "/pay/1", "/pay/1") == [500, 500]
    deadline = time.monotonic() + 2.0
    while statuses(client(second), "/pay/1") != [503] and time.monotonic() < deadline:
        time.sleep(0.02)  # the trip reaches the second process on its next sync
    refused = get(client(second), "/pay/1")
    assert (refused.status_code, (refused.json or {})["code"]) == (503, "BRK_503")
    first.close()
    second.close()
