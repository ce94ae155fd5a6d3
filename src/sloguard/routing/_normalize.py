"""Path normalization: one canonical spelling for every way of writing a path.

Metric labels, SLI selectors and authorization rules all compare paths, and an
attacker chooses the spelling: ``/admin/../x``, ``/%2e%2e/admin``, ``//admin``,
``/admin/``, ``/admin;jsessionid=1``, ``/ADMIN``. :func:`normalize_path` maps
each of them to one canonical form so a rule written for ``/admin`` sees them
all. The steps, in order:

1. cut a query string (``?...``);
2. percent-normalize: decode escapes of RFC 3986 *unreserved* characters
   (``%41`` -> ``A``, ``%2e`` -> ``.``), keep every other escape encoded with
   uppercase hex (``%2f`` -> ``%2F``, so an encoded slash never becomes a
   separator), turn a stray ``%`` into ``%25``, and percent-encode every byte
   that may not appear literally in a path (controls, space, non-ASCII, ``\\``
   ``"`` ``<`` ``>`` ``[`` ``]`` ``{`` ``}`` ``|`` ``^`` `````  ``#``);
3. strip ``;params`` from every segment (``strip_params``) -- before step 4, so
   Tomcat's ``/x/..;/admin`` is ``..`` here too;
4. remove dot segments as RFC 3986 section 5.2.4 does (an empty segment is a
   segment, as in browsers); ``..`` never climbs above the root;
5. collapse repeated slashes, ensure a leading ``/``, and strip a trailing
   ``/`` except for the root (``trailing_slash="strip"``);
6. optionally lowercase ASCII letters outside escapes (escaped hex stays
   uppercase, and non-ASCII text stays escaped as sent).

The output is pure ASCII, so applying the function again changes nothing.
Input may be the ASGI ``raw_path`` (bytes, still percent-encoded) or a ``str``;
a ``str`` is read as percent-encoded too, so pass ``raw_path`` where you have
it: a decoded ``path`` has already turned ``%2F`` into ``/``.

Exceptions::

    ValueError
     +-- PathError        (.path, .reason) -- a template that cannot be loaded
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = ["PathError", "TrailingSlash", "normalize_path"]

TrailingSlash = Literal["strip", "keep"]
_TRAILING_SLASH_MODES: Final = frozenset({"strip", "keep"})

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
# Bytes a path may hold literally (RFC 3986 pchar plus "/"); everything else is escaped.
_LITERAL: Final = _UNRESERVED | frozenset(b"!$&'()*+,;=:@/")

# What one byte of input becomes, and what the escape "%XX" of that byte becomes.
_AS_BYTE: Final = tuple(bytes([b]) if b in _LITERAL else b"%%%02X" % b for b in range(256))
_AS_ESCAPE: Final = tuple(bytes([b]) if b in _UNRESERVED else b"%%%02X" % b for b in range(256))

_NEEDS_FIXING: Final = re.compile(rb"%(?:[0-9A-Fa-f]{2})?|[^A-Za-z0-9\-._~!$&'()*+,;=:@/]")
_LOWER_ESCAPE: Final = re.compile(r"%[0-9a-f]{2}")

# Canonical but for one trailing slash: segments that are non-empty, do not start with "." (so no
# dot segments), and hold no "%", ";", "?" or byte that needs escaping.
_CLEAN_CHARS = r"A-Za-z0-9\-._~!$&'()*+,=:@"
_CLEAN_PATTERN = rf"/|(?:/[{_CLEAN_CHARS.replace('.', '')}][{_CLEAN_CHARS}]*)+/?"
_CLEAN_TEXT: Final = re.compile(_CLEAN_PATTERN)
_CLEAN_BYTES: Final = re.compile(_CLEAN_PATTERN.encode("ascii"))


class PathError(ValueError):
    """A path or route template that cannot be used; says which and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid path {path!r}: {reason}")
        self.path = path
        self.reason = reason


def normalize_path(
    raw_path: str | bytes,
    *,
    trailing_slash: TrailingSlash = "strip",
    strip_params: bool = True,
    lowercase: bool = False,
) -> str:
    """The canonical form of ``raw_path`` (see the module docstring); never raises on input."""
    if trailing_slash not in _TRAILING_SLASH_MODES:
        raise ValueError(f"trailing_slash must be 'strip' or 'keep', not {trailing_slash!r}")
    if isinstance(raw_path, str):
        if _CLEAN_TEXT.fullmatch(raw_path) is not None:
            return _finish_clean(raw_path, trailing_slash, lowercase)
        data = raw_path.encode("utf-8", "surrogatepass")
    else:
        if _CLEAN_BYTES.fullmatch(raw_path) is not None:
            return _finish_clean(raw_path.decode("ascii"), trailing_slash, lowercase)
        data = raw_path
    path = resolve_segments(
        percent_normalize(data.partition(b"?")[0]),
        trailing_slash=trailing_slash,
        strip_params=strip_params,
    )
    if lowercase:
        path = path.lower()
        if "%" in path:
            path = _LOWER_ESCAPE.sub(lambda m: m.group().upper(), path)
    return path


def _finish_clean(path: str, trailing_slash: TrailingSlash, lowercase: bool) -> str:
    if trailing_slash == "strip" and len(path) > 1 and path[-1] == "/":
        path = path[:-1]
    return path.lower() if lowercase else path


def percent_normalize(data: bytes) -> str:
    """Step 2: decode unreserved escapes, uppercase the rest, escape what may not be literal."""
    return _NEEDS_FIXING.sub(_fix_one, data).decode("ascii")


def _fix_one(match: re.Match[bytes]) -> bytes:
    found = match.group()
    if len(found) == 3:
        return _AS_ESCAPE[int(found[1:], 16)]
    return _AS_BYTE[found[0]]


def resolve_segments(text: str, *, trailing_slash: TrailingSlash, strip_params: bool) -> str:
    """Steps 3-5 on percent-normalized text: params, dot segments, slashes."""
    if (
        text.startswith("/")
        and "/." not in text
        and "//" not in text
        and (not strip_params or ";" not in text)
        and (len(text) == 1 or not text.endswith("/"))
    ):
        return text  # the usual case after an escape was fixed: nothing to remove
    segments = text.split("/")
    if text.startswith("/"):
        del segments[0]
    if strip_params and ";" in text:
        segments = [segment.partition(";")[0] for segment in segments]
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    path = "/" + "/".join(segment for segment in kept if segment)
    if trailing_slash == "keep" and path != "/" and segments[-1] in {"", ".", ".."}:
        path += "/"
    return path
