"""The registry of public error codes. ``docs/errors.md`` lists the same codes
(a test keeps the two in step); codes never change meaning once released."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGISTRY", "ErrorCode", "lookup"]

PROBLEM_TYPE_BASE = "https://sloguard.dev/errors/"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    status: int
    title: str

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.code.lower().replace("_", "-")


REGISTRY: dict[str, ErrorCode] = {
    e.code: e
    for e in (
        ErrorCode("AUTH_101", 401, "Missing or malformed credentials"),
        ErrorCode("AUTH_102", 401, "Token expired or not yet valid"),
        ErrorCode("AUTH_103", 401, "Invalid token signature or algorithm"),
        ErrorCode("AUTH_104", 401, "Token issuer, audience or claims not accepted"),
        ErrorCode("AUTH_201", 403, "Permission denied"),
        ErrorCode("AUTH_202", 403, "Route denied"),
        ErrorCode("AUTH_301", 403, "Tenant mismatch"),
        ErrorCode("ADM_403", 403, "Admin endpoint not allowed from this address"),
        ErrorCode("ADM_400", 400, "Invalid admin request"),
        ErrorCode("ADM_404", 404, "Unknown admin endpoint"),
        ErrorCode("ADM_405", 405, "Method not allowed on admin endpoint"),
        ErrorCode("BRK_503", 503, "Circuit breaker open"),
        ErrorCode("RATE_429", 429, "Rate limit exceeded"),
        ErrorCode("RATE_503", 503, "Rate limit cannot be checked"),
        ErrorCode("SHED_101", 503, "Server at its concurrency limit"),
        ErrorCode("SHED_102", 503, "Server at its adaptive concurrency limit"),
        ErrorCode("SHED_201", 503, "Server under memory pressure"),
    )
}


def lookup(code: str) -> ErrorCode:
    """The registered code; KeyError names an unregistered one."""
    try:
        return REGISTRY[code]
    except KeyError:
        raise KeyError(
            f"error code {code!r} is not registered in sloguard.errors.registry"
        ) from None
