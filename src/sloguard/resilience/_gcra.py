"""GCRA, the generic cell rate algorithm: a token bucket kept as one number.

A token bucket that refills ``limit`` tokens per ``period_s`` and holds at most
``burst`` of them admits exactly what GCRA admits, but GCRA stores only the
"theoretical arrival time" (TAT): the instant at which the bucket would be
full again if nothing else arrived. A request of ``cost`` units pushes the TAT
``cost`` emission intervals (``period_s / limit``) into the future; it is
admitted while the TAT stays within the burst tolerance
(``burst x emission interval``) of now. One number per key makes the memory
store small and the Redis script a single GET/SET.

Sans-I/O: :meth:`Gcra.decide` takes the stored TAT and the time and returns
the new TAT; the stores read clocks and keep state. The Redis store runs the
same arithmetic in Lua (:mod:`sloguard.resilience._limit_store_redis`) and the
tests hold the two to the same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["EPSILON_S", "Gcra", "GcraDecision"]

#: slack for float rounding: a request arriving exactly on its emission
#: boundary is admitted even when the sums round the wrong way. Wall-clock
#: seconds near 1.7e9 carry about 0.2 us of rounding per addition, so the
#: slack is 1 us (the Lua script uses the same).
EPSILON_S = 1e-6


class GcraDecision(NamedTuple):
    allowed: bool
    #: the TAT to store (unchanged when the request is refused)
    new_tat: float
    #: whole units still available right after this decision
    remaining: int
    #: seconds until the bucket is full again (the TAT minus now)
    reset_after_s: float
    #: seconds until a request of this cost would be admitted (0 when allowed)
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class Gcra:
    """``limit`` units per ``period_s`` seconds, at most ``burst`` at once."""

    limit: int
    period_s: float
    burst: int
    #: seconds between two units at the sustained rate
    emission_s: float = field(init=False, repr=False, compare=False)
    #: how far ahead of now the TAT may run: the burst, in seconds
    tolerance_s: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("GCRA field 'limit': must be at least 1")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError("GCRA field 'period_s': must be a positive number of seconds")
        if self.burst < 1:
            raise ValueError("GCRA field 'burst': must be at least 1")
        # precomputed: the stores decide hundreds of thousands of times a second
        emission = self.period_s / self.limit
        object.__setattr__(self, "emission_s", emission)
        object.__setattr__(self, "tolerance_s", self.burst * emission)

    def decide(self, tat: float, now: float, cost: int = 1) -> GcraDecision:
        """Admit ``cost`` units at ``now`` given the stored ``tat`` (0 for a new key)."""
        emission = self.emission_s
        tolerance = self.tolerance_s
        base = tat if tat > now else now
        new_tat = base + cost * emission
        if new_tat - now <= tolerance + EPSILON_S:
            remaining = int((tolerance - (new_tat - now) + EPSILON_S) / emission)
            return GcraDecision(True, new_tat, max(0, remaining), new_tat - now, 0.0)
        remaining = int((tolerance - (base - now) + EPSILON_S) / emission)
        retry_after = new_tat - tolerance - now
        if cost > self.burst:
            # never admissible: say "one full bucket from now" rather than a
            # wait that would not help
            retry_after = max(retry_after, tolerance)
        return GcraDecision(False, tat, max(0, remaining), base - now, retry_after)
