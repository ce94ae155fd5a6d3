"""Auth as FastAPI dependencies, with or without the guard middleware.

Behind ``guard()`` with ``auth.enabled`` the middleware has already verified
the token and decided; :class:`Authenticated` then just hands the endpoint
the :class:`~sloguard.auth.Principal`. On its own — a FastAPI app that only
wants authentication and RBAC on some endpoints — build it from settings and
it runs the same gate itself::

    auth = Authenticated.from_settings(load_settings().auth)

    @app.get("/orders/{order_id}")
    async def order(order_id: str, principal: Principal = Depends(auth)): ...

    @app.get("/reports")
    async def reports(principal: Principal = Depends(auth.requiring("reports:read"))): ...

Denials raise :class:`~sloguard.auth.AuthError`; :func:`add_problem_handlers`
renders them as problem+json (with ``WWW-Authenticate`` on 401), the format of
every other sloguard error. This module imports Starlette (FastAPI's base).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sloguard.asgi._auth_build import build_gate
from sloguard.asgi.auth import auth_problem, record_denial, record_result
from sloguard.auth import AuthError, MissingToken, PolicySnapshot, Principal
from sloguard.auth._gate import AuthGate
from sloguard.auth._policy import load_policy
from sloguard.context import current_request
from sloguard.errors import SloguardHTTPError, problem_body, problem_response_headers
from sloguard.routing import UNMATCHED
from sloguard.settings import AuthSettings

__all__ = ["Authenticated", "add_problem_handlers"]


class Authenticated:
    """A FastAPI dependency returning the request's verified :class:`Principal`."""

    def __init__(self, gate: AuthGate | None = None, *, permission: str | None = None) -> None:
        self.gate = gate
        self.permission = permission
        self._per_route: dict[str, AuthGate] = {}

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticated:
        """A standalone dependency: keys, claims and the policy file from ``settings``."""
        policy_file = settings.policy.file
        snapshot: PolicySnapshot | None = None
        if policy_file is not None:
            snapshot = load_policy(policy_file.read_bytes(), source=str(policy_file))
        frozen = snapshot
        return cls(build_gate(settings, (lambda: frozen) if frozen is not None else None))

    def requiring(self, permission: str) -> Authenticated:
        """The same dependency, also requiring a named permission."""
        return Authenticated(self.gate, permission=permission)

    async def __call__(self, request: Request) -> Principal:
        ctx = current_request()
        if self.gate is None:
            # Behind the guard: the middleware decided already.
            if ctx is None or ctx.principal is None:
                raise MissingToken("this endpoint needs an authenticated principal")
            return ctx.principal  # type: ignore[no-any-return]
        scope = request.scope
        route_object = scope.get("route")
        route = getattr(route_object, "path", None) or (ctx.route if ctx else UNMATCHED)
        gate = self.gate
        if self.permission is not None:
            per_route = self._per_route.get(route)
            if per_route is None:
                per_route = self._per_route[route] = _with_permission(gate, route, self.permission)
            gate = per_route
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
        tenant_header = gate.tenant_header()
        if tenant_header and tenant_header in request.headers:
            headers[tenant_header] = request.headers[tenant_header]
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            result = await gate.authorize(
                request.method, route, raw_path, headers, scope.get("query_string", b"")
            )
        except AuthError as error:
            record_denial(error, route, None)
            raise
        record_result(result, on_span=True)
        if result.principal is None:  # a public route: still an authenticated dependency
            raise MissingToken("this endpoint needs an authenticated principal")
        return result.principal


def _with_permission(gate: AuthGate, route: str, permission: str) -> AuthGate:
    if gate.route_permissions.get(route) == permission:
        return gate
    return AuthGate(
        gate.verifier,
        gate.claims,
        gate.policy,
        cookie_name=gate.cookie_name,
        allow_query=gate.allow_query,
        query_param=gate.query_param,
        max_token_bytes=gate.max_token_bytes,
        route_permissions={**gate.route_permissions, route: permission},
        cache=gate.cache,
    )


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    ctx = current_request()
    status, headers, body = auth_problem(exc, ctx.request_id if ctx else None)
    return Response(
        body,
        status_code=status,
        headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
    )


async def _sloguard_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SloguardHTTPError)
    ctx = current_request()
    request_id = None
    if ctx is not None:
        ctx.error_code = exc.code
        request_id = ctx.request_id
    body = problem_body(exc.code, exc.detail, request_id=request_id)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in problem_response_headers(body)}
    headers.update(exc.headers)
    return Response(body, status_code=exc.status, headers=headers)


def add_problem_handlers(app: object) -> None:
    """Render sloguard's errors raised in endpoints or dependencies as problem+json:
    :class:`AuthError`, and every :class:`SloguardHTTPError` (an open breaker's
    ``BreakerOpenError`` is answered ``BRK_503`` with ``Retry-After``)."""
    add = getattr(app, "add_exception_handler", None)
    if add is None:
        raise TypeError("add_problem_handlers needs a Starlette or FastAPI application")
    add(AuthError, _problem)
    add(SloguardHTTPError, _sloguard_problem)
