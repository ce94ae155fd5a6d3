"""Admin endpoints under ``admin.path_prefix`` (default ``/-/sloguard``).

* ``GET  …/sampling``  the sampling ratios in force
* ``PUT  …/sampling``  new ratios, JSON ``{"ratio": 0.1, "route_ratios": {"/search": 1.0}}``
* ``POST …/reload``    re-read ``sloguard.yaml`` and apply what can change live

Only callers from ``admin.allowed_sources`` (loopback by default) are served;
others get ``ADM_403``. The endpoints change how the service is *observed*,
never what it serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sloguard.asgi._observer import SourceNetworks
from sloguard.asgi._types import Receive, Scope, Send
from sloguard.context import new_request_id
from sloguard.errors import lookup, problem_body, problem_response_headers
from sloguard.settings import AdminSettings
from sloguard.settings._base import Ratio
from sloguard.telemetry.sampling import RouteRatioSampler, SamplingConfig

__all__ = ["AdminEndpoints"]

_MAX_BODY = 64 * 1024


class _SamplingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratio: Ratio
    route_ratios: dict[str, Ratio] = {}


class AdminEndpoints:
    def __init__(
        self,
        settings: AdminSettings,
        sampler: RouteRatioSampler | None,
        reload: Callable[[], dict[str, Any]],
    ) -> None:
        self.prefix = settings.path_prefix.rstrip("/")
        self.allowed = SourceNetworks(settings.allowed_sources)
        self.sampler = sampler
        self.reload = reload

    def handles(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if (client[0] if client else None) not in self.allowed:
            await _problem(send, "ADM_403", "admin endpoints answer only allowed source addresses")
            return
        action = scope["path"][len(self.prefix) :]
        method = scope["method"]
        if action == "/sampling" and method == "GET":
            await _json(send, 200, self._sampling())
        elif action == "/sampling" and method == "PUT":
            await self._put_sampling(receive, send)
        elif action == "/reload" and method == "POST":
            try:
                result = self.reload()
            except Exception as exc:  # a bad file keeps the running settings
                await _problem(send, "ADM_400", f"reload rejected, previous settings kept: {exc}")
                return
            await _json(send, 200, result)
        elif action in {"/sampling", "/reload"}:
            await _problem(send, "ADM_405", f"{method} is not allowed on {action}")
        else:
            await _problem(send, "ADM_404", f"no admin endpoint {action or '/'}")

    def _sampling(self) -> dict[str, Any]:
        if self.sampler is None:
            return {"enabled": False}
        config = self.sampler.config
        return {"enabled": True, "ratio": config.ratio, "route_ratios": dict(config.route_ratios)}

    async def _put_sampling(self, receive: Receive, send: Send) -> None:
        if self.sampler is None:
            await _problem(send, "ADM_400", "tracing is disabled")
            return
        body = await _read_body(receive)
        if body is None:
            await _problem(send, "ADM_400", f"body larger than {_MAX_BODY} bytes")
            return
        try:
            update = _SamplingUpdate.model_validate_json(body)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            await _problem(send, "ADM_400", detail)
            return
        self.sampler.update(SamplingConfig(update.ratio, update.route_ratios))
        await _json(send, 200, self._sampling())


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, code: str, detail: str) -> None:
    body = problem_body(code, detail, request_id=new_request_id())
    status = lookup(code).status
    await send(
        {"type": "http.response.start", "status": status, "headers": problem_response_headers(body)}
    )
    await send({"type": "http.response.body", "body": body})
