"""One mutable record per request, bound to a contextvar for the request's life.

The record is mutable on purpose: the observe layer creates it, later layers
(auth, protection, the application's error handlers) fill the slots they own
(``principal``, ``tenant``, ``error_code``), and the observe layer reads the
final values when the response completes. Child tasks and threads see the same
object, so a slot set inside them is visible too.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestContext", "bind_request", "current_request", "reset_request"]


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str = ""
    path: str = ""
    route: str = ""
    trace_id: str = ""
    span_id: str = ""
    principal: Any = None
    tenant: str | None = None
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestContext | None] = ContextVar("sloguard_request", default=None)


def current_request() -> RequestContext | None:
    """The context of the request being served, or None outside a request."""
    return _current.get()


def bind_request(ctx: RequestContext) -> Token[RequestContext | None]:
    return _current.set(ctx)


def reset_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)
