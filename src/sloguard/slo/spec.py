"""The minimal SLO selector: which requests an SLO counts, and which are good.

An SLO names a set of requests (route-template globs and methods) and a rule
for "good": availability counts responses below 500 as good, latency counts
responses at or under a duration threshold as good. The objective is the
target share of good events, as a percentage (99.9 means 99.9%).
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SLOKind", "SLOSpec"]

_NAME = re.compile(r"[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?")
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


class SLOKind(enum.StrEnum):
    AVAILABILITY = "availability"
    LATENCY = "latency"


class SLOSpec(BaseModel):
    """One SLO as written in ``sloguard.yaml`` under ``sli.slos``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SLOKind = SLOKind.AVAILABILITY
    objective: Annotated[float, Field(gt=0, lt=100)] = 99.9
    routes: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ()
    threshold_ms: Annotated[float, Field(gt=0)] | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if _NAME.fullmatch(value) is None:
            raise ValueError(
                "must be 1-64 lowercase letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("methods")
    @classmethod
    def _check_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        upper = tuple(m.upper() for m in value)
        unknown = [m for m in upper if m not in _METHODS]
        if unknown:
            raise ValueError(f"unknown HTTP method(s): {', '.join(unknown)}")
        return upper

    @field_validator("routes")
    @classmethod
    def _check_routes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one route glob (use '*' for every route)")
        for glob in value:
            if glob != "*" and not glob.startswith("/"):
                raise ValueError(f"route glob {glob!r} must start with '/' (or be '*')")
        return value

    @model_validator(mode="after")
    def _check_threshold(self) -> SLOSpec:
        if self.kind is SLOKind.LATENCY and self.threshold_ms is None:
            raise ValueError("a latency SLO needs threshold_ms")
        if self.kind is SLOKind.AVAILABILITY and self.threshold_ms is not None:
            raise ValueError("threshold_ms applies only to latency SLOs")
        return self
