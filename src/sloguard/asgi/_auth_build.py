"""Build the auth parts from the ``auth`` settings section (wiring only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sloguard.auth._claims import ClaimsMapping
from sloguard.auth._decision import PolicySnapshot
from sloguard.auth._gate import AuthGate
from sloguard.auth._keys import JWKSClient, KeySet, StaticKey
from sloguard.auth._verify import TokenVerifier
from sloguard.settings import AuthSettings

__all__ = ["build_gate", "build_verifier"]


def build_verifier(settings: AuthSettings) -> TokenVerifier:
    static = [
        StaticKey.from_file(k.file, kid=k.kid, algorithms=k.algorithms)
        if k.file is not None
        else StaticKey.from_env(k.env or "", kid=k.kid, algorithms=k.algorithms)
        for k in settings.static_keys
    ]
    sources: list[KeySet | JWKSClient] = []
    if static:
        sources.append(KeySet(static))
    sources.extend(
        JWKSClient(
            j.url,
            algorithms=j.algorithms,
            ttl_s=j.ttl_s,
            min_refetch_interval_s=j.min_refetch_interval_s,
            timeout_s=j.timeout_s,
        )
        for j in settings.jwks
    )
    return TokenVerifier(
        sources,
        issuers=settings.issuers,
        audiences=settings.audiences,
        leeway_s=settings.leeway_s,
        max_future_iat_s=settings.max_future_iat_s,
        required_claims=settings.required_claims,
        max_token_bytes=settings.max_token_bytes,
        cache_size=settings.token_cache_size,
    )


def build_gate(
    settings: AuthSettings,
    policy: Callable[[], PolicySnapshot] | None,
    *,
    verifier: TokenVerifier | None = None,
    route_permissions: Mapping[str, str] | None = None,
) -> AuthGate:
    claims = settings.claims
    return AuthGate(
        verifier or build_verifier(settings),
        ClaimsMapping(
            subject=claims.subject, roles=claims.roles, tenant=claims.tenant, scopes=claims.scopes
        ),
        policy,
        cookie_name=settings.cookie,
        allow_query=settings.allow_query_token,
        query_param=settings.query_param,
        max_token_bytes=settings.max_token_bytes,
        route_permissions=route_permissions,
    )
