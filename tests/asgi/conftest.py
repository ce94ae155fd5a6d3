"""Guarded test apps, with spans captured in an InMemorySpanExporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from sloguard.asgi import Guard, guard
from sloguard.context import current_request
from sloguard.settings import Settings


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def fail(request: Request) -> Response:
    ctx = current_request()
    assert ctx is not None
    ctx.error_code = "SHOP_500"
    return PlainTextResponse("nope", status_code=503)


async def whoami(request: Request) -> Response:
    ctx = current_request()
    assert ctx is not None
    return JSONResponse(
        {"request_id": ctx.request_id, "trace_id": ctx.trace_id, "route": ctx.route}
    )


async def sub_item(request: Request) -> Response:
    return PlainTextResponse("sub")


def shop_app() -> Starlette:
    sub = Starlette(routes=[Route("/things/{thing_id}", sub_item)])
    return Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/boom", boom),
            Route("/fail", fail),
            Route("/whoami", whoami),
            Mount("/sub", app=sub),
        ]
    )


TRACEPARENT_FIXTURE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def settings_for(tmp_path: Path, **sections: Any) -> Settings:
    data: dict[str, Any] = {
        "service": {"name": "shop"},
        "logging": {"configure_root": False},
        "sli": {"store_path": str(tmp_path / "sli.db"), "slos": [{"name": "availability"}]},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Settings.model_validate(data)


class Harness:
    def __init__(self, guarded: Guard, exporter: InMemorySpanExporter) -> None:
        self.guard = guarded
        self.exporter = exporter

    def request(
        self, method: str, path: str, *, client: str = "127.0.0.1", **kwargs: Any
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.guard, client=(client, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def count(self, route: str, status_class: str, method: str = "GET") -> float:
        value = self.guard.registry.get_sample_value(
            "sloguard_http_requests_total",
            {"method": method, "route": route, "status_class": status_class},
        )
        return value or 0.0


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(app: Any = None, **sections: Any) -> Harness:
        exporter = InMemorySpanExporter()
        guarded = guard(
            app or shop_app(),
            settings_for(tmp_path, **sections),
            span_processors=[SimpleSpanProcessor(exporter)],
        )
        harness = Harness(guarded, exporter)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.guard.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()
