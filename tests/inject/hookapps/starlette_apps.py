"""Starlette and FastAPI applications with no sloguard in their code."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from sloguard.context import current_request

log = logging.getLogger("hookapps.starlette")


async def item(request: Request) -> PlainTextResponse:
    log.info("serving item %s", request.path_params["item_id"])
    return PlainTextResponse(f"item {request.path_params['item_id']}")


async def thing(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"thing {request.path_params['thing_id']}")


async def whoami(request: Request) -> JSONResponse:
    ctx = current_request()
    return JSONResponse({"request_id": ctx.request_id if ctx else None})


def starlette_app(events: list[str] | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        (events if events is not None else []).append("startup")
        yield
        (events if events is not None else []).append("shutdown")

    inner = Starlette(routes=[Route("/things/{thing_id}", thing)])
    return Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/whoami", whoami),
            Mount("/sub", app=inner),
        ],
        lifespan=lifespan,
    )


def fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> dict[str, int]:
        return {"order": order_id}

    return app
