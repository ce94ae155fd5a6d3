"""Starlette and FastAPI applications get the guard stack once, whatever the import order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette  # imported before any hook is installed
from starlette.testclient import TestClient

from sloguard.asgi import guard
from sloguard.inject._explain import Outcome
from tests.inject.hookapps.starlette_apps import fastapi_app, starlette_app
from tests.inject.hookapps.support import hooks_installed, settings_for

ORIGINAL_CALL = Starlette.__call__


def get(app: object, path: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get(path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def server_span_names(hooked) -> list[str]:  # type: ignore[no-untyped-def]
    return [span.name for span in hooked.spans(SpanKind.SERVER)]


def test_app_made_before_the_hook_is_guarded_at_its_first_call(tmp_path: Path) -> None:
    app = starlette_app()
    with hooks_installed(tmp_path) as hooked:
        response = get(app, "/items/7")
        assert response.status_code == 200
        assert "x-request-id" in response.headers
        (span,) = hooked.spans(SpanKind.SERVER)
        assert span.name == "GET /items/{item_id}"


def test_server_span_continues_the_hooked_clients_trace(tmp_path: Path) -> None:
    with hooks_installed(tmp_path) as hooked:
        get(starlette_app(), "/items/7")
        (client,) = hooked.spans(SpanKind.CLIENT)
        (server,) = hooked.spans(SpanKind.SERVER)
        assert server.context.trace_id == client.context.trace_id
        assert server.parent is not None
        assert server.parent.span_id == client.context.span_id


def test_fastapi_subclass_is_guarded_with_its_route_templates(tmp_path: Path) -> None:
    with hooks_installed(tmp_path) as hooked:
        app = fastapi_app()
        assert get(app, "/orders/3").json() == {"order": 3}
        metrics = get(app, "/metrics").text
        assert 'route="/orders/{order_id}"' in metrics
        assert server_span_names(hooked) == ["GET /orders/{order_id}"]


def test_app_the_user_guarded_is_not_guarded_twice(tmp_path: Path) -> None:
    app = starlette_app()
    with hooks_installed(tmp_path) as hooked:
        guarded = guard(app, settings_for(tmp_path))
        try:
            with TestClient(guarded) as client:
                assert client.get("/items/1").status_code == 200
        finally:
            guarded.close()
        label = "starlette.applications.Starlette instance"
        assert hooked.outcome(label) == (
            Outcome.SKIPPED,
            "already wrapped by guard() in the application",
        )
        assert hooked.installation.guards() == ()


def test_mounted_app_passes_through_to_the_outer_guard(tmp_path: Path) -> None:
    with hooks_installed(tmp_path) as hooked:
        assert get(starlette_app(), "/sub/things/4").text == "thing 4"
        assert server_span_names(hooked) == ["GET /sub/things/{thing_id}"]


def test_lifespan_runs_through_the_guard_and_closes_it(tmp_path: Path) -> None:
    events: list[str] = []
    app = starlette_app(events)
    with hooks_installed(tmp_path) as hooked:
        with TestClient(app) as client:
            assert client.get("/whoami").json()["request_id"]
        assert events == ["startup", "shutdown"]
        (guarded,) = hooked.installation.guards()
        assert guarded.stack._closed


def test_framework_left_out_of_the_settings_is_served_unguarded(tmp_path: Path) -> None:
    with hooks_installed(tmp_path, inject={"frameworks": ["starlette"]}) as hooked:
        assert get(fastapi_app(), "/orders/3").status_code == 200
        assert not hooked.spans(SpanKind.SERVER)
        outcome = hooked.outcome("fastapi.applications.FastAPI instance")
        assert outcome == (Outcome.SKIPPED, "'fastapi' is not in inject.frameworks")


def test_undo_restores_the_class_and_forgets_the_app(tmp_path: Path) -> None:
    app = starlette_app()
    with hooks_installed(tmp_path):
        get(app, "/items/1")
        assert "_sloguard_entry" in vars(app)
    assert Starlette.__call__ is ORIGINAL_CALL
    assert "_sloguard_entry" not in vars(app)


@pytest.mark.parametrize("frameworks", [["flask"], []], ids=["flask-only", "none"])
def test_hook_is_not_installed_when_both_names_are_left_out(
    tmp_path: Path, frameworks: list[str]
) -> None:
    with hooks_installed(tmp_path, inject={"frameworks": frameworks}) as hooked:
        assert Starlette.__call__ is ORIGINAL_CALL
        assert hooked.outcome("starlette.applications.Starlette")[0] is Outcome.SKIPPED  # type: ignore[index]


def test_hooked_guard_brings_the_auth_the_settings_enable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('version: 1\npublic:\n  - {route: "/whoami"}\n')
    monkeypatch.setenv("HOOK_JWT_SECRET", "s" * 48)
    auth = {
        "enabled": True,
        "static_keys": [{"env": "HOOK_JWT_SECRET", "algorithms": ["HS256"]}],
        "policy": {"file": str(policy), "poll_interval_s": 60},
    }
    with hooks_installed(tmp_path, auth=auth), TestClient(starlette_app()) as client:
        assert client.get("/whoami").status_code == 200
        denied = client.get("/items/1")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
