"""Request ids: accept a caller's only when it is safe to log and echo.

An incoming ``X-Request-ID`` is attacker-controlled text that ends up in log
lines, response headers and problem documents, so it is accepted only if it is
1-128 characters from a conservative alphabet (letters, digits and ``-_.:+=/``
— enough for UUIDs, ULIDs, base64 ids and AWS/GCP trace-style ids). Anything
else is replaced by a fresh id; the caller's value is never reflected.

Fresh ids are 16 bytes from the OS's CSPRNG, as hex: they may be shown to
callers (the response header, problem documents), so one id must not tell
anything about another (a counter behind a random prefix would, and so
would the Mersenne Twister behind :mod:`random`: its state can be rebuilt
from about 160 observed ids). The bytes are read 256 ids at a time and each
id is handed out once: under half of ``os.urandom(16).hex()``'s cost, and no
system call (which releases the GIL) on most requests.
"""

from __future__ import annotations

import collections
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


_BATCH = 256
_ID_HEX = 32
_ready: collections.deque[str] = collections.deque()


def new_request_id() -> str:
    """A fresh 32-hex-digit random id (same shape as a W3C trace id)."""
    try:
        return _ready.popleft()  # atomic: no id is handed out twice, whatever the threads
    except IndexError:
        pool = os.urandom(_BATCH * _ID_HEX // 2).hex()
        _ready.extend(pool[i : i + _ID_HEX] for i in range(_ID_HEX, len(pool), _ID_HEX))
        return pool[:_ID_HEX]


if hasattr(os, "register_at_fork"):
    # a forked worker must not hand out the ids its parent still holds
    os.register_at_fork(after_in_child=_ready.clear)
