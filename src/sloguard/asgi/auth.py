"""The auth middleware: thin ASGI/WSGI wiring of :class:`sloguard.auth.AuthGate`.

It sits inside the observe layer, so the request context (request id, route
template) is already bound: the principal and tenant it establishes land in
that context (and on the server span), and a denial is observed like any other
response — counted by code and route, logged with the request id, and
answered as RFC 9457 problem+json with ``WWW-Authenticate`` on a 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter

from sloguard.asgi._types import ASGIApp, Receive, Scope, Send
from sloguard.auth import AuthError
from sloguard.auth._gate import AuthGate, AuthResult
from sloguard.context import current_request
from sloguard.errors import problem_body, problem_response_headers
from sloguard.routing import UNMATCHED

__all__ = ["AuthMetrics", "AuthMiddleware", "WSGIAuthMiddleware", "auth_problem"]

log = logging.getLogger("sloguard.auth")


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.denials = Counter(
            "sloguard_auth_denials",
            "Requests refused by authentication or authorization, by code and route template.",
            ("code", "route"),
            registry=registry,
        )

    def denied(self, code: str, route: str) -> None:
        self.denials.labels(code, route).inc()


def auth_problem(
    error: AuthError, request_id: str | None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the problem document for ``error``."""
    body = problem_body(error.code, error.detail, request_id=request_id)
    headers = problem_response_headers(body)
    challenge = error.www_authenticate
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode("latin-1", "replace")))
    return error.status, headers, body


def record_result(result: AuthResult, *, on_span: bool) -> None:
    """Put the principal and tenant in the request context (and on the span)."""
    ctx = current_request()
    if ctx is not None:
        ctx.principal = result.principal
        ctx.tenant = result.tenant
    principal = result.principal
    if on_span and principal is not None:
        span = trace.get_current_span()
        if span.is_recording():
            attributes: dict[str, Any] = {"enduser.id": principal.subject}
            if principal.roles:
                attributes["enduser.role"] = ",".join(sorted(principal.roles))
            if result.tenant:
                attributes["sloguard.tenant"] = result.tenant
            span.set_attributes(attributes)


def record_denial(error: AuthError, route: str, metrics: AuthMetrics | None) -> str | None:
    """Count and log a denial; mark the request's error code. Returns the request id."""
    ctx = current_request()
    if ctx is not None:
        ctx.error_code = error.code
    if metrics is not None:
        metrics.denied(error.code, route)
    log.warning(
        "request refused: %s", error.code, extra={"code": error.code, "reason": error.detail}
    )
    return ctx.request_id if ctx is not None else None


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        gate: AuthGate,
        *,
        metrics: AuthMetrics | None = None,
        principal_on_span: bool = True,
        header_names: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.gate = gate
        self.metrics = metrics
        self.principal_on_span = principal_on_span
        self._wanted = frozenset({b"authorization", b"cookie", *(h.encode() for h in header_names)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        wanted = self._wanted
        tenant_header = self.gate.tenant_header()
        extra = tenant_header.encode("latin-1") if tenant_header else None
        for name, value in scope["headers"]:
            if name in wanted or name == extra:
                key = name.decode("latin-1")
                text = value.decode("latin-1")
                previous = headers.get(key)
                headers[key] = text if previous is None else f"{previous}, {text}"
        ctx = current_request()
        route = ctx.route if ctx is not None and ctx.route else UNMATCHED
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            result = await self.gate.authorize(
                scope["method"], route, raw_path, headers, scope.get("query_string", b"")
            )
        except AuthError as error:
            request_id = record_denial(error, route, self.metrics)
            status, response_headers, body = auth_problem(error, request_id)
            await send(
                {"type": "http.response.start", "status": status, "headers": response_headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        record_result(result, on_span=self.principal_on_span)
        await self.app(scope, receive, send)


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_STATUS_LINES = {401: "401 Unauthorized", 403: "403 Forbidden"}


class WSGIAuthMiddleware:
    """The same gate for WSGI apps; runs inside :class:`~sloguard.asgi.WSGIGuard`."""

    def __init__(
        self,
        app: WSGIApp,
        gate: AuthGate,
        *,
        metrics: AuthMetrics | None = None,
        principal_on_span: bool = True,
    ) -> None:
        self.app = app
        self.gate = gate
        self.metrics = metrics
        self.principal_on_span = principal_on_span

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers: dict[str, str] = {}
        if (value := environ.get("HTTP_AUTHORIZATION")) is not None:
            headers["authorization"] = value
        if (value := environ.get("HTTP_COOKIE")) is not None:
            headers["cookie"] = value
        tenant_header = self.gate.tenant_header()
        if tenant_header:
            key = "HTTP_" + tenant_header.upper().replace("-", "_")
            if (value := environ.get(key)) is not None:
                headers[tenant_header] = value
        ctx = current_request()
        route = ctx.route if ctx is not None and ctx.route else UNMATCHED
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        path = (
            raw.split("?", 1)[0]
            if raw
            else environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
        )
        query = environ.get("QUERY_STRING", "").encode("latin-1", "replace")
        try:
            result = self.gate.authorize_sync(
                environ.get("REQUEST_METHOD", "GET"),
                route,
                path.encode("latin-1", "replace"),
                headers,
                query,
            )
        except AuthError as error:
            request_id = record_denial(error, route, self.metrics)
            status, response_headers, body = auth_problem(error, request_id)
            start_response(
                _STATUS_LINES.get(status, str(status)),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response_headers],
            )
            return [body]
        record_result(result, on_span=self.principal_on_span)
        return self.app(environ, start_response)
