from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route, Router, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from sloguard.asgi._routes import templates_from_app
from sloguard.routing import UNMATCHED, RouteTable


async def page(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def socket(websocket: WebSocket) -> None:
    await websocket.close()


def test_a_starlette_app_lists_routes_mounts_and_hosts(tmp_path: Path) -> None:
    users = [Route("/", page), Route("/{user_id:int}", page)]
    app = Starlette(
        routes=[
            Route("/", page),
            WebSocketRoute("/ws/{room}", socket),
            Mount("/users", routes=users),
            Mount("/api", routes=[Mount("/v1", routes=[Route("/items/{item_id}", page)])]),
            Mount("/static", app=StaticFiles(directory=tmp_path)),
            Host("api.example.test", app=Router([Route("/hosted", page)])),
        ]
    )
    assert templates_from_app(app) == (
        "/",
        "/ws/{room}",
        "/users/",
        "/users/{user_id:int}",
        "/api/v1/items/{item_id}",
        "/static/{path:path}",
        "/hosted",
    )


def test_middleware_layers_are_unwrapped() -> None:
    inner = Starlette(routes=[Route("/inside/{n:int}", page)])
    sub = Starlette(routes=[Route("/deep", page)], middleware=[Middleware(GZipMiddleware)])
    app = Starlette(
        routes=[
            Mount("/sub", app=CORSMiddleware(sub, allow_origins=["*"])),
            Mount("/wrapped", app=sub, middleware=[Middleware(GZipMiddleware)]),
            Mount("/", app=inner),
        ]
    )
    wrapped = GZipMiddleware(CORSMiddleware(app, allow_origins=["*"]))
    assert templates_from_app(wrapped) == ("/sub/deep", "/wrapped/deep", "/inside/{n:int}")


def test_a_fastapi_app_lists_nested_routers_with_their_prefixes() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    inner = APIRouter(prefix="/inner")
    inner.add_api_route("/{x}", page)
    outer = APIRouter(prefix="/outer")
    outer.include_router(inner, prefix="/v1")
    outer.add_api_route("/a", page)
    app.include_router(outer, prefix="/api")
    app.add_api_route("/items/{item_id:int}", page)
    app.add_api_websocket_route("/ws", socket)
    sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    sub.add_api_route("/s", page)
    app.mount("/sub", sub)
    assert templates_from_app(app) == (
        "/api/outer/v1/inner/{x}",
        "/api/outer/a",
        "/items/{item_id:int}",
        "/ws",
        "/sub/s",
    )


def test_templates_from_an_app_feed_a_route_table(tmp_path: Path) -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_api_route("/items/{item_id:int}", page)
    app.mount("/static", StaticFiles(directory=tmp_path))
    table = RouteTable(templates_from_app(app))
    assert table.resolve(b"/items/7") == "/items/{item_id:int}"
    assert table.resolve(b"/static/css/site.css") == "/static/{path:path}"
    assert table.resolve(b"/items/x") == UNMATCHED


def test_an_unknown_app_has_no_templates() -> None:
    async def bare_app(scope: object, receive: object, send: object) -> None:
        return None

    class Looping:
        def __init__(self) -> None:
            self.app = self

    assert templates_from_app(bare_app) == ()
    assert templates_from_app(Looping()) == ()
    assert templates_from_app(object()) == ()


def test_a_route_whose_attributes_raise_is_skipped() -> None:
    class Exploding:
        @property
        def path(self) -> str:
            raise RuntimeError("boom")

    app = Starlette(routes=[Route("/kept", page)])
    app.router.routes.append(Exploding())  # type: ignore[arg-type]
    assert templates_from_app(app) == ("/kept",)
