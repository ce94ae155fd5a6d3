"""The observe middleware: pure ASGI wiring of :class:`Observer`.

HTTP scopes are observed; websocket and lifespan scopes pass straight through
(lifespan is only watched, so the guard can flush on ``lifespan.shutdown``).
The response is observed by wrapping ``send``; per-request state lives in
locals. No per-message spans.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sloguard.asgi._observer import CLIENT_CLOSED_REQUEST, Observer
from sloguard.asgi._types import ASGIApp, Message, Receive, Scope, Send
from sloguard.routing import UNMATCHED

__all__ = ["ObserveMiddleware"]


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        self.app = app
        self.observer = observer
        self._interesting = frozenset(n.encode("latin-1") for n in observer.interesting)
        self._echo = observer.echo_request_id
        self._request_id_header = observer.request_id_header.encode("latin-1")
        self._max_header = observer.max_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        observer = self.observer
        interesting = self._interesting
        max_header = self._max_header
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in interesting and len(value) <= max_header:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                previous = headers.get(key)
                headers[key] = text if previous is None else f"{previous},{text}"
        client = scope.get("client")
        server = scope.get("server")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        obs = observer.begin(
            scope["method"],
            raw_path,
            scope.get("query_string", b""),
            headers,
            client[0] if client else None,
            scope.get("scheme", "http"),
            (server[0], server[1]) if server else None,
            scope.get("http_version", "1.1"),
        )
        status = 0
        size = 0
        echo = self._echo
        request_id_header = (
            (self._request_id_header, obs.request_id.encode("latin-1")) if echo else None
        )

        async def observed_send(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                if echo:
                    message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, observed_send)
        except asyncio.CancelledError as exc:
            error = exc
            if status == 0:
                status = CLIENT_CLOSED_REQUEST
            raise
        except Exception as exc:
            error = exc
            if status == 0:
                status = 500
            raise
        finally:
            # the framework's template only matters when ours did not match
            template = _matched_template(scope) if obs.route == UNMATCHED else None
            observer.end(obs, status or 500, size, error, template)


def _matched_template(scope: Scope) -> str | None:
    """The route template the framework matched (Starlette/FastAPI set scope['route'])."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        root = scope.get("root_path", "")
        return path if not root or path.startswith(root) else root + path
    return None
