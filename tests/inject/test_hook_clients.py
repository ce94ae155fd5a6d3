"""httpx, requests and aiohttp clients send the trace along and record client spans."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sloguard.inject._explain import Outcome
from sloguard.telemetry.outbound import TracedTransport, instrument_httpx, uninstrument_httpx
from tests.inject.hookapps.support import echo_server, hooks_installed

ORIGINAL_INITS = (httpx.Client.__init__, httpx.AsyncClient.__init__)
ORIGINAL_SEND = requests.adapters.HTTPAdapter.send


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=request.headers.get("traceparent", ""))


def test_httpx_client_made_after_the_hook_sends_traceparent_and_records_a_span(
    tmp_path: Path,
) -> None:
    with hooks_installed(tmp_path) as hooked:
        client = httpx.Client(transport=httpx.MockTransport(echo))
        sent = client.get("http://api.test:8080/users?id=7&token=s3cret").text
        (span,) = hooked.spans(SpanKind.CLIENT)
        assert sent == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
        assert span.name == "GET"
        assert dict(span.attributes or {}) == {
            "http.request.method": "GET",
            "url.full": "http://api.test:8080/users?id=7&token=[REDACTED]",
            "server.address": "api.test",
            "server.port": 8080,
            "http.response.status_code": 200,
        }


def test_an_exporters_own_calls_are_not_traced(tmp_path: Path) -> None:
    from opentelemetry import context
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    with hooks_installed(tmp_path) as hooked:
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            sent = httpx.Client(transport=httpx.MockTransport(echo)).get("http://c.test/").text
        finally:
            context.detach(token)
        assert sent == ""
        assert hooked.spans(SpanKind.CLIENT) == []


def test_httpx_async_client_is_traced_too(tmp_path: Path) -> None:
    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
            return (await client.get("http://api.test/")).text

    with hooks_installed(tmp_path) as hooked:
        sent = asyncio.run(go())
        (span,) = hooked.spans(SpanKind.CLIENT)
        assert sent.split("-")[1] == f"{span.context.trace_id:032x}"


def test_httpx_transport_the_app_traces_itself_is_not_traced_twice(tmp_path: Path) -> None:
    with hooks_installed(tmp_path) as hooked:
        transport = TracedTransport(httpx.MockTransport(echo), tracer=hooked.installation.tracer)
        httpx.Client(transport=transport).get("http://api.test/")
        assert len(hooked.spans(SpanKind.CLIENT)) == 1


def test_httpx_clients_are_left_to_instrument_httpx_when_it_is_on(tmp_path: Path) -> None:
    with hooks_installed(tmp_path) as hooked:
        instrument_httpx(tracer=hooked.installation.tracer)
        try:
            client = httpx.Client(transport=httpx.MockTransport(echo))
        finally:
            uninstrument_httpx()
        assert isinstance(client._transport, httpx.MockTransport)


def test_requests_carry_traceparent_to_a_loopback_server(tmp_path: Path) -> None:
    with echo_server() as base, hooks_installed(tmp_path) as hooked:
        received = requests.get(f"{base}/hello", timeout=5).text
        (span,) = hooked.spans(SpanKind.CLIENT)
        expected = f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
        assert f"traceparent: {expected}\n" in received
        assert span.attributes["http.response.status_code"] == 200  # type: ignore[index]
        assert span.attributes["url.full"] == f"{base}/hello"  # type: ignore[index]


def test_requests_error_status_marks_the_span(tmp_path: Path) -> None:
    with echo_server() as base, hooks_installed(tmp_path) as hooked:
        assert requests.get(f"{base}/status/503", timeout=5).status_code == 503
        (span,) = hooked.spans(SpanKind.CLIENT)
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "503"  # type: ignore[index]


def test_requests_connection_error_is_recorded(tmp_path: Path) -> None:
    with echo_server() as base:
        pass  # the port is closed again
    with hooks_installed(tmp_path) as hooked:
        with pytest.raises(requests.ConnectionError):
            requests.get(base, timeout=5)
        (span,) = hooked.spans(SpanKind.CLIENT)
        assert span.attributes["error.type"] == "ConnectionError"  # type: ignore[index]


def test_aiohttp_session_carries_traceparent_to_a_loopback_server(tmp_path: Path) -> None:
    aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed (dev extra)")

    async def go(url: str) -> str:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return str(await response.text())

    with echo_server() as base, hooks_installed(tmp_path) as hooked:
        received = asyncio.run(go(f"{base}/status/201"))
        (span,) = hooked.spans(SpanKind.CLIENT)
        expected = f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
        assert f"traceparent: {expected}\n" in received
        assert span.attributes["http.response.status_code"] == 201  # type: ignore[index]


@pytest.mark.parametrize(
    ("sections", "why"),
    [
        pytest.param({"tracing": {"enabled": False}}, "tracing.enabled is false", id="tracing-off"),
        pytest.param(
            {"inject": {"frameworks": ["flask"]}},
            "'requests' is not in inject.frameworks",
            id="left-out",
        ),
    ],
)
def test_requests_hook_is_skipped_as_the_settings_say(
    tmp_path: Path, sections: dict[str, dict[str, object]], why: str
) -> None:
    with hooks_installed(tmp_path, **sections) as hooked:
        assert requests.adapters.HTTPAdapter.send is ORIGINAL_SEND
        assert hooked.outcome("requests.adapters.HTTPAdapter") == (Outcome.SKIPPED, why)


def test_undo_restores_the_client_classes(tmp_path: Path) -> None:
    with hooks_installed(tmp_path):
        assert requests.adapters.HTTPAdapter.send is not ORIGINAL_SEND
    assert (httpx.Client.__init__, httpx.AsyncClient.__init__) == ORIGINAL_INITS
    assert requests.adapters.HTTPAdapter.send is ORIGINAL_SEND


OUTBOUND = {"enabled": True, "outbound": {"enabled": True, "consecutive_failures": 2}}


def test_httpx_breaker_opens_for_a_failing_host_across_clients(tmp_path: Path) -> None:
    from sloguard.resilience._transport import HTTPBreakerOpenError

    calls: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(503)

    with hooks_installed(tmp_path, resilience=OUTBOUND) as hooked:
        for _ in range(2):
            httpx.Client(transport=httpx.MockTransport(down)).get("http://down.test/")
        with pytest.raises(HTTPBreakerOpenError):
            httpx.Client(transport=httpx.MockTransport(down)).get("http://down.test/")
        assert len(calls) == 2
        assert hooked.spans(SpanKind.CLIENT)[-1].attributes["error.type"] == "HTTPBreakerOpenError"  # type: ignore[index]


def test_httpx_breakers_with_unusable_settings_are_reported_not_raised(tmp_path: Path) -> None:
    resilience = {"enabled": True, "outbound": {"enabled": True, "key": "route"}}
    with hooks_installed(tmp_path, resilience=resilience) as hooked:
        assert httpx.Client(transport=httpx.MockTransport(echo)).get("http://a.test/").is_success
        outcome = hooked.outcome("httpx breakers")
        assert outcome is not None
        assert outcome[0] is Outcome.FAILED


def test_call_made_while_serving_a_hooked_request_is_a_child_of_its_server_span(
    tmp_path: Path,
) -> None:
    async def proxy(request: object) -> PlainTextResponse:
        async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
            return PlainTextResponse((await client.get("http://upstream.test/")).text)

    async def go(app: Starlette) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            await client.get("http://app.test/proxy")

    with hooks_installed(tmp_path) as hooked:
        asyncio.run(go(Starlette(routes=[Route("/proxy", proxy)])))
        (server,) = hooked.spans(SpanKind.SERVER)
        (upstream,) = [
            s
            for s in hooked.spans(SpanKind.CLIENT)
            if (s.attributes or {}).get("server.address") == "upstream.test"
        ]
        assert upstream.parent is not None
        assert upstream.parent.span_id == server.context.span_id


def test_httpx_breakers_share_their_state_through_redis_when_configured(
    tmp_path: Path, redis_server: Any
) -> None:
    redis_server.flushall()
    resilience = {
        **OUTBOUND,
        "redis": {"url": redis_server.url, "prefix": "hooktest", "sync_interval_s": 0.02},
    }

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    with hooks_installed(tmp_path, resilience=resilience) as hooked:
        for _ in range(2):
            httpx.Client(transport=httpx.MockTransport(down)).get("http://down.test/")
        outcome = hooked.outcome("httpx breakers")
        assert outcome is not None
        assert "shared through Redis" in outcome[1]
        deadline = time.monotonic() + 2
        found = "*0"  # the number of matching keys, as Redis answers it
        while time.monotonic() < deadline and found == "*0":
            time.sleep(0.02)
            found = redis_server.command("KEYS", "hooktest:breaker:*down.test*")
    assert found != "*0"
