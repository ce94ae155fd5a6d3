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
        ErrorCode("ADM_403", 403, "Admin endpoint not allowed from this address"),
        ErrorCode("ADM_400", 400, "Invalid admin request"),
        ErrorCode("ADM_404", 404, "Unknown admin endpoint"),
        ErrorCode("ADM_405", 405, "Method not allowed on admin endpoint"),
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
