"""Per-route trace sampling that can change while the service runs.

The root decision is a trace-id ratio (the same arithmetic as OpenTelemetry's
``TraceIdRatioBased``, so every service that uses the ratio on the same trace
id agrees), with the ratio picked per route template by the first matching
glob in ``tracing.route_sample_ratios`` and ``tracing.sample_ratio`` otherwise.
A trusted remote parent's decision is honoured (parent-based), so a trace is
kept or dropped as a whole.

The configuration is one immutable :class:`SamplingConfig` swapped atomically
by :meth:`RouteRatioSampler.update`: a reload or an admin call changes the
ratios without a restart, and a request never sees half of an update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from sloguard.routing import GlobSet

__all__ = ["ROUTE_ATTRIBUTE", "RouteRatioSampler", "SamplingConfig"]

ROUTE_ATTRIBUTE = "http.route"
_TRACE_ID_LIMIT = (1 << 64) - 1
_CACHE_LIMIT = 4096


def _bound(ratio: float) -> int:
    return round(ratio * (_TRACE_ID_LIMIT + 1))


@dataclass(frozen=True)
class SamplingConfig:
    ratio: float = 1.0
    route_ratios: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for value in (self.ratio, *self.route_ratios.values()):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"sampling ratio {value!r} is outside [0, 1]")


class _Compiled:
    __slots__ = ("bounds", "config", "default_bound", "globs")

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self.default_bound = _bound(config.ratio)
        self.globs = GlobSet(config.route_ratios)
        self.bounds: dict[str, int] = {}

    def bound_for(self, route: str | None) -> int:
        if route is None or not self.globs.globs:
            return self.default_bound
        bound = self.bounds.get(route)
        if bound is None:
            glob = self.globs.first(route)
            bound = self.default_bound if glob is None else _bound(self.config.route_ratios[glob])
            if len(self.bounds) < _CACHE_LIMIT:
                self.bounds[route] = bound
        return bound


class RouteRatioSampler(Sampler):
    """Parent-based sampler with per-route ratios for root spans."""

    def __init__(self, config: SamplingConfig | None = None) -> None:
        self._compiled = _Compiled(config or SamplingConfig())

    @property
    def config(self) -> SamplingConfig:
        return self._compiled.config

    def update(self, config: SamplingConfig) -> None:
        """Swap in a new configuration (atomic: one attribute assignment)."""
        self._compiled = _Compiled(config)

    def root_decision(self, trace_id: int, route: str | None) -> bool:
        """The ratio decision for a trace that starts here."""
        return (trace_id & _TRACE_ID_LIMIT) < self._compiled.bound_for(route)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            sampled = parent.trace_flags.sampled
        else:
            route = attributes.get(ROUTE_ATTRIBUTE) if attributes else None
            sampled = self.root_decision(trace_id, route if isinstance(route, str) else None)
        if not sampled:
            return SamplingResult(
                Decision.DROP, None, parent.trace_state if parent.is_valid else None
            )
        state = parent.trace_state if parent.is_valid else trace_state
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        cfg = self._compiled.config
        return f"sloguard.RouteRatioSampler{{ratio={cfg.ratio}, routes={dict(cfg.route_ratios)}}}"
