"""The observe middleware: one server span, metrics, SLI and context per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from sloguard.store import SQLiteStore
from tests.asgi.conftest import Harness

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def test_each_request_gets_exactly_one_server_span_named_by_route(harness: Harness) -> None:
    assert harness.get("/items/7").status_code == 200
    (span,) = harness.spans()
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/items/7"


def test_trusted_caller_continues_its_trace(harness: Harness) -> None:
    harness.get("/items/1", headers={"traceparent": TRACEPARENT})
    (span,) = harness.spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT


def test_untrusted_caller_starts_a_new_trace_linked_to_its_own(harness: Harness) -> None:
    harness.get("/items/1", headers={"traceparent": TRACEPARENT}, client="203.0.113.9")
    (span,) = harness.spans()
    assert format(span.context.trace_id, "032x") != TRACE
    assert span.parent is None
    (link,) = span.links
    assert format(link.context.trace_id, "032x") == TRACE
    assert link.attributes["sloguard.link.reason"] == "untrusted-source"


def test_trusted_unsampled_parent_is_not_recorded(harness: Harness) -> None:
    response = harness.get("/items/1", headers={"traceparent": f"00-{TRACE}-{PARENT}-00"})
    assert response.status_code == 200
    assert harness.spans() == []
    assert harness.count("/items/{item_id}", "2xx") == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"b3": f"{TRACE}-{PARENT}-1"}, id="b3-single"),
        pytest.param(
            {"x-b3-traceid": TRACE, "x-b3-spanid": PARENT, "x-b3-sampled": "1"}, id="b3-multi"
        ),
    ],
)
def test_b3_headers_are_honoured(harness: Harness, headers: dict[str, str]) -> None:
    harness.get("/items/1", headers=headers)
    (span,) = harness.spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert format(span.parent.span_id, "016x") == PARENT


def test_x_trace_id_becomes_the_trace_of_a_root_span(harness: Harness) -> None:
    harness.get("/items/1", headers={"x-trace-id": TRACE.upper()})
    (span,) = harness.spans()
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("ff-" + TRACE + "-" + PARENT + "-01", id="version-ff"),
        pytest.param("00-" + "0" * 32 + "-" + PARENT + "-01", id="zero-trace"),
        pytest.param("00-" + TRACE.upper() + "-" + PARENT + "-01", id="uppercase"),
        pytest.param("00-" + TRACE + "-" + PARENT, id="truncated"),
        pytest.param("x" * 20_000, id="oversized"),
        pytest.param("\u00e9\u00e9", id="non-ascii"),
    ],
)
def test_malformed_traceparent_starts_a_fresh_trace(harness: Harness, value: str) -> None:
    response = harness.get("/items/1", headers={"traceparent": value.encode("utf-8")})
    assert response.status_code == 200
    (span,) = harness.spans()
    assert span.parent is None
    assert not span.links
    assert format(span.context.trace_id, "032x") != TRACE


def test_safe_request_id_is_kept_and_echoed(harness: Harness) -> None:
    response = harness.get("/whoami", headers={"x-request-id": "req-42.a:b"})
    assert response.headers["x-request-id"] == "req-42.a:b"
    assert response.json()["request_id"] == "req-42.a:b"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a" * 129, id="too-long"),
        pytest.param("bad id with spaces", id="spaces"),
        pytest.param("<script>", id="markup"),
        pytest.param("", id="empty"),
    ],
)
def test_unsafe_request_id_is_replaced(harness: Harness, value: str) -> None:
    response = harness.get("/whoami", headers={"x-request-id": value})
    assert response.headers["x-request-id"] != value
    assert len(response.headers["x-request-id"]) == 32


def test_request_context_carries_the_span_trace_id(harness: Harness) -> None:
    body = harness.get("/whoami").json()
    (span,) = harness.spans()
    assert body["trace_id"] == format(span.context.trace_id, "032x")
    assert body["route"] == "/whoami"


def test_metrics_count_by_route_template_and_status_class(harness: Harness) -> None:
    for n in range(3):
        harness.get(f"/items/{n}")
    harness.get("/fail")
    assert harness.count("/items/{item_id}", "2xx") == 3
    assert harness.count("/fail", "5xx") == 1


def test_unmatched_paths_share_one_label(harness: Harness) -> None:
    for n in range(5):
        assert harness.get(f"/nope/{n}").status_code == 404
    assert harness.count("<unmatched>", "4xx") == 5


def test_mounted_sub_app_routes_resolve_to_full_templates(harness: Harness) -> None:
    harness.get("/sub/things/3")
    assert harness.count("/sub/things/{thing_id}", "2xx") == 1


def test_application_exception_is_a_500_with_an_error_span(harness: Harness) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        harness.get("/boom")
    (span,) = harness.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert harness.count("/boom", "5xx") == 1


def test_server_error_status_marks_span_and_error_code(harness: Harness) -> None:
    harness.get("/fail")
    (span,) = harness.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["sloguard.error_code"] == "SHOP_500"


def test_sli_counts_reach_the_store_on_close(harness: Harness, tmp_path) -> None:
    for _ in range(4):
        harness.get("/items/1")
    harness.get("/fail")
    harness.guard.close()
    store = SQLiteStore(tmp_path / "sli.db")
    assert store.totals("availability", 0, 2**40) == (4, 5)
    store.close()


def test_excluded_paths_are_not_observed(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(metrics={"exclude_paths": ["/items/1"]})
    assert harness.get("/items/1").status_code == 200
    assert harness.spans() == []
    assert harness.count("/items/{item_id}", "2xx") == 0


def test_metrics_endpoint_is_served_and_not_counted(harness: Harness) -> None:
    harness.get("/items/1")
    response = harness.get("/metrics")
    assert response.status_code == 200
    assert (
        'sloguard_http_requests_total{method="GET",route="/items/{item_id}",status_class="2xx"} 1.0'
        in response.text
    )
    assert "/metrics" not in {s.attributes["http.route"] for s in harness.spans()}


def test_unknown_methods_are_folded_into_other(harness: Harness) -> None:
    harness.request("BREW", "/items/1")
    assert harness.count("/items/{item_id}", "4xx", method="_OTHER") == 1


def test_query_secrets_are_redacted_on_the_span(harness: Harness) -> None:
    harness.get("/items/1?token=s3cr3t&page=2")
    (span,) = harness.spans()
    assert "s3cr3t" not in span.attributes["url.query"]
    assert "page=2" in span.attributes["url.query"]


def test_per_route_ratio_zero_drops_that_route_only(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(tracing={"route_sample_ratios": {"/items/*": 0.0}})
    harness.get("/items/1")
    harness.get("/whoami")
    assert [s.name for s in harness.spans()] == ["GET /whoami"]


def test_application_log_lines_carry_ids_of_the_request(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = harness.get("/whoami", headers={"x-request-id": "req-log-1"})
    (access,) = [r for r in caplog.records if r.name == "sloguard.access"]
    (span,) = harness.spans()
    assert access.request_id == "req-log-1" == response.headers["x-request-id"]
    assert access.trace_id == format(span.context.trace_id, "032x")
    assert access.span_id == format(span.context.span_id, "016x")
    assert access.route == "/whoami"
    assert access.status == 200


def test_websocket_scopes_pass_through_untouched(harness: Harness) -> None:
    seen: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    harness.guard.wrapped = app
    asyncio.run(harness.guard({"type": "websocket", "path": "/ws", "headers": []}, None, None))  # type: ignore[arg-type]
    assert seen == ["websocket"]
    assert harness.spans() == []


def test_lifespan_shutdown_flushes_sli_counts(harness: Harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    harness.get("/items/1")
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message) -> None:  # type: ignore[no-untyped-def]
        sent.append(message["type"])

    asyncio.run(harness.guard({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    store = SQLiteStore(tmp_path / "sli.db")
    assert store.totals("availability", 0, 2**40) == (1, 1)
    store.close()


def test_metrics_can_be_served_on_their_own_port(make_harness: Callable[..., Harness]) -> None:
    from tests.harness.processes import free_port

    port = free_port()
    harness = make_harness(metrics={"port": port})
    harness.get("/items/1")
    assert harness.get("/metrics").status_code == 404  # no longer on the app's path
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
    assert 'route="/items/{item_id}"' in body


def test_logged_headers_are_copied_and_sensitive_ones_redacted(
    make_harness: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = make_harness(logging={"logged_headers": ["referer", "authorization"]})
    caplog.set_level(logging.INFO)
    harness.get(
        "/items/1", headers={"referer": "https://shop.test/", "authorization": "Bearer abc.def"}
    )
    (access,) = [r for r in caplog.records if r.name == "sloguard.access"]
    assert access.headers == {"referer": "https://shop.test/", "authorization": "[REDACTED]"}
