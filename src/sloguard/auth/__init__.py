"""Authentication and authorization: who is calling, and may they do this.

A sans-I/O core: token verification takes a token, keys and a clock and
returns a :class:`Principal` or raises; the policy decision takes a policy
snapshot, a principal, a method and a route and returns a decision. JWKS
fetching and policy reloading sit at the edges. The ASGI/WSGI wiring lives in
:mod:`sloguard.asgi.auth`.
"""

from sloguard.auth._claims import ClaimsMapping
from sloguard.auth._decision import Decision, DecisionCache, PolicySnapshot
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
from sloguard.auth._explain import Explanation, check_policy_file, explain
from sloguard.auth._gate import AuthGate, AuthResult
from sloguard.auth._keys import JWKSClient, KeySet, StaticKey
from sloguard.auth._policy import load_policy
from sloguard.auth._principal import Principal
from sloguard.auth._requires import requires
from sloguard.auth._sources import (
    FilePolicySource,
    PolicyHolder,
    RedisPolicySource,
    publish_policy,
)
from sloguard.auth._tokens import extract_token, split_token
from sloguard.auth._verify import TokenVerifier

__all__ = [
    "AuthError",
    "AuthGate",
    "AuthResult",
    "ClaimsMapping",
    "Decision",
    "DecisionCache",
    "Explanation",
    "FilePolicySource",
    "JWKSClient",
    "KeySet",
    "PolicyHolder",
    "PolicySnapshot",
    "RedisPolicySource",
    "StaticKey",
    "TokenVerifier",
    "check_policy_file",
    "explain",
    "extract_token",
    "load_policy",
    "publish_policy",
    "requires",
    "split_token",
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
