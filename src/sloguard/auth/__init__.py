"""Authentication and authorization: who is calling, and may they do this.

A sans-I/O core: token verification takes a token, keys and a clock and
returns a :class:`Principal` or raises; the policy decision takes a policy
snapshot, a principal, a method and a route and returns a decision. JWKS
fetching and policy reloading sit at the edges. The ASGI/WSGI wiring lives in
:mod:`sloguard.asgi.auth`.
"""

from sloguard.auth._errors import (
    AuthError,
    ExpiredToken,
    Forbidden,
    InvalidClaims,
    InvalidSignature,
    MalformedToken,
    MissingToken,
    PermissionDenied,
    PolicyError,
    RouteDenied,
    TenantMismatch,
    Unauthenticated,
)
from sloguard.auth._principal import Principal

__all__ = [
    "AuthError",
    "ExpiredToken",
    "Forbidden",
    "InvalidClaims",
    "InvalidSignature",
    "MalformedToken",
    "MissingToken",
    "PermissionDenied",
    "PolicyError",
    "Principal",
    "RouteDenied",
    "TenantMismatch",
    "Unauthenticated",
]
