"""Refusing a request from a protection layer: one problem+json answer.

Every refusal (shed, rate limited, breaker open) is counted by the layer that
made it, marks the request context's ``error_code`` (so the access log, the
span and the SLI record all carry it), and answers RFC 9457 problem+json with
the request id and the layer's headers (``Retry-After``, ``RateLimit`` …).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sloguard.asgi._types import Send
from sloguard.context import current_request
from sloguard.errors import lookup, problem_body, problem_response_headers

__all__ = ["mark_refused", "send_problem"]

log = logging.getLogger("sloguard.resilience")


def mark_refused(code: str, detail: str) -> str | None:
    """Mark the current request as refused with ``code``; returns its request id."""
    ctx = current_request()
    if ctx is None:
        return None
    ctx.error_code = code
    return ctx.request_id


async def send_problem(
    send: Send, code: str, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> None:
    request_id = mark_refused(code, detail)
    body = problem_body(code, detail, request_id=request_id)
    response_headers = problem_response_headers(body)
    response_headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
    status = lookup(code).status
    log.info("request refused: %s", code, extra={"code": code, "reason": detail})
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
