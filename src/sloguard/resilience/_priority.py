"""Who is shed first, and what a shed request is told.

Every request belongs to a :class:`Priority` class. The rule of "shed last"
is a ceiling per class on the *total* number of requests in flight (all
classes together)::

    ceiling(P) = max(1, floor(limit x share(P)))

A request of class ``P`` is admitted only while fewer than ``ceiling(P)``
requests are in flight. With the default shares (LOW 50 %, NORMAL 80 %,
HIGH 95 %, CRITICAL 100 %) a service whose limit is 100 stops admitting LOW
requests at 50 in flight, NORMAL at 80, HIGH at 95 and CRITICAL (health
checks, the routes that keep the business alive) only at the full limit. As
load rises the low classes are refused first, and the headroom they leave
is what the important classes run in. When the limit itself moves (the
adaptive limiter), every ceiling moves with it. ``max(1, ...)`` keeps a
class from being starved outright when the limit is tiny: an idle service
always admits one request of any class.

A refusal is a :class:`ShedDecision`: the registered error code (all three
are HTTP 503), a detail that is safe to show a client, and a ``Retry-After``
hint.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SHARES",
    "Priority",
    "PriorityShares",
    "ShedDecision",
    "ShedReason",
]


class Priority(enum.IntEnum):
    """A request's class; a higher value is shed later."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """``"low"``, ``"NORMAL"``, ``2`` or a member; anything else is a ValueError."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        elif isinstance(value, str):
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        names = ", ".join(name.lower() for name in cls.__members__)
        raise ValueError(f"priority {value!r}: expected one of {names}")


class ShedReason(enum.Enum):
    """Which stage of the admission chain refused, with its error code."""

    CONCURRENCY = "SHED_101"
    ADAPTIVE = "SHED_102"
    MEMORY = "SHED_201"

    @property
    def code(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PriorityShares:
    """The fraction of a concurrency limit each class may fill (see module doc)."""

    low: float = 0.5
    normal: float = 0.8
    high: float = 0.95
    critical: float = 1.0

    def __post_init__(self) -> None:
        previous = 0.0
        for priority in Priority:
            field = priority.name.lower()
            share = getattr(self, field)
            if not (math.isfinite(share) and 0.0 < share <= 1.0):
                raise ValueError(f"priority share {field!r}: must be in (0, 1]")
            if share < previous:
                raise ValueError(
                    f"priority share {field!r}: must not be below the share of a lower class"
                )
            previous = share

    @classmethod
    def from_mapping(cls, shares: Mapping[str, float]) -> PriorityShares:
        """Build from ``{"low": 0.4, ...}`` (settings); unnamed classes keep their default."""
        known = {p.name.lower() for p in Priority}
        for key in shares:
            if key not in known:
                raise ValueError(f"priority share {key!r}: not a priority class")
        return cls(**{key: float(value) for key, value in shares.items()})

    def share(self, priority: Priority) -> float:
        return float(getattr(self, priority.name.lower()))

    def ceilings(self, limit: int) -> tuple[int, ...]:
        """In-flight ceiling per class, indexed by ``int(priority)``."""
        if limit < 1:
            raise ValueError("limit: must be at least 1")
        return tuple(max(1, math.floor(limit * self.share(p) + 1e-9)) for p in Priority)


DEFAULT_SHARES = PriorityShares()


@dataclass(frozen=True, slots=True)
class ShedDecision:
    """A refused request: render it as a 503 problem with ``Retry-After``."""

    reason: ShedReason
    priority: Priority
    detail: str
    retry_after_s: float
    route: str | None = None

    @property
    def code(self) -> str:
        return self.reason.value

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, for the ``Retry-After`` header."""
        return str(max(1, math.ceil(self.retry_after_s)))
