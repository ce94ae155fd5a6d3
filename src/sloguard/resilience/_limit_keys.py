"""Who a rate limit counts: key extractors over a small, framework-free request view.

A limit's ``key`` names the partition its quota is kept per: ``"ip"`` (the
real client address, see :mod:`sloguard.resilience._client_ip`),
``"principal"`` (the authenticated subject), ``"tenant"``, ``"route"`` (the
route template, so ``/users/{id}`` is one bucket), ``"method"``,
``"header:<name>"`` (e.g. an API key header), ``"global"`` (one bucket for
everyone), or any callable taking a :class:`RequestInfo`. A key of None
means the limit does not apply to the request (no principal yet, header
absent). The ASGI and WSGI wiring both build a :class:`RequestInfo`, so the
extractors never see a framework object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sloguard.context import RequestContext, current_request
from sloguard.routing import UNMATCHED

__all__ = ["KeyFunc", "RequestInfo", "key_function", "principal_id"]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What key extractors may look at; ``headers`` are ASGI-style lower-case byte pairs."""

    method: str = "GET"
    path: str = "/"
    route: str = ""
    client_ip: str | None = None
    headers: Sequence[tuple[bytes, bytes]] = ()
    principal: str | None = None
    tenant: str | None = None

    def header(self, name: str) -> str | None:
        """Every value of ``name`` joined by ", " (RFC 9110 list form), or None."""
        wanted = name.lower().encode("latin-1")
        values = [value.decode("latin-1") for key, value in self.headers if key == wanted]
        return ", ".join(values) if values else None

    @classmethod
    def from_scope(
        cls,
        scope: Mapping[str, Any],
        *,
        client_ip: str | None,
        context: RequestContext | None = None,
    ) -> RequestInfo:
        """Build from an ASGI scope, taking route, principal and tenant from the request context.

        The route is the template the observe layer matched, never the raw path
        (raw paths carry ids and would give every user their own bucket); with no
        template the ``route`` key is None and route-keyed limits do not apply.
        """
        ctx = context if context is not None else current_request()
        return cls(
            method=str(scope.get("method", "GET")),
            path=str(scope.get("path", "/")),
            # the observe layer's name for "no template": not a route anyone limits
            route=ctx.route if ctx is not None and ctx.route != UNMATCHED else "",
            client_ip=client_ip,
            headers=scope.get("headers") or (),
            principal=principal_id(ctx.principal) if ctx is not None else None,
            tenant=ctx.tenant if ctx is not None else None,
        )


KeyFunc = Callable[[RequestInfo], "str | None"]


def principal_id(principal: Any) -> str | None:
    """A stable text id for whatever the auth layer stored as the principal."""
    if principal is None:
        return None
    if isinstance(principal, str):
        return principal or None
    subject = getattr(principal, "subject", None)
    if isinstance(subject, str) and subject:
        return subject
    return None


def _ip(info: RequestInfo) -> str | None:
    return info.client_ip


def _principal(info: RequestInfo) -> str | None:
    return info.principal


def _tenant(info: RequestInfo) -> str | None:
    return info.tenant


def _route(info: RequestInfo) -> str | None:
    return info.route or None


def _method(info: RequestInfo) -> str | None:
    return info.method


def _global(info: RequestInfo) -> str | None:
    return "*"


_NAMED: dict[str, KeyFunc] = {
    "ip": _ip,
    "principal": _principal,
    "tenant": _tenant,
    "route": _route,
    "method": _method,
    "global": _global,
}


def _header(name: str) -> KeyFunc:
    def extract(info: RequestInfo) -> str | None:
        value = info.header(name)
        return value if value else None

    extract.__name__ = f"header_{name}"
    return extract


def key_function(spec: str | KeyFunc) -> KeyFunc:
    """The extractor a key spec names; ValueError names an unknown spec."""
    if callable(spec):
        return spec
    if spec.startswith("header:"):
        name = spec.removeprefix("header:").strip().lower()
        if not name or any(c in name for c in " \t:\r\n"):
            raise ValueError(f"rate limit field 'key': {spec!r} has no valid header name")
        return _header(name)
    try:
        return _NAMED[spec]
    except KeyError:
        known = ", ".join([*_NAMED, "header:<name>"])
        raise ValueError(
            f"rate limit field 'key': unknown key {spec!r} (known: {known}, or a callable)"
        ) from None
