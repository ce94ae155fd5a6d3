"""One per-minute SLI bucket: the unit the recorder produces and the store keeps.

A bucket counts the requests one SLO saw in one minute for one route, status
class and error code: ``total`` of them, ``good`` of which met the SLO.
Counts are plain integers so budgets computed from them stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["DIMENSIONS", "BucketRow", "Dimension", "minute_of"]

Dimension = Literal["route", "status_class", "error_code"]
DIMENSIONS: Final[tuple[Dimension, ...]] = ("route", "status_class", "error_code")


@dataclass(frozen=True, slots=True)
class BucketRow:
    """Counts for (slo, minute, route, status_class, error_code).

    ``minute`` is unix seconds // 60; ``error_code`` is ``""`` when the
    response carried none.
    """

    slo: str
    minute: int
    route: str
    status_class: str
    error_code: str
    good: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.good <= self.total:
            raise ValueError(
                f"bucket counts need 0 <= good <= total, got good={self.good} total={self.total}"
            )

    @property
    def key(self) -> tuple[str, int, str, str, str]:
        """The identity of the bucket: every field but the counts."""
        return (self.slo, self.minute, self.route, self.status_class, self.error_code)


def minute_of(unix_seconds: float) -> int:
    """The bucket minute holding ``unix_seconds``."""
    return int(unix_seconds // 60)
