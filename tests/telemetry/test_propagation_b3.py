"""B3 (single ``b3`` header and ``X-B3-*`` headers) and the ``X-Trace-ID`` header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.telemetry.propagation import (
    MAX_HEADER_LENGTH,
    IncomingTrace,
    parse_b3_multi,
    parse_b3_single,
    parse_x_trace_id,
)

TRACE = "80f198ee56343ba864fe8b2a57d3eff7"
SPAN = "e457b5a2e4d86bd1"
PARENT = "05e3ac9a4f6e3b90"
TRACE_ID, SPAN_ID = int(TRACE, 16), int(SPAN, 16)


def b3(sampled: bool | None, debug: bool = False, trace_id: int = TRACE_ID) -> IncomingTrace:
    return IncomingTrace(trace_id, SPAN_ID, sampled, (), "b3", debug)


SINGLE_ACCEPTED = [
    pytest.param(f"{TRACE}-{SPAN}-1-{PARENT}", b3(True), id="all-four-fields"),
    pytest.param(f"{TRACE}-{SPAN}-1", b3(True), id="accept"),
    pytest.param(f"{TRACE}-{SPAN}-0", b3(False), id="deny"),
    pytest.param(f"{TRACE}-{SPAN}-d", b3(True, debug=True), id="debug-implies-accept"),
    pytest.param(f"{TRACE}-{SPAN}", b3(None), id="defer"),
    pytest.param(
        f"{TRACE[16:]}-{SPAN}-1", b3(True, trace_id=int(TRACE[16:], 16)), id="64-bit-trace-id"
    ),
    pytest.param(
        f"{'0' * 16}{TRACE[16:]}-{SPAN}", b3(None, trace_id=int(TRACE[16:], 16)), id="padded-64-bit"
    ),
    pytest.param(f" {TRACE}-{SPAN}-1\t", b3(True), id="ows-trimmed"),
    pytest.param(f"{TRACE}-{SPAN}-0-{'0' * 16}", b3(False), id="parent-id-is-not-used"),
]

SINGLE_REJECTED = [
    pytest.param("0", id="deny-without-ids"),
    pytest.param("1", id="accept-without-ids"),
    pytest.param("d", id="debug-without-ids"),
    pytest.param("", id="empty"),
    pytest.param(TRACE, id="trace-id-only"),
    pytest.param(f"{TRACE.upper()}-{SPAN}-1", id="uppercase-trace-id"),
    pytest.param(f"{TRACE}-{SPAN.upper()}-1", id="uppercase-span-id"),
    pytest.param(f"{TRACE[1:]}-{SPAN}-1", id="trace-id-31-digits"),
    pytest.param(f"{TRACE}0-{SPAN}-1", id="trace-id-33-digits"),
    pytest.param(f"{TRACE[:15]}-{SPAN}-1", id="trace-id-15-digits"),
    pytest.param(f"{TRACE}-{SPAN[1:]}-1", id="span-id-15-digits"),
    pytest.param(f"{TRACE}-{SPAN}0-1", id="span-id-17-digits"),
    pytest.param(f"{'0' * 32}-{SPAN}-1", id="zero-trace-id"),
    pytest.param(f"{'0' * 16}-{SPAN}-1", id="zero-64-bit-trace-id"),
    pytest.param(f"{TRACE}-{'0' * 16}-1", id="zero-span-id"),
    pytest.param(f"{TRACE}-{SPAN}-2", id="unknown-sampling-state"),
    pytest.param(f"{TRACE}-{SPAN}-true", id="true-is-not-a-b3-sampling-state"),
    pytest.param(f"{TRACE}-{SPAN}-", id="empty-sampling-state"),
    pytest.param(f"{TRACE}-{SPAN}-{PARENT}", id="parent-in-the-sampling-position"),
    pytest.param(f"{TRACE}-{SPAN}-1-{PARENT[1:]}", id="parent-15-digits"),
    pytest.param(f"{TRACE}-{SPAN}-1-{PARENT.upper()}", id="uppercase-parent"),
    pytest.param(f"{TRACE}-{SPAN}-1-{PARENT}-x", id="five-fields"),
    pytest.param(f"{TRACE}-{SPAN}-1,{TRACE}-{SPAN}-1", id="repeated-header-joined"),
    pytest.param(f"{TRACE[:31]}\u0663-{SPAN}", id="non-ascii-digit"),
    pytest.param(f"{TRACE}-{SPAN}-1-{PARENT}" + " " * MAX_HEADER_LENGTH, id="longer-than-cap"),
]


@pytest.mark.parametrize(("value", "expected"), SINGLE_ACCEPTED)
def test_parse_b3_single_reads_the_ids_and_sampling_state(
    value: str, expected: IncomingTrace
) -> None:
    assert parse_b3_single(value) == expected


@pytest.mark.parametrize("value", SINGLE_REJECTED)
def test_parse_b3_single_rejects_malformed_headers(value: str) -> None:
    assert parse_b3_single(value) is None


def multi(sampled: bool | None, debug: bool = False) -> IncomingTrace:
    return IncomingTrace(TRACE_ID, SPAN_ID, sampled, (), "b3multi", debug)


IDS = {"x-b3-traceid": TRACE, "x-b3-spanid": SPAN}
MULTI_ACCEPTED = [
    pytest.param({**IDS, "x-b3-sampled": "1", "x-b3-parentspanid": PARENT}, multi(True), id="all"),
    pytest.param(IDS, multi(None), id="defer"),
    pytest.param({**IDS, "x-b3-sampled": "0"}, multi(False), id="deny"),
    pytest.param({**IDS, "x-b3-sampled": "true"}, multi(True), id="lenient-true"),
    pytest.param({**IDS, "x-b3-sampled": "False"}, multi(False), id="lenient-false-any-case"),
    pytest.param({**IDS, "x-b3-flags": "1"}, multi(True, debug=True), id="debug-implies-accept"),
    pytest.param(
        {**IDS, "x-b3-flags": "1", "x-b3-sampled": "0"}, multi(True, debug=True), id="debug-wins"
    ),
    pytest.param({**IDS, "x-b3-flags": "0"}, multi(None), id="flags-0-is-not-debug"),
    pytest.param({**IDS, "x-b3-flags": "2"}, multi(None), id="unknown-flags-ignored"),
    pytest.param(
        {"x-b3-traceid": f"{TRACE},{'1' * 32}", "x-b3-spanid": f"{SPAN}, x"},
        multi(None),
        id="first-value-wins",
    ),
    pytest.param(
        {"x-b3-traceid": f" {TRACE} ", "x-b3-spanid": f"\t{SPAN}"}, multi(None), id="ows-trimmed"
    ),
]

MULTI_REJECTED = [
    pytest.param({}, id="no-headers"),
    pytest.param({"x-b3-traceid": TRACE}, id="no-span-id"),
    pytest.param({"x-b3-spanid": SPAN, "x-b3-sampled": "1"}, id="no-trace-id"),
    pytest.param({"x-b3-sampled": "0"}, id="deny-without-ids"),
    pytest.param({**IDS, "x-b3-sampled": "yes"}, id="unknown-sampled-value"),
    pytest.param({**IDS, "x-b3-sampled": "d"}, id="d-is-only-for-the-single-header"),
    pytest.param({**IDS, "x-b3-parentspanid": "x"}, id="malformed-parent"),
    pytest.param({**IDS, "x-b3-traceid": TRACE.upper()}, id="uppercase-trace-id"),
    pytest.param({**IDS, "x-b3-traceid": "0" * 32}, id="zero-trace-id"),
    pytest.param({**IDS, "x-b3-spanid": "0" * 16}, id="zero-span-id"),
    pytest.param({**IDS, "x-b3-spanid": SPAN + " " * MAX_HEADER_LENGTH}, id="longer-than-cap"),
    pytest.param({**IDS, "x-b3-spanid": b"e457b5a2e4d86bd1"}, id="value-not-text"),
]


@pytest.mark.parametrize(("headers", "expected"), MULTI_ACCEPTED)
def test_parse_b3_multi_reads_the_x_b3_headers(
    headers: dict[str, str], expected: IncomingTrace
) -> None:
    assert parse_b3_multi(headers) == expected


@pytest.mark.parametrize("headers", MULTI_REJECTED)
def test_parse_b3_multi_rejects_missing_or_malformed_headers(headers: dict[str, str]) -> None:
    assert parse_b3_multi(headers) is None


UUID = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
UUID_ID = int(UUID.replace("-", ""), 16)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(UUID.replace("-", ""), id="32-hex"),
        pytest.param(UUID.replace("-", "").upper(), id="32-hex-uppercase"),
        pytest.param(UUID, id="uuid"),
        pytest.param(UUID.upper(), id="uuid-uppercase"),
        pytest.param(f" {UUID}\t", id="ows-trimmed"),
    ],
)
def test_parse_x_trace_id_reads_hex_and_uuid_forms_in_either_case(value: str) -> None:
    assert parse_x_trace_id(value) == IncomingTrace(UUID_ID, 0, None, (), "x-trace-id")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("0" * 32, id="zero"),
        pytest.param("00000000-0000-0000-0000-000000000000", id="nil-uuid"),
        pytest.param(UUID.replace("-", "")[1:], id="31-hex"),
        pytest.param(UUID.replace("-", "") + "0", id="33-hex"),
        pytest.param("{" + UUID + "}", id="braced-uuid"),
        pytest.param("urn:uuid:" + UUID, id="urn"),
        pytest.param("4bf92f3577b3-4da6-a3ce-929d-0e0e4736", id="dashes-misplaced"),
        pytest.param("4bf92f35-77b3-4da6-a3ce-929d0e0e473-", id="extra-dash"),
        pytest.param("g" * 32, id="not-hex"),
        pytest.param("0x" + "1" * 30, id="hex-prefix"),
        pytest.param("req-1234", id="request-id"),
        pytest.param(UUID + "," + UUID, id="repeated-header-joined"),
        pytest.param(UUID + " " * MAX_HEADER_LENGTH, id="longer-than-cap"),
    ],
)
def test_parse_x_trace_id_rejects_anything_else(value: str) -> None:
    assert parse_x_trace_id(value) is None


@given(st.text())
def test_b3_and_x_trace_id_parsers_never_raise_on_arbitrary_text(value: str) -> None:
    for found in (parse_b3_single(value), parse_x_trace_id(value)):
        assert found is None or (found.trace_id > 0 and found.tracestate == ())


@given(st.dictionaries(st.sampled_from(sorted(IDS) + ["x-b3-sampled", "x-b3-flags"]), st.text()))
def test_parse_b3_multi_never_raises_on_arbitrary_text(headers: dict[str, str]) -> None:
    found = parse_b3_multi(headers)
    assert found is None or (found.trace_id > 0 and found.span_id > 0)
