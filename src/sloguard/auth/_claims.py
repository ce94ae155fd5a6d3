"""From verified claims to a :class:`Principal`: where each identity provider keeps what.

Providers disagree on where roles and scopes live: a flat ``roles`` list,
Keycloak's ``realm_access.roles``, Auth0's namespaced
``https://example.com/roles``, Azure's ``scp`` list next to OAuth's
space-separated ``scope`` string. A :class:`ClaimsMapping` names the claim
paths once, in settings; a path is tried as a literal claim name first (so
URL-shaped names with dots work), then as a dotted path into nested objects.

A claim of the wrong shape is an :class:`InvalidClaims` (``AUTH_104``) naming
the path, never echoing the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sloguard.auth._errors import InvalidClaims
from sloguard.auth._principal import Principal

__all__ = ["ClaimsMapping"]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class ClaimsMapping:
    """Claim paths for each Principal field. ``None`` leaves a field empty.

    ``roles`` and ``scopes`` may name several paths; their values are joined.
    Each value may be a list of strings or one space-separated string. The
    ``scope`` default also reads ``scp`` (the list form some providers use).
    """

    subject: str = "sub"
    roles: str | Sequence[str] | None = "roles"
    tenant: str | None = "tenant"
    scopes: str | Sequence[str] | None = ("scope", "scp")

    def to_principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = _claim_at(claims, self.subject)
        if not isinstance(subject, str) or not subject:
            raise InvalidClaims(f"claim {self.subject!r} (subject) is missing or not a string")
        tenant = None if self.tenant is None else _claim_at(claims, self.tenant)
        if tenant is _MISSING or tenant is None:
            tenant = None
        elif not isinstance(tenant, str):
            raise InvalidClaims(f"claim {self.tenant!r} (tenant) is not a string")
        issuer = claims.get("iss")
        return Principal(
            subject=subject,
            roles=_string_set(claims, self.roles),
            tenant=tenant,
            scopes=_string_set(claims, self.scopes),
            issuer=issuer if isinstance(issuer, str) else None,
            claims=claims,
        )


def _claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named ``path``, else the value at its dotted path, else a sentinel."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _string_set(claims: Mapping[str, Any], paths: str | Sequence[str] | None) -> frozenset[str]:
    if paths is None:
        return frozenset()
    values: set[str] = set()
    for path in (paths,) if isinstance(paths, str) else paths:
        value = _claim_at(claims, path)
        if value is _MISSING or value is None:
            continue
        if isinstance(value, str):
            values.update(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            values.update(value)
        else:
            raise InvalidClaims(f"claim {path!r} is not a string or a list of strings")
    return frozenset(values)
