"""A tiny Starlette service for the live-probe tests: a repository, an async loader, /metrics.

It starts the probe control server itself at import (``sloguard run`` does
that for real services), in ``$SLOGUARD_INJECT__PROBES__SOCKET_DIR``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sloguard.inject._control import start_control_server
from sloguard.settings._inject_probes import ProbeSettings
from sloguard.telemetry.logging import JsonFormatter


class Repo:
    def get(self, key: str, password: str = "") -> dict[str, str]:
        return {"key": key, "value": key.upper()}


async def load(key: str) -> str:
    await asyncio.sleep(0)
    return key[::-1]


REPO = Repo()
ORIGINAL_CODES = {"Repo.get": Repo.get.__code__, "load": load.__code__}


async def item(request: Request) -> JSONResponse:
    key = request.path_params["key"]
    found = REPO.get(key, password="hunter2")
    found["loaded"] = await load(key)
    return JSONResponse(found)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def codes(request: Request) -> JSONResponse:
    current = {"Repo.get": Repo.get.__code__, "load": load.__code__}
    return JSONResponse({name: current[name] is code for name, code in ORIGINAL_CODES.items()})


app = Starlette(
    routes=[
        Route("/items/{key}", item),
        Route("/metrics", metrics),
        Route("/codes", codes),
    ]
)
_calls = logging.StreamHandler()
_calls.setFormatter(JsonFormatter())
logging.getLogger("sloguard.probe.calls").addHandler(_calls)
logging.getLogger("sloguard.probe.calls").setLevel(logging.INFO)
start_control_server(
    ProbeSettings(socket_dir=Path(os.environ["SLOGUARD_INJECT__PROBES__SOCKET_DIR"]))
)
