"""Two real services calling each other export one connected trace over OTLP."""

from __future__ import annotations

import httpx
import pytest

from tests.harness.otlp import OtlpGrpcReceiver, OtlpHttpReceiver, SpanKind
from tests.integration.conftest import uvicorn_app

pytestmark = pytest.mark.timeout(90)


def service_env(name: str, exporter: str, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "SLOGUARD_SERVICE__NAME": name,
        "SLOGUARD_TRACING__EXPORTER": exporter,
        "SLOGUARD_TRACING__OTLP_ENDPOINT": endpoint,
        "SLOGUARD_LOGGING__ACCESS_LOG": "false",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **extra,
    }


def test_front_and_back_spans_form_one_trace_over_http_and_grpc(
    otlp_http_receiver: OtlpHttpReceiver, otlp_grpc_receiver: OtlpGrpcReceiver
) -> None:
    back_env = service_env("back", "otlp-grpc", f"http://{otlp_grpc_receiver.endpoint}")
    with uvicorn_app("app_back", back_env) as back:
        front_env = service_env(
            "front", "otlp-http", otlp_http_receiver.endpoint, BACK_URL=back.url
        )
        with uvicorn_app("app_front", front_env) as front:
            response = httpx.get(f"{front.url}/products/abc", trust_env=False)
            assert response.status_code == 200, front.output() + back.output()
            assert response.json() == {"sku": "abc", "stock": 3}
            front_server, front_client = (
                otlp_http_receiver.wait_for(
                    lambda s: s.kind is SpanKind.SERVER and s.name == "GET /products/{sku}"
                ),
                otlp_http_receiver.wait_for(lambda s: s.kind is SpanKind.CLIENT),
            )
            (back_server,) = otlp_grpc_receiver.wait_for(lambda s: s.name == "GET /stock/{sku}")
    (front_server,), (front_client,) = front_server, front_client
    assert front_server.parent_span_id == ""
    assert front_client.parent_span_id == front_server.span_id
    assert back_server.parent_span_id == front_client.span_id
    assert {front_server.trace_id, front_client.trace_id, back_server.trace_id} == {
        front_server.trace_id
    }
    assert front_server.service_name == "front"
    assert back_server.service_name == "back"
    assert back_server.attributes["http.route"] == "/stock/{sku}"


def test_an_untrusted_caller_gets_a_new_trace_linked_to_its_own(
    otlp_http_receiver: OtlpHttpReceiver,
) -> None:
    env = service_env(
        "back", "otlp-http", otlp_http_receiver.endpoint, SLOGUARD_TRACING__TRUSTED_SOURCES="[]"
    )
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with uvicorn_app("app_back", env) as back:
        httpx.get(
            f"{back.url}/stock/x",
            headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
            trust_env=False,
        )
        (span,) = otlp_http_receiver.wait_for(lambda s: s.name == "GET /stock/{sku}")
    assert span.trace_id != caller_trace
    assert span.parent_span_id == ""
    assert span.links == ((caller_trace, "00f067aa0ba902b7"),)
