"""The auth gate: one request's authentication and authorization, sans framework.

The ASGI and WSGI middleware (``sloguard.asgi.auth``) and the FastAPI
dependency call :meth:`AuthGate.authorize` (or ``authorize_sync`` from WSGI
threads) with what the request carries. The gate reads the policy snapshot in
force *once* per request (so a reload mid-request changes nothing for it),
runs the deny and public rules before looking at any token, verifies the
token, maps its claims to a :class:`Principal`, checks tenancy and RBAC
through the decision cache, and returns an :class:`AuthResult` — or raises the
:class:`AuthError` whose code the client will see.

Without a policy source the gate authenticates every request and allows any
verified principal (authentication only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sloguard.auth._claims import ClaimsMapping
from sloguard.auth._decision import Decision, DecisionCache, PolicySnapshot
from sloguard.auth._errors import (
    AuthError,
    MissingToken,
    PermissionDenied,
    RouteDenied,
    TenantMismatch,
)
from sloguard.auth._principal import Principal
from sloguard.auth._tokens import extract_token
from sloguard.auth._verify import TokenVerifier

__all__ = ["AuthGate", "AuthResult", "decision_error"]

_ERRORS: dict[str, type[AuthError]] = {
    "AUTH_101": MissingToken,
    "AUTH_201": PermissionDenied,
    "AUTH_202": RouteDenied,
    "AUTH_301": TenantMismatch,
}


def decision_error(decision: Decision) -> AuthError:
    """The exception a refusing decision is reported as."""
    error = _ERRORS.get(decision.code or "AUTH_201", PermissionDenied)
    return error(decision.reason)


@dataclass(frozen=True, slots=True)
class AuthResult:
    principal: Principal | None  # None on a public route
    tenant: str | None
    decision: Decision | None  # None when no policy is configured


class AuthGate:
    def __init__(
        self,
        verifier: TokenVerifier,
        claims: ClaimsMapping,
        policy: Callable[[], PolicySnapshot] | None,
        *,
        cookie_name: str | None = None,
        allow_query: bool = False,
        query_param: str = "access_token",
        max_token_bytes: int = 8192,
        route_permissions: Mapping[str, str] | None = None,
        cache: DecisionCache | None = None,
    ) -> None:
        self.verifier = verifier
        self.claims = claims
        self.policy = policy
        self.cookie_name = cookie_name
        self.allow_query = allow_query
        self.query_param = query_param
        self.max_token_bytes = max_token_bytes
        self.route_permissions = dict(route_permissions or {})
        self.cache = cache or DecisionCache()

    def tenant_header(self) -> str | None:
        if self.policy is None:
            return None
        return self.policy().tenancy.header

    def _before_token(
        self,
        snapshot: PolicySnapshot | None,
        method: str,
        route: str,
        raw_path: bytes,
        headers: Mapping[str, str],
    ) -> tuple[str | None, Decision | None]:
        if snapshot is None:
            return None, None
        header = snapshot.tenancy.header
        tenant = snapshot.tenant_of(route, raw_path, header=headers.get(header) if header else None)
        decision = self.cache.decide(snapshot, None, method, route, raw_path, tenant=tenant)
        if decision.code == "AUTH_101":  # authentication required: go on to the token
            return tenant, None
        if not decision.allowed:
            raise decision_error(decision)
        return tenant, decision  # public

    def _after_token(
        self,
        snapshot: PolicySnapshot | None,
        principal: Principal,
        method: str,
        route: str,
        raw_path: bytes,
        tenant: str | None,
    ) -> AuthResult:
        if snapshot is None:
            return AuthResult(principal, principal.tenant, None)
        decision = self.cache.decide(
            snapshot,
            principal,
            method,
            route,
            raw_path,
            tenant=tenant,
            required_permission=self.route_permissions.get(route),
        )
        if not decision.allowed:
            raise decision_error(decision)
        return AuthResult(principal, tenant if tenant is not None else principal.tenant, decision)

    def _token(self, headers: Mapping[str, str], query: bytes) -> str:
        return extract_token(
            headers,
            query,
            cookie_name=self.cookie_name,
            allow_query=self.allow_query,
            query_param=self.query_param,
            max_bytes=self.max_token_bytes,
        )

    async def authorize(
        self, method: str, route: str, raw_path: bytes, headers: Mapping[str, str], query: bytes
    ) -> AuthResult:
        snapshot = self.policy() if self.policy is not None else None
        tenant, public = self._before_token(snapshot, method, route, raw_path, headers)
        if public is not None:
            return AuthResult(None, tenant, public)
        claims = await self.verifier.verify(self._token(headers, query))
        principal = self.claims.to_principal(claims)
        return self._after_token(snapshot, principal, method, route, raw_path, tenant)

    def authorize_sync(
        self, method: str, route: str, raw_path: bytes, headers: Mapping[str, str], query: bytes
    ) -> AuthResult:
        snapshot = self.policy() if self.policy is not None else None
        tenant, public = self._before_token(snapshot, method, route, raw_path, headers)
        if public is not None:
            return AuthResult(None, tenant, public)
        claims = self.verifier.verify_sync(self._token(headers, query))
        principal = self.claims.to_principal(claims)
        return self._after_token(snapshot, principal, method, route, raw_path, tenant)
