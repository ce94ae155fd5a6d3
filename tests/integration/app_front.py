"""The upstream service: calls app_back through an httpx client with propagation."""

import os

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sloguard import AsyncTracedTransport, guard


async def product(request: Request) -> JSONResponse:
    sku = request.path_params["sku"]
    async with httpx.AsyncClient(transport=AsyncTracedTransport(), trust_env=False) as client:
        response = await client.get(f"{os.environ['BACK_URL']}/stock/{sku}")
    return JSONResponse({"sku": sku, "stock": response.json()["in_stock"]})


app = guard(Starlette(routes=[Route("/products/{sku}", product)]))
