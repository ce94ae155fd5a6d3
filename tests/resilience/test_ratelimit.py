"""Rate limit policies, decisions, the draft-11 headers, and the limiter."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from sloguard.resilience._clock import ManualClock
from sloguard.resilience._limit_keys import RequestInfo
from sloguard.resilience._limit_store import MemoryLimiterStore
from sloguard.resilience._ratelimit import (
    Algorithm,
    LimitDecision,
    RateLimit,
    RateLimiter,
    RateLimitResult,
    most_restrictive,
    rate_limit_headers,
    storage_key,
)


def decision(**changes: object) -> LimitDecision:
    values: dict[str, object] = {
        "allowed": True,
        "limit": 100,
        "remaining": 42,
        "reset_s": 29.2,
        "retry_after_s": 0.0,
        "policy": "api",
        "window_s": 60,
    }
    values.update(changes)
    return LimitDecision(**values)  # type: ignore[arg-type]


def test_an_admitted_decision_renders_the_policy_and_the_quota_left() -> None:
    assert rate_limit_headers(decision()) == [
        ("RateLimit-Policy", '"api";q=100;w=60'),
        ("RateLimit", '"api";r=42;t=30'),
    ]


def test_a_refusal_adds_retry_after_and_reports_its_wait_as_t() -> None:
    refused = decision(allowed=False, remaining=0, retry_after_s=2.1)
    assert rate_limit_headers(refused) == [
        ("RateLimit-Policy", '"api";q=100;w=60'),
        ("RateLimit", '"api";r=0;t=3'),
        ("Retry-After", "3"),
    ]


def test_a_fail_closed_refusal_has_only_retry_after() -> None:
    closed = decision(allowed=False, remaining=0, retry_after_s=0.2, degraded=True)
    assert closed.code == "RATE_503"
    assert rate_limit_headers(closed) == [("Retry-After", "1")]


def test_a_fail_open_decision_has_no_headers() -> None:
    assert rate_limit_headers(decision(degraded=True)) == []


def test_policy_names_are_serialised_as_structured_field_strings() -> None:
    quoted = decision(policy='a"b\\c')
    assert rate_limit_headers(quoted)[0] == ("RateLimit-Policy", '"a\\"b\\\\c";q=100;w=60')


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "é"}, "name", id="non-ascii-name"),
        pytest.param({"limit": 0}, "limit", id="limit"),
        pytest.param({"period_s": 0}, "period_s", id="period"),
        pytest.param({"burst": 0}, "burst", id="burst"),
        pytest.param({"cost": 0}, "cost", id="cost"),
        pytest.param({"algorithm": "leaky"}, "algorithm", id="algorithm"),
        pytest.param({"key": "cookie"}, "key", id="key"),
        pytest.param({"overrides": {"t": 0}}, "overrides", id="override"),
    ],
)
def test_bad_policies_name_the_field(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"name": "api", "limit": 10, "period_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match=f"'{field}'"):
        RateLimit(**values)  # type: ignore[arg-type]


def test_a_hot_key_gets_its_override_and_a_burst_in_proportion() -> None:
    limit = RateLimit("t", 100, 60.0, key="tenant", burst=10, overrides={"tenant-a": 1000})
    assert (limit.limit_for("tenant-a"), limit.burst_for("tenant-a")) == (1000, 100)
    assert (limit.limit_for("tenant-b"), limit.burst_for("tenant-b")) == (100, 10)
    assert limit.model_for("tenant-a").limit == 1000


def test_the_algorithm_may_be_given_by_name() -> None:
    named = RateLimit("s", 1, 1.0, algorithm="sliding_window")  # type: ignore[arg-type]
    assert named.algorithm is Algorithm.SLIDING_WINDOW


def test_long_keys_are_stored_by_their_hash() -> None:
    limit = RateLimit("k", 1, 1.0)
    assert storage_key(limit, "1.2.3.4") == "k:1.2.3.4"
    assert storage_key(limit, "x" * 5000) == storage_key(limit, "x" * 5000)
    assert len(storage_key(limit, "x" * 5000)) < 80


def test_the_most_restrictive_is_the_longest_refusal_then_the_least_remaining() -> None:
    short = decision(allowed=False, remaining=0, retry_after_s=1.0, policy="short")
    long = decision(allowed=False, remaining=0, retry_after_s=9.0, policy="long")
    closed = decision(allowed=False, retry_after_s=1.0, degraded=True, policy="closed")
    assert most_restrictive([short, closed, long]) is long
    assert most_restrictive([decision(), closed]) is closed
    low = decision(remaining=1, policy="low")
    assert most_restrictive([decision(), low, decision(degraded=True)]) is low
    assert most_restrictive([]) is None


def info(ip: str = "10.0.0.1", **changes: object) -> RequestInfo:
    return RequestInfo(client_ip=ip, **changes)  # type: ignore[arg-type]


def limiter(*limits: RateLimit) -> RateLimiter:
    return RateLimiter(limits, MemoryLimiterStore(clock=ManualClock()))


def test_a_request_refused_by_one_limit_is_not_charged_to_the_others() -> None:
    wide = RateLimit("wide", 10, 60.0)
    narrow = RateLimit("narrow", 1, 60.0)
    rate = limiter(wide, narrow)
    assert rate.check_sync(info()).allowed
    refused = rate.check_sync(info())
    assert not refused.allowed
    assert [d.remaining for d in refused.decisions] == [9, 0]
    assert refused.decisive is not None
    assert refused.decisive.policy == "narrow"


def test_a_limit_whose_key_is_none_does_not_apply() -> None:
    rate = limiter(RateLimit("per-user", 1, 60.0, key="principal"))
    assert rate.check_sync(info()) == RateLimitResult()
    assert rate.check_sync(info()).allowed


def test_a_key_function_that_raises_skips_its_limit_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: RequestInfo) -> str:
        raise RuntimeError("boom")

    rate = limiter(RateLimit("broken", 1, 60.0, key=broken))
    with caplog.at_level(logging.ERROR, "sloguard.resilience.ratelimit"):
        assert asyncio.run(rate.check(info())).decisions == ()
    assert "key function raised" in caplog.text


def test_a_refusal_becomes_a_429_problem_with_the_headers() -> None:
    rate = limiter(RateLimit("login", 1, 60.0))
    rate.check_sync(info())
    status, headers, body = rate.check_sync(info()).problem(request_id="r-1")
    assert status == 429
    assert dict(headers)[b"retry-after"] == b"60"
    assert dict(headers)[b"ratelimit"] == b'"login";r=0;t=60'
    problem = json.loads(body)
    assert (problem["code"], problem["violated-policies"]) == ("RATE_429", ["login"])


def test_a_fail_closed_refusal_becomes_a_503_problem() -> None:
    closed = decision(allowed=False, remaining=0, retry_after_s=2.0, degraded=True)
    status, headers, body = RateLimitResult((decision(), closed)).problem()
    assert status == 503
    assert dict(headers)[b"retry-after"] == b"2"
    assert json.loads(body)["code"] == "RATE_503"
    with pytest.raises(ValueError, match="allowed"):
        RateLimitResult((decision(),)).problem()


def test_duplicate_limit_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate names \\['a'\\]"):
        RateLimiter([RateLimit("a", 1, 1.0), RateLimit("a", 2, 1.0)])


def test_the_per_request_cost_replaces_the_policy_cost() -> None:
    rate = limiter(RateLimit("bytes", 100, 60.0))
    result = rate.check_sync(info(), cost=60)
    assert result.decisive is not None
    assert result.decisive.remaining == 40
    assert not rate.check_sync(info(), cost=60).allowed


def test_a_single_limit_answers_as_the_all_or_nothing_path_does() -> None:
    limit = RateLimit("login", 3, 60.0)
    # the second limit never applies, so only the path differs
    alone, grouped = limiter(limit), limiter(limit, RateLimit("user", 1, 60.0, key="principal"))
    for cost in (1, 2, 1, 1):
        assert alone.check_sync(info(), cost) == grouped.check_sync(info(), cost)


def test_a_broken_key_function_beside_others_skips_only_its_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: RequestInfo) -> str:
        raise RuntimeError("boom")

    rate = limiter(RateLimit("broken", 1, 60.0, key=broken), RateLimit("ip", 1, 60.0))
    with caplog.at_level(logging.ERROR, "sloguard.resilience.ratelimit"):
        assert [d.policy for d in rate.check_sync(info()).decisions] == ["ip"]
    assert "'broken': the key function raised" in caplog.text


def test_decisions_and_results_are_values() -> None:
    assert decision() == decision()
    assert decision()._replace(remaining=1).remaining == 1
    assert RateLimitResult((decision(),)).allowed
    assert not RateLimitResult((decision(), decision(allowed=False))).allowed
