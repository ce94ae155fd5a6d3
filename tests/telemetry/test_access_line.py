"""log_direct writes exactly the line logging would, or leaves the record to logging."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from sloguard.context import RequestContext, bind_request, reset_request
from sloguard.telemetry import logging as sloguard_logging
from sloguard.telemetry.logging import (
    JsonFormatter,
    hex_ids,
    install_record_factory,
    log_direct,
)

CREATED = 1_717_171_717.5  # exact as time_ns() / 1e9 too (3.13 logging)
ARGS = ("GET", "/items/7", 200)
EXTRAS = [
    pytest.param({"http_method": "GET", "status": 200, "duration_ms": 0.327}, id="plain"),
    pytest.param(
        {"query": "page=2&token=[REDACTED]", "client": "127.0.0.1", "user_agent": "curl/8 ü"},
        id="query-and-unicode",
    ),
    pytest.param(
        {"headers": {"referer": "https://shop.test/", "authorization": "[REDACTED]"}},
        id="headers",
    ),
    pytest.param({"error_code": "SHOP_500", "error": "RuntimeError"}, id="error"),
]


@pytest.fixture
def ours_over_stdlib(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Our record factory over the stdlib's, whatever other tests installed."""
    previous = logging.getLogRecordFactory()
    monkeypatch.setattr(sloguard_logging, "_installed", None)
    monkeypatch.setattr(sloguard_logging, "_installed_over", None)
    logging.setLogRecordFactory(logging.LogRecord)
    install_record_factory()
    yield
    logging.setLogRecordFactory(previous)


@pytest.fixture
def access(ours_over_stdlib: None) -> tuple[logging.Logger, io.StringIO]:
    """A logger outside logging's registry: pytest attaches its capture handlers to
    every registered non-propagating logger, which would (rightly) disable the fast path."""
    logger = logging.Logger("tests.access_line", logging.INFO)  # noqa: LOG001 - unregistered
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(static_fields={"service": "shop"}))
    logger.addHandler(handler)
    logger.propagate = False
    return logger, stream


def through_logging(
    logger: logging.Logger, extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: CREATED)
        patched.setattr(time, "time_ns", lambda: int(CREATED * 1e9))
        record = logger.makeRecord(
            logger.name, logging.INFO, "", 0, "%s %s %d", ARGS, None, extra=extra
        )
    logger.handle(record)


def both_lines(
    logger: logging.Logger,
    stream: io.StringIO,
    extra: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    assert log_direct(logger, logging.INFO, "%s %s %d", ARGS, extra, CREATED)
    through_logging(logger, extra, monkeypatch)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("extra", EXTRAS)
def test_direct_line_equals_the_logged_line_inside_a_request_span(
    access: tuple[logging.Logger, io.StringIO],
    extra: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream = access
    tracer = TracerProvider().get_tracer("test")
    token = bind_request(RequestContext("req-1", route="/items/{item_id}"))
    try:
        with tracer.start_as_current_span("GET /items/{item_id}"):
            direct, logged = both_lines(logger, stream, extra, monkeypatch)
    finally:
        reset_request(token)
    assert direct == logged
    assert '"trace_id":"' in direct
    assert '"request_id":"req-1"' in direct


@pytest.mark.parametrize("extra", EXTRAS)
def test_direct_line_equals_the_logged_line_outside_a_request(
    access: tuple[logging.Logger, io.StringIO],
    extra: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream = access
    direct, logged = both_lines(logger, stream, extra, monkeypatch)
    assert direct == logged
    assert "request_id" not in direct


def test_request_ids_are_used_when_no_span_is_current(
    access: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, stream = access
    ctx = RequestContext("req-2", route="/r", trace_id="a" * 32, span_id="b" * 16)
    token = bind_request(ctx)
    try:
        direct, logged = both_lines(logger, stream, {"status": 200}, monkeypatch)
    finally:
        reset_request(token)
    assert direct == logged
    assert f'"trace_id":"{"a" * 32}","span_id":"{"b" * 16}"' in direct


def test_credentials_in_the_message_are_scrubbed_alike(
    access: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, stream = access
    args = ("GET", "/reset?token=hunter2", 200)
    assert log_direct(logger, logging.INFO, "%s %s %d", args, {}, CREATED)
    direct = stream.getvalue().splitlines()[0]
    assert "hunter2" not in direct
    assert "token=[REDACTED]" in direct


def test_every_plain_json_handler_on_the_way_gets_the_line(
    access: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = access
    child = logging.Logger("tests.access_line.child")  # noqa: LOG001 - unregistered
    child.parent = logger
    assert log_direct(child, logging.INFO, "%s %s %d", ARGS, {}, CREATED)
    assert len(stream.getvalue().splitlines()) == 1


def test_a_handler_above_the_level_is_skipped(
    access: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = access
    logger.handlers[0].setLevel(logging.WARNING)
    assert not log_direct(logger, logging.INFO, "%s %s %d", ARGS, {}, CREATED)
    assert stream.getvalue() == ""


def _filtered_handler(logger: logging.Logger) -> None:
    logger.handlers[0].addFilter(lambda record: True)


def _filtered_logger(logger: logging.Logger) -> None:
    logger.addFilter(lambda record: True)


def _plain_formatter(logger: logging.Logger) -> None:
    logger.handlers[0].setFormatter(logging.Formatter())


def _another_handler(logger: logging.Logger) -> None:
    logger.addHandler(logging.NullHandler())


def _foreign_factory(logger: logging.Logger) -> None:
    ours = logging.getLogRecordFactory()

    def wrapped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return ours(*args, **kwargs)

    logging.setLogRecordFactory(wrapped)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_filtered_handler, id="handler-filter"),
        pytest.param(_filtered_logger, id="logger-filter"),
        pytest.param(_plain_formatter, id="other-formatter"),
        pytest.param(_another_handler, id="other-handler"),
        pytest.param(_foreign_factory, id="other-record-factory"),
    ],
)
def test_anything_that_could_see_the_record_leaves_it_to_logging(
    access: tuple[logging.Logger, io.StringIO], change: Any
) -> None:
    logger, stream = access
    change(logger)
    try:
        assert not log_direct(logger, logging.INFO, "%s %s %d", ARGS, {}, CREATED)
    finally:
        logger.filters.clear()
        logger.handlers[1:] = []
    assert stream.getvalue() == ""


def test_hex_ids_follow_the_span_context_asked_for() -> None:
    tracer = TracerProvider().get_tracer("test")
    first = tracer.start_span("a").get_span_context()
    second = tracer.start_span("b").get_span_context()
    for span_ctx in (first, second, first):
        expected = (format(span_ctx.trace_id, "032x"), format(span_ctx.span_id, "016x"))
        assert hex_ids(span_ctx) == expected
