"""The auth exception tree. Every denial carries its public error code.

::

    AuthError                    code, status, detail (safe for clients), www_authenticate
    ├── Unauthenticated          401, carries an RFC 6750 ``WWW-Authenticate: Bearer error=…``
    │   ├── MissingToken         AUTH_101 (no credentials)
    │   ├── MalformedToken       AUTH_101 (not a parsable JWT, too large, bad base64/JSON, crit…)
    │   ├── ExpiredToken         AUTH_102 (exp passed, nbf in the future, iat far ahead)
    │   ├── InvalidSignature     AUTH_103 (bad signature, alg not allowed for the key, unknown kid)
    │   └── InvalidClaims        AUTH_104 (wrong issuer or audience, a required claim missing)
    └── Forbidden                403
        ├── PermissionDenied     AUTH_201 (RBAC: no role grants it)
        ├── RouteDenied          AUTH_202 (an always-denied route)
        └── TenantMismatch       AUTH_301 (a principal of tenant A acting in tenant B)

    PolicyError                  an invalid policy document (file, field, message);
                                 never raised on the request path

``detail`` never contains key material or token contents.
"""

from __future__ import annotations

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
    "RouteDenied",
    "TenantMismatch",
    "Unauthenticated",
]


class AuthError(Exception):
    code: str = "AUTH_101"
    status: int = 401
    #: RFC 6750 error attribute for 401s (invalid_request / invalid_token).
    bearer_error: str = "invalid_token"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(f"{self.code}: {detail}" if detail else self.code)

    @property
    def www_authenticate(self) -> str | None:
        return None


class Unauthenticated(AuthError):
    status = 401

    @property
    def www_authenticate(self) -> str:
        text = self.detail.replace("\\", "\\\\").replace('"', "'")
        value = f'Bearer error="{self.bearer_error}"'
        return f'{value}, error_description="{text}"' if text else value


class MissingToken(Unauthenticated):
    code = "AUTH_101"
    bearer_error = "invalid_request"

    @property
    def www_authenticate(self) -> str:
        # RFC 6750 §3.1: no error code when the request carried no credentials.
        return "Bearer"


class MalformedToken(Unauthenticated):
    code = "AUTH_101"
    bearer_error = "invalid_request"


class ExpiredToken(Unauthenticated):
    code = "AUTH_102"


class InvalidSignature(Unauthenticated):
    code = "AUTH_103"


class InvalidClaims(Unauthenticated):
    code = "AUTH_104"


class Forbidden(AuthError):
    status = 403
    bearer_error = "insufficient_scope"


class PermissionDenied(Forbidden):
    code = "AUTH_201"


class RouteDenied(Forbidden):
    code = "AUTH_202"


class TenantMismatch(Forbidden):
    code = "AUTH_301"


class PolicyError(Exception):
    """An invalid policy document. ``problems`` lists ``(where, field, message)``."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{w}: {f}: {m}" for w, f, m in problems))
