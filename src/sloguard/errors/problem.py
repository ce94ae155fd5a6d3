"""Rendering a registered error as an RFC 9457 problem document."""

from __future__ import annotations

import json
from typing import Any

from sloguard.errors.registry import lookup

__all__ = ["PROBLEM_CONTENT_TYPE", "SloguardHTTPError", "problem_body", "problem_response_headers"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


class SloguardHTTPError(Exception):
    """An error with a registered code; ``detail`` must be safe to show a client."""

    def __init__(
        self, code: str, detail: str = "", *, headers: dict[str, str] | None = None
    ) -> None:
        self.error = lookup(code)
        self.code = code
        self.status = self.error.status
        self.detail = detail
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {detail or self.error.title}")


def problem_body(
    code: str,
    detail: str = "",
    *,
    request_id: str | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> bytes:
    error = lookup(code)
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "code": error.code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return json.dumps(body, separators=(",", ":")).encode()


def problem_response_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
