"""``inject.probes``: live probes attached to a running process.

The control socket lives in ``socket_dir`` (default ``$XDG_RUNTIME_DIR/sloguard``
or ``/tmp/sloguard-<uid>``, created 0700); every probe gets ``budget_ns`` of
measured per-call cost unless it asks for its own; log probes render each
argument in at most ``max_arg_chars`` characters and a call's arguments in at
most ``max_log_bytes``, with the values of arguments whose name contains one
of ``redact_args`` masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from sloguard.settings._base import _Section

__all__ = ["DEFAULT_REDACTED_ARGS", "ProbeSettings"]

DEFAULT_REDACTED_ARGS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "private_key",
    "session",
)


class ProbeSettings(_Section):
    enabled: bool = True
    socket_dir: Path | None = None
    mechanism: Literal["auto", "monitoring", "codepatch"] = "auto"
    budget_ns: Annotated[int, Field(ge=100, le=1_000_000_000)] = 50_000
    sample_every: Annotated[int, Field(ge=1, le=4096)] = 16
    allow_import: bool = False
    max_probes: Annotated[int, Field(ge=1, le=10_000)] = 64
    max_arg_chars: Annotated[int, Field(ge=16, le=65_536)] = 256
    max_log_bytes: Annotated[int, Field(ge=64, le=1_048_576)] = 2048
    redact_args: tuple[str, ...] = DEFAULT_REDACTED_ARGS

    @field_validator("sample_every")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"sample_every must be a power of two, not {value}")
        return value

    @field_validator("redact_args")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name.lower() for name in value)
