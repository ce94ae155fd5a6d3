"""Who is calling: the verified identity the rest of the stack decides on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str] = frozenset()
    tenant: str | None = None
    scopes: frozenset[str] = frozenset()
    issuer: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
