"""Flask applications get guard_wsgi() once, whatever the import order."""

from __future__ import annotations

from pathlib import Path

from flask import Flask  # imported before any hook is installed
from opentelemetry.trace import SpanKind
from werkzeug.test import EnvironBuilder, run_wsgi_app

from sloguard.asgi import guard_wsgi
from sloguard.inject._explain import Outcome
from tests.inject.hookapps.flask_apps import flask_app
from tests.inject.hookapps.support import TRACE_ID, TRACEPARENT, hooks_installed, settings_for

ORIGINAL_CALL = Flask.__call__
USER_GUARDED = (Outcome.SKIPPED, "already wrapped by guard() in the application")


def test_app_made_before_the_hook_is_guarded_at_its_first_call(tmp_path: Path) -> None:
    app = flask_app()
    with hooks_installed(tmp_path) as hooked:
        client = app.test_client()
        response = client.get("/items/7", headers={"traceparent": TRACEPARENT}, buffered=True)
        assert response.status_code == 200
        assert response.headers["x-request-id"] in response.get_data(as_text=True)
        (span,) = hooked.spans(SpanKind.SERVER)
        assert span.name == "GET /items/{item_id:int}"
        assert format(span.context.trace_id, "032x") == TRACE_ID
        assert 'route="/items/{item_id:int}"' in client.get("/metrics").get_data(as_text=True)


def test_app_whose_wsgi_app_the_user_guarded_is_not_guarded_twice(tmp_path: Path) -> None:
    app = flask_app()
    with hooks_installed(tmp_path) as hooked:
        app.wsgi_app = guarded = guard_wsgi(app.wsgi_app, settings_for(tmp_path))  # type: ignore[method-assign]
        try:
            assert app.test_client().get("/items/1", buffered=True).status_code == 200
        finally:
            guarded.close()
        assert hooked.outcome("flask.app.Flask instance") == USER_GUARDED
        assert hooked.installation.guards() == ()


def test_app_the_user_guarded_whole_is_not_guarded_twice(tmp_path: Path) -> None:
    app = flask_app()
    with hooks_installed(tmp_path) as hooked:
        guarded = guard_wsgi(app, settings_for(tmp_path))
        try:
            status, _, _ = run_wsgi(guarded, "/items/1")
        finally:
            guarded.close()
        assert status.startswith("200")
        # the request was observed already when it reached Flask: straight through
        assert hooked.installation.guards() == ()
        assert "_sloguard_entry" not in vars(app)


def test_undo_restores_the_class_and_forgets_the_app(tmp_path: Path) -> None:
    app = flask_app()
    with hooks_installed(tmp_path):
        app.test_client().get("/items/1", buffered=True)
        assert "_sloguard_entry" in vars(app)
    assert Flask.__call__ is ORIGINAL_CALL
    assert "_sloguard_entry" not in vars(app)


def run_wsgi(app, path: str):  # type: ignore[no-untyped-def]
    environ = EnvironBuilder(path=path).get_environ()
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return status, headers, b"".join(body)
