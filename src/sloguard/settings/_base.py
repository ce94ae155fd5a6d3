"""What every settings section shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LOOPBACK", "Ratio", "_Section"]

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
LOOPBACK = ("127.0.0.0/8", "::1/128")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
