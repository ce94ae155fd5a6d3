"""JSON log lines with trace and request ids, and redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sloguard.context import RequestContext, bind_request, reset_request
from sloguard.telemetry.logging import REDACTED, JsonFormatter, Redactor, install_record_factory


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    install_record_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(static_fields={"service": "shop"}))
    logger = logging.getLogger("tests.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def last(stream: io.StringIO) -> dict[str, object]:
    return json.loads(stream.getvalue().splitlines()[-1])


def test_application_logs_carry_the_request_context(lines: io.StringIO) -> None:
    token = bind_request(
        RequestContext("req-1", route="/items/{id}", trace_id="a" * 32, span_id="b" * 16)
    )
    try:
        logging.getLogger("tests.app").info("charged %s", "card", extra={"amount": 3})
    finally:
        reset_request(token)
    record = last(lines)
    assert record["request_id"] == "req-1"
    assert record["trace_id"] == "a" * 32
    assert record["route"] == "/items/{id}"
    assert record["message"] == "charged card"
    assert record["amount"] == 3
    assert record["service"] == "shop"


def test_logs_outside_a_request_have_no_ids(lines: io.StringIO) -> None:
    logging.getLogger("tests.app").warning("startup")
    record = last(lines)
    assert "request_id" not in record
    assert record["level"] == "warning"


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        pytest.param("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop", id="bearer"),
        pytest.param(
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
            "eyJzdWIiOiIxMjMifQ",
            id="jwt",
        ),
        pytest.param("GET https://api.test/x?access_token=hunter2&y=1", "hunter2", id="url-query"),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", id="basic"),
    ],
)
def test_credentials_are_scrubbed_from_messages(
    lines: io.StringIO, message: str, secret: str
) -> None:
    logging.getLogger("tests.app").info(message)
    record = last(lines)
    assert secret not in record["message"]
    assert REDACTED in record["message"]


def test_exceptions_are_rendered_and_scrubbed(lines: io.StringIO) -> None:
    try:
        raise ValueError("bad token Bearer abcdefghijklmnop")
    except ValueError:
        logging.getLogger("tests.app").exception("failed")
    record = last(lines)
    assert "ValueError" in record["exception"]
    assert "abcdefghijklmnop" not in record["exception"]


def test_redactor_masks_sensitive_query_parameters_only() -> None:
    redactor = Redactor(["authorization"], ["token", "password"])
    assert (
        redactor.query("page=2&TOKEN=abc&password=x")
        == f"page=2&TOKEN={REDACTED}&password={REDACTED}"
    )
    assert redactor.query("page=2&q=shoes") == "page=2&q=shoes"


def test_redactor_masks_sensitive_headers() -> None:
    redactor = Redactor(["authorization"], [])
    assert redactor.header("Authorization", "Bearer x") == REDACTED
    assert redactor.header("user-agent", "curl/8") == "curl/8"


def test_records_outside_a_request_carry_the_current_spans_ids() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from sloguard.telemetry.logging import install_record_factory

    install_record_factory()
    tracer = TracerProvider().get_tracer("job")
    with tracer.start_as_current_span("nightly-job") as span:
        record = logging.getLogger("job").makeRecord("job", logging.INFO, "f", 1, "m", (), None)
    context = span.get_span_context()
    assert record.trace_id == format(context.trace_id, "032x")  # type: ignore[attr-defined]
    assert record.span_id == format(context.span_id, "016x")  # type: ignore[attr-defined]
    assert record.request_id == ""  # type: ignore[attr-defined]
