"""Finding the bearer token in a request, and splitting it without trusting it.

Both functions run before any cryptography, on bytes an attacker chose, so
they are strict and cheap: a size limit comes first, every check is a
full-match against a fixed alphabet, and the only parsing is one bounded
``json.loads`` of the JOSE header. Anything that is not exactly what RFC 6750
and RFC 7515 allow raises :class:`MalformedToken` (``AUTH_101``); nothing
else escapes (the hypothesis property test and the atheris target hold this).

Where the token may come from (RFC 6750 §2): the ``Authorization: Bearer``
header; a named cookie when configured; the query string only when explicitly
enabled (tokens in URLs end up in access logs and ``Referer`` headers).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from sloguard.auth._errors import MalformedToken, MissingToken

__all__ = ["DEFAULT_MAX_TOKEN_BYTES", "extract_token", "split_token"]

DEFAULT_MAX_TOKEN_BYTES = 8192

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 7515 §7.1 compact serialization; the signature may be empty (an unsecured
# JWS), so that ``alg: none`` is refused by the verifier with its own code.
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)")


def extract_token(
    headers: Mapping[str, str],
    query_string: str | bytes = "",
    *,
    cookie_name: str | None = None,
    allow_query: bool = False,
    query_param: str = "access_token",
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
) -> str:
    """Return the one bearer token the request carries.

    ``headers`` has lowercase names; a repeated header must be joined with
    ``", "`` (RFC 9110 §5.3), which makes two ``Authorization`` credentials a
    :class:`MalformedToken` rather than a silent pick. The ``Authorization``
    header wins over the cookie; a token in both the header and the query
    string is refused (RFC 6750 §2: one method per request).
    """
    in_query = _query_token(query_string, query_param, max_bytes) if allow_query else None
    authorization = headers.get("authorization")
    if authorization is not None:
        token = _bearer_credential(authorization, max_bytes)
        if token is not None:
            if in_query is not None:
                raise MalformedToken("token sent in more than one way")
            return token
    if cookie_name is not None:
        token = _cookie_token(headers.get("cookie", ""), cookie_name, max_bytes)
        if token is not None:
            if in_query is not None:
                raise MalformedToken("token sent in more than one way")
            return token
    if in_query is not None:
        return in_query
    if not allow_query and _mentions_query_param(query_string, query_param):
        raise MissingToken("tokens in the query string are not accepted")
    if authorization is not None:
        raise MissingToken("authorization scheme is not Bearer")
    raise MissingToken("no bearer token")


def split_token(token: str) -> tuple[dict[str, Any], str, str]:
    """Split a compact JWS into (header, payload_b64, signature_b64).

    Strict: exactly three base64url segments without padding or whitespace,
    canonically encoded, the header a JSON object without duplicate names.
    The payload is not decoded here (the signature check does that once).
    """
    if not isinstance(token, str):
        raise MalformedToken("token is not text")
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        raise MalformedToken("token is not three base64url segments")
    header_b64, payload_b64, signature_b64 = match.groups()
    for segment in (payload_b64, signature_b64):
        _check_base64url(segment)
    raw_header = _decode_base64url(header_b64)
    try:
        header = json.loads(raw_header, object_pairs_hook=_unique_names)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedToken("token header is not JSON") from exc
    if not isinstance(header, dict):
        raise MalformedToken("token header is not a JSON object")
    return header, payload_b64, signature_b64


def _bearer_credential(value: str, max_bytes: int) -> str | None:
    """The token of a ``Bearer`` credential, or None for another scheme."""
    if len(value) > max_bytes + 64:  # never run a regex over a huge header
        raise MalformedToken("token too large")
    scheme, _, rest = value.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip(" ")
    if not token:
        raise MalformedToken("empty bearer credential")
    if len(token) > max_bytes:
        raise MalformedToken("token too large")
    if _B64TOKEN.fullmatch(token) is None:
        raise MalformedToken("bearer credential is not a single b64token")
    return token


def _cookie_token(cookie_header: str, name: str, max_bytes: int) -> str | None:
    if len(cookie_header) > 4 * max_bytes + 4096:
        raise MalformedToken("cookie header too large")
    found: str | None = None
    for pair in cookie_header.split(";"):
        key, sep, value = pair.strip(" \t").partition("=")
        if not sep or key != name:
            continue
        value = value.strip('"')
        if found is not None and value != found:
            # Cookie tossing: a sibling (sub)domain planted a second cookie.
            raise MalformedToken("token cookie sent more than once")
        found = value
    if found is None or found == "":
        return None
    if len(found) > max_bytes:
        raise MalformedToken("token too large")
    if _B64TOKEN.fullmatch(found) is None:
        raise MalformedToken("token cookie is not a b64token")
    return found


def _query_token(query_string: str | bytes, param: str, max_bytes: int) -> str | None:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    if param not in text:
        return None
    values = [v for k, v in parse_qsl(text, keep_blank_values=True) if k == param]
    if not values:
        return None
    if len(values) > 1:
        raise MalformedToken("token sent more than once in the query string")
    token = values[0]
    if len(token) > max_bytes:
        raise MalformedToken("token too large")
    if _B64TOKEN.fullmatch(token) is None:
        raise MalformedToken("query token is not a b64token")
    return token


def _mentions_query_param(query_string: str | bytes, param: str) -> bool:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return param in text and any(k == param for k, _ in parse_qsl(text, keep_blank_values=True))


def _check_base64url(segment: str) -> None:
    # Length 1 mod 4 cannot come from any byte string; non-zero trailing
    # bits would let two spellings share one value. Both are refused.
    if len(segment) % 4 == 1:
        raise MalformedToken("token segment is not valid base64url")
    tail = len(segment) % 4
    if tail and _B64_VALUE[segment[-1]] & (0b1111 if tail == 2 else 0b11):
        raise MalformedToken("token segment is not canonical base64url")


def _decode_base64url(segment: str) -> bytes:
    _check_base64url(segment)
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("token segment is not valid base64url") from exc


_B64_VALUE = {
    ch: i for i, ch in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # RFC 7515 §4: duplicate header names must be rejected (or last-wins,
        # which would let a second "alg" hide behind the first).
        raise MalformedToken("duplicate name in token header")
    return result
