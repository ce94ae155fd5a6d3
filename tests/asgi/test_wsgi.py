"""The same observation for WSGI apps (Flask)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from werkzeug.test import Client

from sloguard.asgi import WSGIGuard, guard_wsgi
from sloguard.context import current_request
from sloguard.store import SQLiteStore
from tests.asgi.conftest import TRACEPARENT_FIXTURE, settings_for


def flask_app() -> Flask:
    app = Flask("shop")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        ctx = current_request()
        assert ctx is not None
        logging.getLogger("shop").info("item %s", item_id)
        return f"item {item_id} {ctx.request_id}"

    @app.get("/stream")
    def stream():  # type: ignore[no-untyped-def]
        return app.response_class((b"x" * 10 for _ in range(3)), mimetype="text/plain")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app


class _BufferedClient(Client):
    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def wsgi(tmp_path: Path):  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    guarded = guard_wsgi(
        flask_app(), settings_for(tmp_path), span_processors=[SimpleSpanProcessor(exporter)]
    )
    # buffered: werkzeug then consumes and closes the body, as a real server does.
    yield guarded, exporter, _BufferedClient(guarded)
    guarded.close()


def count(guarded: WSGIGuard, route: str, status_class: str) -> float:
    labels = {"method": "GET", "route": route, "status_class": status_class}
    return guarded.registry.get_sample_value("sloguard_http_requests_total", labels) or 0.0


def test_flask_routes_become_templates_in_metrics_and_spans(wsgi) -> None:  # type: ignore[no-untyped-def]
    guarded, exporter, client = wsgi
    response = client.get(
        "/items/7",
        headers={"traceparent": TRACEPARENT_FIXTURE},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.status_code == 200
    assert count(guarded, "/items/{item_id:int}", "2xx") == 1
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /items/{item_id:int}"
    assert format(span.context.trace_id, "032x") == TRACEPARENT_FIXTURE.split("-")[1]
    assert response.headers["x-request-id"] in response.get_data(as_text=True)


def test_streamed_body_is_counted_when_closed(wsgi) -> None:  # type: ignore[no-untyped-def]
    guarded, _, client = wsgi
    assert client.get("/stream").get_data() == b"x" * 30
    labels = {"method": "GET", "route": "/stream"}
    assert guarded.registry.get_sample_value("sloguard_http_response_size_bytes_sum", labels) == 30


def test_flask_error_handler_500_is_counted(wsgi) -> None:  # type: ignore[no-untyped-def]
    guarded, _, client = wsgi
    assert client.get("/boom").status_code == 500
    assert count(guarded, "/boom", "5xx") == 1


def test_wsgi_sli_counts_reach_the_store(wsgi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    guarded, _, client = wsgi
    for _ in range(3):
        client.get("/items/1")
    client.get("/boom")
    guarded.close()
    store = SQLiteStore(tmp_path / "sli.db")
    assert store.totals("availability", 0, 2**40) == (3, 4)
    store.close()


def test_wsgi_serves_metrics(wsgi) -> None:  # type: ignore[no-untyped-def]
    guarded, _, client = wsgi
    client.get("/items/1")
    assert "sloguard_http_requests_total" in client.get("/metrics").get_data(as_text=True)


def test_nothing_stays_bound_when_the_server_never_closes_the_body(wsgi) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry import trace

    guarded, _, _ = wsgi
    unclosed = Client(guarded)  # not buffered: the body is never iterated nor closed
    unclosed.get("/items/1")
    assert current_request() is None
    assert not trace.get_current_span().get_span_context().is_valid


def test_streamed_body_logs_carry_the_request_context(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    app = Flask("stream")

    @app.get("/s")
    def stream():  # type: ignore[no-untyped-def]
        def body():  # type: ignore[no-untyped-def]
            logging.getLogger("shop").info("chunk")
            yield b"x"

        return app.response_class(body())

    guarded = guard_wsgi(app, settings_for(tmp_path))
    caplog.set_level(logging.INFO)
    response = _BufferedClient(guarded).get("/s", headers={"x-request-id": "stream-1"})
    assert response.get_data() == b"x"
    (chunk,) = [r for r in caplog.records if r.getMessage() == "chunk"]
    assert chunk.request_id == "stream-1"
    guarded.close()
