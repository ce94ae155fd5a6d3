"""Priority classes: who is shed first, and what a refusal says."""

from __future__ import annotations

import pytest

from sloguard.errors import lookup
from sloguard.resilience._priority import (
    DEFAULT_SHARES,
    Priority,
    PriorityShares,
    ShedDecision,
    ShedReason,
)


def test_default_ceilings_shed_low_first_and_critical_last() -> None:
    assert DEFAULT_SHARES.ceilings(100) == (50, 80, 95, 100)


def test_a_tiny_limit_still_admits_one_request_of_every_class() -> None:
    assert DEFAULT_SHARES.ceilings(1) == (1, 1, 1, 1)
    assert DEFAULT_SHARES.ceilings(2) == (1, 1, 1, 2)


def test_ceilings_are_ordered_by_priority_for_every_limit() -> None:
    for limit in range(1, 500):
        ceilings = DEFAULT_SHARES.ceilings(limit)
        assert list(ceilings) == sorted(ceilings)
        assert ceilings[Priority.CRITICAL] == limit


@pytest.mark.parametrize(
    ("shares", "field"),
    [
        pytest.param({"low": 0.0}, "low", id="zero"),
        pytest.param({"high": 1.5}, "high", id="above-one"),
        pytest.param({"normal": 0.4}, "normal", id="below-a-lower-class"),
        pytest.param({"critical": float("nan")}, "critical", id="nan"),
    ],
)
def test_bad_shares_are_refused_naming_the_field(shares: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=repr(field)):
        PriorityShares.from_mapping(shares)


def test_shares_from_settings_refuse_an_unknown_class() -> None:
    with pytest.raises(ValueError, match="'urgent'"):
        PriorityShares.from_mapping({"urgent": 0.9})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("low", Priority.LOW, id="name"),
        pytest.param(" Critical ", Priority.CRITICAL, id="mixed-case"),
        pytest.param(2, Priority.HIGH, id="number"),
        pytest.param(Priority.NORMAL, Priority.NORMAL, id="member"),
    ],
)
def test_priority_parses_names_numbers_and_members(value: str | int, expected: Priority) -> None:
    assert Priority.parse(value) is expected


@pytest.mark.parametrize("value", ["urgent", 7, ""])
def test_priority_refuses_what_is_not_a_class(value: str | int) -> None:
    with pytest.raises(ValueError, match="expected one of low, normal, high, critical"):
        Priority.parse(value)


@pytest.mark.parametrize("reason", list(ShedReason), ids=lambda r: r.code)
def test_every_shed_code_is_a_registered_503(reason: ShedReason) -> None:
    assert lookup(reason.code).status == 503


@pytest.mark.parametrize(
    ("seconds", "header"),
    [pytest.param(0.2, "1", id="rounds-up-to-one"), pytest.param(2.1, "3", id="ceil")],
)
def test_retry_after_header_is_whole_seconds(seconds: float, header: str) -> None:
    decision = ShedDecision(ShedReason.MEMORY, Priority.LOW, "busy", seconds)
    assert decision.retry_after_header == header
    assert decision.code == "SHED_201"
