"""The real client address behind reverse proxies, without trusting the client.

Every proxy appends the address it received the request from to
``X-Forwarded-For`` (or a ``for=`` element to RFC 7239 ``Forwarded``), so the
right end of the list was written by our own proxies and the left end by
whoever sent the request, possibly a liar. The address is therefore read from
the right, and only across proxies we trust:

* ``trusted_hops=N``: N proxies stand in front of the app (the peer is the
  N-th); the client is the N-th entry from the right. Fewer entries than that
  means the request did not come the expected way: the peer is used.
* ``trusted_proxies`` (CIDRs): the header is read only when the peer is one of
  them; without ``trusted_hops`` the walk goes left while the address at hand
  is a trusted proxy and stops at the first that is not.

Without either, the header is ignored (the peer is the client). Only the one
configured header is read; reading whichever is present would let a client
send the one the proxy does not rewrite. Malformed values (garbage,
obfuscated ``for=_hidden``, ``unknown``) never raise: they end the walk, and
the last trusted address or the peer is used. Addresses are normalised
(``ipaddress`` compressed form; IPv4-mapped IPv6 becomes IPv4; ports dropped).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ClientIPResolver",
    "normalize_ip",
    "parse_forwarded_for",
    "parse_x_forwarded_for",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: longer header values are ignored as a whole (a cheap guard against abuse)
MAX_HEADER_CHARS = 8192


def normalize_ip(value: str) -> str | None:
    """The canonical text of an address that may carry a port or brackets, or None."""
    text = value.strip().strip('"').strip()
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        rest = text[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_x_forwarded_for(value: str) -> list[str | None]:
    """One entry per hop, left to right; None where an entry is not an address."""
    if len(value) > MAX_HEADER_CHARS:
        return []
    return [normalize_ip(part) for part in value.split(",")]


def parse_forwarded_for(value: str) -> list[str | None]:
    """The ``for=`` of each RFC 7239 element, left to right; None where absent or not an IP."""
    if len(value) > MAX_HEADER_CHARS:
        return []
    return [_element_for(element) for element in _split_outside_quotes(value, ",")]


def _element_for(element: str) -> str | None:
    found: str | None = None
    for pair in _split_outside_quotes(element, ";"):
        name, eq, raw = pair.partition("=")
        if not eq:
            continue
        if name.strip().lower() == "for":
            if found is not None:
                return None  # a parameter may appear once per element
            found = _unquote(raw.strip())
    return None if found is None else normalize_ip(found)


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return raw


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"client ip field 'trusted_proxies': {cidr!r} is not an address or CIDR"
            ) from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class ClientIPResolver:
    """Finds the client address from the peer and the one forwarding header configured."""

    trusted_hops: int = 0
    trusted_proxies: tuple[str, ...] = ()
    header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _header_bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.trusted_hops < 0:
            raise ValueError("client ip field 'trusted_hops': must not be negative")
        if self.header not in ("x-forwarded-for", "forwarded"):
            raise ValueError("client ip field 'header': must be 'x-forwarded-for' or 'forwarded'")
        object.__setattr__(self, "trusted_proxies", tuple(self.trusted_proxies))
        object.__setattr__(self, "_networks", _networks(self.trusted_proxies))
        object.__setattr__(self, "_header_bytes", self.header.encode())

    @property
    def honours_headers(self) -> bool:
        return self.trusted_hops > 0 or bool(self._networks)

    def is_trusted(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self._networks)

    def resolve(self, peer: str | None, header_values: Sequence[str]) -> str | None:
        """The client address given the peer and every value of the forwarding header."""
        peer_ip = normalize_ip(peer) if peer else None
        if peer_ip is None or not self.honours_headers or not header_values:
            return peer_ip
        if self._networks and not self.is_trusted(peer_ip):
            return peer_ip
        joined = ",".join(header_values)
        if self.header == "forwarded":
            chain = parse_forwarded_for(joined)
        else:
            chain = parse_x_forwarded_for(joined)
        if self.trusted_hops:
            if len(chain) < self.trusted_hops:
                return peer_ip
            return chain[-self.trusted_hops] or peer_ip
        candidate = peer_ip
        for entry in reversed(chain):
            if entry is None or not self.is_trusted(candidate):
                break
            candidate = entry
        return candidate

    def from_scope(self, scope: Mapping[str, Any]) -> str | None:
        """The client address of an ASGI HTTP/WebSocket scope."""
        client = scope.get("client")
        peer = client[0] if isinstance(client, (tuple, list)) and client else None
        if not self.honours_headers:
            return normalize_ip(peer) if isinstance(peer, str) else None
        values: list[str] = []
        raw_headers = scope.get("headers")
        if isinstance(raw_headers, (list, tuple)):
            wanted = self._header_bytes
            values.extend(
                item[1].decode("latin-1") for item in raw_headers if item[0].lower() == wanted
            )
        return self.resolve(peer if isinstance(peer, str) else None, values)
