"""httpx transports with breakers per host, per route, or per custom key."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from sloguard.resilience._breaker import BreakerOpenError, BreakerRegistry
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._transport import (
    AsyncBreakerTransport,
    BreakerTransport,
    HTTPBreakerOpenError,
    breaker_key,
)
from sloguard.resilience._types import BreakerPolicy, BreakerState

ROUTES = ["/users/{user_id:int}", "/health"]


class Upstream:
    """A MockTransport answering the status given in the path's last segment (/x/503)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hits[request.url.host] += 1
        if request.url.path.endswith("/boom"):
            raise httpx.ConnectError("refused", request=request)
        last = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(int(last) if last.isdigit() and len(last) == 3 else 200)


def registry(clock: ManualClock | None = None) -> BreakerRegistry:
    return BreakerRegistry(
        BreakerPolicy(consecutive_failures=2, open_s=10.0), clock=clock or ManualClock()
    )


def client(upstream: Upstream, **options: object) -> httpx.Client:
    options.setdefault("registry", registry())
    return httpx.Client(transport=BreakerTransport(httpx.MockTransport(upstream), **options))  # type: ignore[arg-type]


def test_failure_statuses_are_returned_and_open_the_host_breaker() -> None:
    upstream = Upstream()
    with client(upstream) as http:
        assert [http.get("http://a.test/x/503").status_code for _ in range(2)] == [503, 503]
        with pytest.raises(HTTPBreakerOpenError) as caught:
            http.get("http://a.test/x/200")
    assert upstream.hits["a.test"] == 2
    error = caught.value
    assert (error.name, error.state, error.request.url.host) == (
        "http:a.test",
        BreakerState.OPEN,
        "a.test",
    )
    assert isinstance(error, httpx.TransportError)
    assert isinstance(error, BreakerOpenError)


def test_each_host_has_its_own_breaker() -> None:
    upstream = Upstream()
    with client(upstream) as http:
        for _ in range(2):
            http.get("http://a.test/x/500")
        assert http.get("http://b.test:8080/x/200").status_code == 200
        assert sorted(b.name for b in http._transport.registry) == [
            "http:a.test",
            "http:b.test:8080",
        ]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "opens"),
    [
        pytest.param(404, False, id="404"),
        pytest.param(429, False, id="429"),
        pytest.param(502, True, id="502"),
        pytest.param(504, True, id="504"),
    ],
)
def test_only_failure_statuses_count(status: int, opens: bool) -> None:
    with client(Upstream()) as http:
        for _ in range(2):
            http.get(f"http://a.test/x/{status}")
        assert (http._transport.registry.get("http:a.test").state is BreakerState.OPEN) is opens  # type: ignore[attr-defined]


def test_transport_errors_count_as_failures_and_propagate() -> None:
    with client(Upstream()) as http:
        for _ in range(2):
            with pytest.raises(httpx.ConnectError):
                http.get("http://a.test/boom")
        with pytest.raises(HTTPBreakerOpenError):
            http.get("http://a.test/x/200")


def test_route_keys_share_a_breaker_per_template() -> None:
    upstream = Upstream()
    with client(upstream, key="route", routes=ROUTES) as http:
        http.get("http://a.test/users/1/../7/500")
        http.get("http://a.test/users/8")
        names = sorted(b.name for b in http._transport.registry)  # type: ignore[attr-defined]
    assert names == ["http:a.test /users/{user_id:int}", "http:a.test <unmatched>"]


def test_an_open_route_breaker_leaves_other_routes_alone() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.path.startswith("/users") else 200)

    transport = BreakerTransport(
        httpx.MockTransport(answer), key="route", routes=ROUTES, registry=registry()
    )
    with httpx.Client(transport=transport) as http:
        http.get("http://a.test/users/1")
        http.get("http://a.test/users/2")
        with pytest.raises(HTTPBreakerOpenError):
            http.get("http://a.test/users/3")
        assert http.get("http://a.test/health").status_code == 200


def test_unmatched_routes_can_bypass_the_breakers() -> None:
    with client(Upstream(), key="route", routes=ROUTES, unmatched="bypass") as http:
        for _ in range(5):
            assert http.get("http://a.test/other/500").status_code == 500
        assert len(http._transport.registry) == 0  # type: ignore[attr-defined]


def test_a_key_function_names_breakers_and_none_bypasses() -> None:
    def key(request: httpx.Request) -> str | None:
        return None if request.method == "GET" else f"write:{request.url.host}"

    with client(Upstream(), key=key) as http:
        for _ in range(3):
            http.get("http://a.test/x/500")
        for _ in range(2):
            http.post("http://a.test/x/500")
        with pytest.raises(HTTPBreakerOpenError, match="BRK_503"):
            http.post("http://a.test/x/200")
        assert [b.name for b in http._transport.registry] == ["write:a.test"]  # type: ignore[attr-defined]


def test_the_breaker_half_opens_after_the_open_period() -> None:
    clock = ManualClock()
    with client(Upstream(), registry=registry(clock)) as http:
        for _ in range(2):
            http.get("http://a.test/x/500")
        clock.advance(10.0)
        assert http.get("http://a.test/x/200").status_code == 200
        assert http._transport.registry.get("http:a.test").state is BreakerState.CLOSED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "routes", "message"),
    [
        pytest.param("path", (), "key", id="bad-key"),
        pytest.param("route", (), "routes", id="route-without-routes"),
    ],
)
def test_bad_keys_are_refused(key: str, routes: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        breaker_key(key, routes)  # type: ignore[arg-type]


def test_async_transport_fails_fast_while_open() -> None:
    upstream = Upstream()

    async def answer(request: httpx.Request) -> httpx.Response:
        return upstream(request)

    async def main() -> list[int]:
        transport = AsyncBreakerTransport(httpx.MockTransport(answer), registry=registry())
        async with httpx.AsyncClient(transport=transport) as http:
            statuses = [(await http.get("http://a.test/x/503")).status_code for _ in range(2)]
            with pytest.raises(HTTPBreakerOpenError):
                await http.get("http://a.test/x/200")
            return statuses

    assert asyncio.run(main()) == [503, 503]
    assert upstream.hits["a.test"] == 2
