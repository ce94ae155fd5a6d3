"""Django's WSGI and ASGI handlers get the guard stack, with the URLconf's routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

pytest.importorskip("django", reason="django is not installed (dev extra)")

from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from sloguard.inject._hook_django import django_templates  # noqa: E402
from tests.inject.hookapps import django_site  # noqa: E402
from tests.inject.hookapps.support import hooks_installed  # noqa: E402

ORIGINAL_CALLS = (WSGIHandler.__call__, ASGIHandler.__call__)


@pytest.fixture(autouse=True)
def site() -> None:
    django_site.configure()


def test_url_patterns_become_route_templates() -> None:
    assert django_templates(django_site.urlpatterns) == (
        "/items/{item_id:int}",
        "/api/orders/{order_id:uuid}/",
        "/api/files/{name:path}",
    )


def test_wsgi_handler_made_before_the_hook_is_guarded(tmp_path: Path) -> None:
    handler = WSGIHandler()
    with hooks_installed(tmp_path) as hooked:
        client = Client(handler)
        response = client.get("/items/7", buffered=True)
        assert response.status_code == 200
        assert response.headers["x-request-id"] in response.get_data(as_text=True)
        (span,) = hooked.spans(SpanKind.SERVER)
        assert span.name == "GET /items/{item_id:int}"
    assert (WSGIHandler.__call__, ASGIHandler.__call__) == ORIGINAL_CALLS


def test_asgi_handler_is_guarded(tmp_path: Path) -> None:
    handler = ASGIHandler()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            await client.get("/items/3")
            return await client.get("/metrics")

    with hooks_installed(tmp_path) as hooked:
        metrics = asyncio.run(go()).text
        assert 'route="/items/{item_id:int}",status_class="2xx"' in metrics
        assert [s.name for s in hooked.spans(SpanKind.SERVER)] == ["GET /items/{item_id:int}"]
