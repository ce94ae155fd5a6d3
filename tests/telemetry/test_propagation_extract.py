"""extract (propagator order, fallbacks, never raising) and inject (what goes out)."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.telemetry.propagation import (
    PROPAGATORS,
    IncomingTrace,
    extract,
    inject,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACE_ID, SPAN_ID = int(TRACE, 16), int(SPAN, 16)
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"
B3_TRACE = "80f198ee56343ba864fe8b2a57d3eff7"
B3 = f"{B3_TRACE}-e457b5a2e4d86bd1-0"
UUID = "a3ce929d-0e0e-4736-8448-eb211c80319c"


def test_extract_reads_traceparent_and_its_tracestate() -> None:
    found = extract({"traceparent": TRACEPARENT, "tracestate": "rojo=1,congo=2"})
    assert found == IncomingTrace(
        TRACE_ID, SPAN_ID, True, (("rojo", "1"), ("congo", "2")), "tracecontext"
    )


@pytest.mark.parametrize(
    ("flags", "sampled"), [("00", False), ("01", True), ("09", True), ("fe", False), ("ff", True)]
)
def test_only_bit_zero_of_the_trace_flags_means_sampled(flags: str, sampled: bool) -> None:
    found = extract({"traceparent": f"00-{TRACE}-{SPAN}-{flags}"})
    assert found is not None
    assert found.sampled is sampled


def test_invalid_tracestate_does_not_invalidate_the_traceparent() -> None:
    found = extract({"traceparent": TRACEPARENT, "tracestate": "foo=1,foo=2"})
    assert found is not None
    assert (found.trace_id, found.tracestate) == (TRACE_ID, ())


def test_tracestate_is_ignored_without_a_valid_traceparent() -> None:
    headers = {"traceparent": TRACEPARENT[:-1], "tracestate": "rojo=1", "b3": B3}
    found = extract(headers)
    assert found is not None
    assert (found.source, found.tracestate) == ("b3", ())
    assert extract({"tracestate": "rojo=1"}) is None


@pytest.mark.parametrize(
    ("propagators", "source"),
    [
        pytest.param(("tracecontext", "b3", "x-trace-id"), "tracecontext", id="default-order"),
        pytest.param(("b3", "tracecontext"), "b3", id="b3-first"),
        pytest.param(["x-trace-id", "b3"], "x-trace-id", id="list-of-names"),
        pytest.param(("b3multi", "tracecontext"), "b3multi", id="b3multi-alone-reads-x-b3"),
        pytest.param(("nonsense", "tracecontext"), "tracecontext", id="unknown-name-skipped"),
    ],
)
def test_the_first_valid_propagator_in_the_given_order_wins(
    propagators: tuple[str, ...], source: str
) -> None:
    headers = {
        "traceparent": TRACEPARENT,
        "b3": B3,
        "x-b3-traceid": B3_TRACE,
        "x-b3-spanid": "e457b5a2e4d86bd1",
        "x-trace-id": UUID,
    }
    found = extract(headers, propagators)
    assert found is not None
    assert found.source == source


def test_b3_single_header_takes_precedence_and_falls_back_to_x_b3_when_invalid() -> None:
    multi = {"x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "1"}
    single = extract({**multi, "b3": B3}, ("b3",))
    fallback = extract({**multi, "b3": "0"}, ("b3",))
    assert single is not None
    assert fallback is not None
    assert (single.source, single.trace_id, single.sampled) == ("b3", int(B3_TRACE, 16), False)
    assert (fallback.source, fallback.trace_id, fallback.sampled) == ("b3multi", TRACE_ID, True)


def test_x_trace_id_carries_a_trace_id_without_span_or_decision() -> None:
    assert extract({"x-trace-id": UUID}) == IncomingTrace(
        int(UUID.replace("-", ""), 16), 0, None, (), "x-trace-id"
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-headers"),
        pytest.param({"host": "127.0.0.1", "accept": "*/*"}, id="unrelated-headers"),
        pytest.param(
            {"traceparent": "garbage", "b3": "1", "x-trace-id": "req-1"}, id="all-invalid"
        ),
        pytest.param({"TraceParent": TRACEPARENT}, id="names-must-be-lowercased-by-the-caller"),
        pytest.param({"traceparent": TRACEPARENT.encode()}, id="bytes-value"),
        pytest.param({"traceparent": None, "b3": 7}, id="non-text-values"),
        pytest.param({"x-b3-traceid": [TRACE], "x-b3-spanid": SPAN}, id="list-value"),
    ],
)
def test_extract_finds_nothing_without_a_valid_carrier(headers: dict[str, str]) -> None:
    assert extract(headers) is None


def test_a_value_that_is_not_text_does_not_hide_the_next_propagator() -> None:
    headers: dict[str, object] = {"traceparent": TRACEPARENT.encode(), "x-trace-id": UUID}
    found = extract(headers)  # type: ignore[arg-type]
    assert found is not None
    assert found.source == "x-trace-id"


def test_extract_ignores_headers_of_propagators_not_listed() -> None:
    headers = {"b3": B3, "x-trace-id": UUID}
    assert extract(headers, ("tracecontext",)) is None
    assert extract(headers, ()) is None


def test_extract_accepts_any_mapping_not_only_dict() -> None:
    found = extract(MappingProxyType({"traceparent": TRACEPARENT}))
    assert found is not None
    assert found.trace_id == TRACE_ID


def test_extract_survives_values_of_any_size() -> None:
    huge = "0" * 1_000_000
    names = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-trace-id")
    headers = dict.fromkeys(names, huge)
    assert extract(headers, ("tracecontext", "b3", "x-trace-id")) is None


header_names = st.sampled_from(
    [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
        "x-trace-id",
        "host",
    ]
)
header_values = st.one_of(
    st.text(), st.text("0123456789abcdef-", min_size=16, max_size=60), st.binary(), st.none()
)


@given(st.dictionaries(header_names, header_values), st.permutations(sorted(PROPAGATORS)))
def test_extract_never_raises_on_arbitrary_headers(
    headers: dict[str, str], propagators: list[str]
) -> None:
    found = extract(headers, propagators)
    assert found is None or (found.trace_id > 0 and found.source in PROPAGATORS)


trace_ids = st.integers(1, (1 << 128) - 1)
span_ids = st.integers(1, (1 << 64) - 1)


@pytest.mark.parametrize("propagator", ["tracecontext", "b3", "b3multi"])
@given(trace_id=trace_ids, span_id=span_ids, sampled=st.booleans())
def test_inject_then_extract_round_trips(
    propagator: str, trace_id: int, span_id: int, sampled: bool
) -> None:
    headers: dict[str, str] = {}
    inject(headers, trace_id, span_id, sampled, propagators=(propagator,))
    found = extract(headers, (propagator,))
    assert found is not None
    assert (found.trace_id, found.span_id, found.sampled) == (trace_id, span_id, sampled)
    assert found.source == propagator


def test_inject_writes_traceparent_and_tracestate_by_default() -> None:
    headers: dict[str, str] = {}
    inject(headers, TRACE_ID, SPAN_ID, sampled=True, tracestate=[("congo", "t61rcWkgMzE")])
    assert headers == {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}


def test_inject_writes_no_tracestate_when_there_is_none() -> None:
    headers: dict[str, str] = {}
    inject(headers, TRACE_ID, SPAN_ID, sampled=False)
    assert headers == {"traceparent": f"00-{TRACE}-{SPAN}-00"}


def test_inject_adds_the_b3_single_header_when_listed() -> None:
    headers: dict[str, str] = {}
    inject(headers, TRACE_ID, SPAN_ID, sampled=True, propagators=("tracecontext", "b3"))
    assert headers == {"traceparent": TRACEPARENT, "b3": f"{TRACE}-{SPAN}-1"}


def test_inject_writes_x_trace_id_when_listed() -> None:
    headers: dict[str, str] = {}
    inject(headers, TRACE_ID, SPAN_ID, sampled=True, propagators=("x-trace-id",))
    assert headers == {"x-trace-id": TRACE}


@pytest.mark.parametrize(
    ("trace_id", "span_id", "tracestate"),
    [
        pytest.param(0, SPAN_ID, (), id="zero-trace-id"),
        pytest.param(TRACE_ID, 1 << 64, (), id="span-id-too-large"),
        pytest.param(TRACE_ID, SPAN_ID, (("Bad Key", "1"),), id="invalid-tracestate"),
    ],
)
def test_inject_refuses_invalid_input_and_writes_nothing(
    trace_id: int, span_id: int, tracestate: tuple[tuple[str, str], ...]
) -> None:
    headers: dict[str, str] = {}
    with pytest.raises(ValueError, match="invalid"):
        inject(headers, trace_id, span_id, True, tracestate, ("b3", "tracecontext"))
    assert headers == {}
