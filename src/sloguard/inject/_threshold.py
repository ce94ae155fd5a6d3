"""Which calls get a span: a minimum duration, fixed or adaptive per function.

With ``min_duration_ms`` a traced call costs two clock reads and a compare;
only calls at least that slow get a span (emitted after the fact). With
``adaptive`` each function also keeps a streaming estimate of its own
``quantile`` (p99 by default) and the cut is ``max(min_duration, estimate)``,
so a function that is always slow does not flood the exporter: only its own
slow tail is kept.

The estimator is stochastic gradient descent on the pinball loss, taken in
the log domain so one step size fits functions of 1 us and of 1 s::

    x > q:  q *= 1 + eta * p
    x <= q: q *= 1 - eta * (1 - p)

At equilibrium ``P(x > q) * ln(1 + eta p) = P(x <= q) * -ln(1 - eta (1 - p))``,
which for small steps is ``P(x <= q) = p``. One comparison and one multiply per
call, no buffer, no lock (a lost update under threads only nudges the estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DurationGate", "DurationPolicy"]

_INITIAL_ESTIMATE_NS = 1_000_000
_STEP = 0.05


class DurationGate:
    """One function's cut: ``observe(elapsed_ns)`` says whether the call gets a span."""

    __slots__ = ("adaptive", "cut", "down", "estimate", "floor", "up")

    def __init__(self, floor_ns: int, adaptive: bool, quantile: float) -> None:
        self.floor = floor_ns
        self.adaptive = adaptive
        self.estimate = float(max(floor_ns, _INITIAL_ESTIMATE_NS)) if adaptive else 0.0
        self.cut = max(float(floor_ns), self.estimate)
        self.up = 1.0 + _STEP * quantile
        self.down = 1.0 - _STEP * (1.0 - quantile)

    def observe(self, elapsed_ns: int) -> bool:
        cut = self.cut
        if self.adaptive:
            estimate = self.estimate
            estimate = estimate * self.up if elapsed_ns > estimate else estimate * self.down
            self.estimate = estimate
            self.cut = estimate if estimate > self.floor else float(self.floor)
        return elapsed_ns >= cut


@dataclass(frozen=True)
class DurationPolicy:
    """The configured minimum duration; ``gate()`` is None when every call gets a span."""

    min_duration_ns: int = 0
    adaptive: bool = False
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if self.min_duration_ns < 0:
            raise ValueError(f"min_duration_ns must be >= 0, got {self.min_duration_ns}")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be between 0 and 1 (exclusive), got {self.quantile}")

    def gate(self) -> DurationGate | None:
        if self.min_duration_ns == 0 and not self.adaptive:
            return None
        return DurationGate(self.min_duration_ns, self.adaptive, self.quantile)
