"""tracestate: the W3C test-suite cases, round trips, and agreement with OpenTelemetry.

Most cases come from the W3C conformance suite (w3c/trace-context, test/test.py), which
expects an invalid header to be discarded as a whole.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace.span import TraceState

from sloguard.telemetry.propagation import (
    MAX_TRACESTATE_LENGTH,
    MAX_TRACESTATE_MEMBERS,
    format_tracestate,
    parse_tracestate,
)

KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
THIRTY_TWO = ",".join(f"bar{i:02}={i:02}" for i in range(1, 33))

ACCEPTED = [
    pytest.param("foo=1,bar=2", (("foo", "1"), ("bar", "2")), id="two-members-in-order"),
    pytest.param("", (), id="empty-header"),
    pytest.param(" \t ", (), id="only-ows"),
    pytest.param("foo=1,,bar=2", (("foo", "1"), ("bar", "2")), id="empty-member"),
    pytest.param(",foo=1, ,", (("foo", "1"),), id="empty-members-at-both-ends"),
    pytest.param(
        "foo=1 \t , \t bar=2, \t baz=3", (("foo", "1"), ("bar", "2"), ("baz", "3")), id="ows"
    ),
    pytest.param("foo=1\t \t,\t \tbar=2", (("foo", "1"), ("bar", "2")), id="tabs-around-commas"),
    pytest.param("\t foo=1 \t", (("foo", "1"),), id="ows-around-the-header"),
    pytest.param("foo= 1", (("foo", " 1"),), id="leading-space-is-part-of-the-value"),
    pytest.param("foo=a b", (("foo", "a b"),), id="inner-space"),
    pytest.param(
        KEY_CHARS + "=" + VALUE_CHARS, ((KEY_CHARS, VALUE_CHARS),), id="all-allowed-characters"
    ),
    pytest.param(
        KEY_CHARS + "@a-z0-9_-*/=1", ((KEY_CHARS + "@a-z0-9_-*/", "1"),), id="multi-tenant-key"
    ),
    pytest.param("0tenant@sys=1", (("0tenant@sys", "1"),), id="tenant-may-start-with-a-digit"),
    pytest.param("z" * 256 + "=1", (("z" * 256, "1"),), id="key-256-characters"),
    pytest.param(
        "t" * 241 + "@" + "v" * 14 + "=1",
        (("t" * 241 + "@" + "v" * 14, "1"),),
        id="tenant-241-system-14",
    ),
    pytest.param("foo=" + "v" * 256, (("foo", "v" * 256),), id="value-256-characters"),
    pytest.param(
        THIRTY_TWO, tuple((f"bar{i:02}", f"{i:02}") for i in range(1, 33)), id="32-members"
    ),
    pytest.param(
        THIRTY_TWO + ",,, ,",
        tuple((f"bar{i:02}", f"{i:02}") for i in range(1, 33)),
        id="empty-members-do-not-count",
    ),
]

REJECTED = [
    pytest.param("foo=1,foo=1", id="duplicate-key-same-value"),
    pytest.param("foo=1,foo=2", id="duplicate-key"),
    pytest.param("foo =1", id="space-in-key"),
    pytest.param("FOO=1", id="uppercase-key"),
    pytest.param("foo.bar=1", id="dot-in-key"),
    pytest.param("1foo=1", id="simple-key-starting-with-digit"),
    pytest.param("foo@=1,bar=2", id="empty-system"),
    pytest.param("@foo=1,bar=2", id="empty-tenant"),
    pytest.param("foo@@bar=1,bar=2", id="double-at"),
    pytest.param("foo@bar@baz=1,bar=2", id="two-ats"),
    pytest.param("t@1v=1", id="system-starting-with-digit"),
    pytest.param("_t@v=1", id="tenant-starting-with-underscore"),
    pytest.param(THIRTY_TWO + ",bar33=33", id="33-members"),
    pytest.param("foo=1," + "z" * 257 + "=1", id="key-257-characters"),
    pytest.param("foo=1," + "t" * 242 + "@v=1", id="tenant-242-characters"),
    pytest.param("foo=1,t@" + "v" * 15 + "=1", id="system-15-characters"),
    pytest.param("foo=bar=baz", id="equals-in-value"),
    pytest.param("foo=,bar=3", id="empty-value"),
    pytest.param("foo=" + "v" * 257, id="value-257-characters"),
    pytest.param("foo=a\tb", id="tab-in-value"),
    pytest.param("foo=a\x7fb", id="delete-in-value"),
    pytest.param("foo=caf\u00e9", id="non-ascii-value"),
    pytest.param("foo=a\nb", id="newline-in-value"),
    pytest.param("foo", id="member-without-equals"),
    pytest.param("=1", id="empty-key"),
    pytest.param("foo=1" + " " * MAX_TRACESTATE_LENGTH, id="longer-than-cap"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_parse_tracestate_keeps_valid_members_in_order(
    value: str, expected: tuple[tuple[str, str], ...]
) -> None:
    assert parse_tracestate(value) == expected


@pytest.mark.parametrize("value", REJECTED)
def test_parse_tracestate_discards_an_invalid_header_as_a_whole(value: str) -> None:
    assert parse_tracestate(value) == ()


def test_tracestate_cap_is_on_the_whole_value_and_inclusive() -> None:
    head = "foo=1,bar="
    at_cap = head + "v" * 256 + " " * (MAX_TRACESTATE_LENGTH - len(head) - 256)
    assert parse_tracestate(at_cap) == (("foo", "1"), ("bar", "v" * 256))
    assert parse_tracestate(at_cap + " ") == ()


@pytest.mark.parametrize("value", [b"foo=1", None, 7, ["foo=1"]])
def test_parse_tracestate_returns_nothing_for_values_that_are_not_text(value: object) -> None:
    assert parse_tracestate(value) == ()  # type: ignore[arg-type]


simple_keys = st.from_regex(r"[a-z][a-z0-9_\-*/]{0,30}", fullmatch=True)
tenant_keys = st.from_regex(r"[a-z0-9][a-z0-9_\-*/]{0,20}@[a-z][a-z0-9_\-*/]{0,13}", fullmatch=True)
values = st.from_regex(
    r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,40}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", fullmatch=True
)
entry_lists = st.lists(
    st.tuples(st.one_of(simple_keys, tenant_keys), values),
    max_size=MAX_TRACESTATE_MEMBERS,
    unique_by=lambda entry: entry[0],
)


@given(entry_lists)
def test_format_then_parse_tracestate_round_trips(entries: list[tuple[str, str]]) -> None:
    assert parse_tracestate(format_tracestate(entries)) == tuple(entries)


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([("Foo", "1")], id="invalid-key"),
        pytest.param([("foo", "a,b=2")], id="comma-in-value"),
        pytest.param([("foo", "1 ")], id="trailing-space-in-value"),
        pytest.param([("foo", "")], id="empty-value"),
        pytest.param([("foo", "1"), ("foo", "2")], id="duplicate-key"),
        pytest.param([(f"k{i}", "1") for i in range(33)], id="33-entries"),
    ],
)
def test_format_tracestate_refuses_what_parse_would_discard(entries: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="invalid tracestate"):
        format_tracestate(entries)


@given(st.text())
def test_parse_tracestate_never_raises_on_arbitrary_text(value: str) -> None:
    assert isinstance(parse_tracestate(value), tuple)


# OpenTelemetry's TraceState.from_header follows the same Level 1 grammar and also discards
# the whole header on a bad member, a duplicate key or more than 32 members: no differences.
near_keys = st.one_of(simple_keys, tenant_keys, st.text("abAZ09_-*/@. ", max_size=6))
near_values = st.one_of(values, st.text(VALUE_CHARS + "=\t\x7f\u00e9", max_size=6))
near_members = st.one_of(
    st.tuples(near_keys, st.sampled_from(["=", "=", "", "=="]), near_values).map("".join),
    st.sampled_from(["", " ", "\t"]),
)
near_tracestates = st.lists(
    st.tuples(st.sampled_from([",", ", ", " ,\t", ",,"]), near_members).map("".join),
    max_size=34,
).map(lambda members: "".join(members)[1:])


@settings(max_examples=500)
@given(st.one_of(entry_lists.map(format_tracestate), near_tracestates))
def test_parse_tracestate_agrees_with_opentelemetry(value: str) -> None:
    assert parse_tracestate(value) == tuple(TraceState.from_header([value]).items())
