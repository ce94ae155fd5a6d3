"""Named permissions declared on route handlers.

``@requires("catalog:read")`` marks an endpoint; when the guard is built it
reads the marks from the application's routes (Starlette and FastAPI), and a
request to that route then needs a role granting ``catalog:read`` (in the
policy: ``permissions: ["catalog:read"]``), whatever its method-and-path
grants say.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

__all__ = ["requires"]

F = TypeVar("F", bound=Callable[..., object])
_NAME = re.compile(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.*-]+)+")


def requires(permission: str) -> Callable[[F], F]:
    """Mark a route handler as needing the named ``permission`` (``resource:action``)."""
    if _NAME.fullmatch(permission) is None:
        raise ValueError(f"{permission!r} is not a named permission like 'catalog:read'")

    def mark(handler: F) -> F:
        handler.__sloguard_permission__ = permission  # type: ignore[attr-defined]
        return handler

    return mark
