"""The downstream service of the two-service trace test (settings from SLOGUARD_*)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sloguard import guard


async def stock(request: Request) -> JSONResponse:
    return JSONResponse({"sku": request.path_params["sku"], "in_stock": 3})


app = guard(Starlette(routes=[Route("/stock/{sku}", stock)]))
