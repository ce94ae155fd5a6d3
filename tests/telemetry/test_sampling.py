"""Per-route ratios, parent-based decisions, and live updates."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from sloguard.telemetry.sampling import RouteRatioSampler, SamplingConfig

LOW_ID = 1  # lower 64 bits tiny: sampled at any ratio > 0
HIGH_ID = (1 << 64) - 1  # sampled only at ratio 1.0


def decide(sampler: RouteRatioSampler, trace_id: int, route: str | None, parent=None) -> Decision:  # type: ignore[no-untyped-def]
    attributes = {"http.route": route} if route else None
    return sampler.should_sample(parent, trace_id, "GET", attributes=attributes).decision


def test_default_ratio_applies_to_unlisted_routes() -> None:
    sampler = RouteRatioSampler(SamplingConfig(ratio=0.5, route_ratios={"/search": 1.0}))
    assert decide(sampler, LOW_ID, "/items") is Decision.RECORD_AND_SAMPLE
    assert decide(sampler, HIGH_ID, "/items") is Decision.DROP
    assert decide(sampler, HIGH_ID, "/search") is Decision.RECORD_AND_SAMPLE


def test_first_matching_glob_wins() -> None:
    config = SamplingConfig(ratio=1.0, route_ratios={"/api/health": 0.0, "/api/*": 1.0})
    sampler = RouteRatioSampler(config)
    assert decide(sampler, LOW_ID, "/api/health") is Decision.DROP
    assert decide(sampler, LOW_ID, "/api/items") is Decision.RECORD_AND_SAMPLE


def test_ratio_keeps_about_that_share_of_traces() -> None:
    sampler = RouteRatioSampler(SamplingConfig(ratio=0.1))
    kept = sum(
        sampler.root_decision(n * 0x9E3779B97F4A7C15 % (1 << 64), None) for n in range(20_000)
    )
    assert 1_800 <= kept <= 2_200


@pytest.mark.parametrize(
    ("flags", "expected"), [(1, Decision.RECORD_AND_SAMPLE), (0, Decision.DROP)]
)
def test_parent_decision_is_honoured(flags: int, expected: Decision) -> None:
    sampler = RouteRatioSampler(SamplingConfig(ratio=0.0 if flags else 1.0))
    parent = SpanContext(5, 6, is_remote=True, trace_flags=TraceFlags(flags))
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    assert decide(sampler, 5, "/x", ctx) is expected


def test_update_takes_effect_for_the_next_decision() -> None:
    sampler = RouteRatioSampler(SamplingConfig(ratio=0.0))
    assert decide(sampler, LOW_ID, "/x") is Decision.DROP
    sampler.update(SamplingConfig(ratio=1.0))
    assert decide(sampler, LOW_ID, "/x") is Decision.RECORD_AND_SAMPLE


def test_out_of_range_ratio_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        SamplingConfig(ratio=1.5)
