"""Request ids: accept a caller's only when it is safe to log and echo.

An incoming ``X-Request-ID`` is attacker-controlled text that ends up in log
lines, response headers and problem documents, so it is accepted only if it is
1-128 characters from a conservative alphabet (letters, digits and ``-_.:+=/``
— enough for UUIDs, ULIDs, base64 ids and AWS/GCP trace-style ids). Anything
else is replaced by a fresh id; the caller's value is never reflected.
"""

from __future__ import annotations

import os
import re

__all__ = ["MAX_REQUEST_ID_LENGTH", "new_request_id", "valid_request_id"]

MAX_REQUEST_ID_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9\-_.:+=/]{1,128}")


def valid_request_id(value: str | bytes | None) -> str | None:
    """Return ``value`` as text if it is a safe request id, else None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        if len(value) > MAX_REQUEST_ID_LENGTH:
            return None
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if _SAFE.fullmatch(value) is None:
        return None
    return value


def new_request_id() -> str:
    """A fresh 32-hex-digit random id (same shape as a W3C trace id)."""
    return os.urandom(16).hex()
