"""The real client address: read from the right, only across trusted proxies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloguard.resilience._client_ip import (
    ClientIPResolver,
    normalize_ip,
    parse_forwarded_for,
    parse_x_forwarded_for,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("203.0.113.7", "203.0.113.7", id="ipv4"),
        pytest.param(" 203.0.113.7:4711 ", "203.0.113.7", id="ipv4-port"),
        pytest.param("2001:DB8:0:0::1", "2001:db8::1", id="ipv6-compressed"),
        pytest.param("[2001:db8::1]:443", "2001:db8::1", id="ipv6-bracket-port"),
        pytest.param('"[2001:db8::1]"', "2001:db8::1", id="ipv6-quoted"),
        pytest.param("::ffff:192.0.2.9", "192.0.2.9", id="ipv4-mapped"),
        pytest.param("unknown", None, id="unknown"),
        pytest.param("_hidden", None, id="obfuscated"),
        pytest.param("[2001:db8::1", None, id="unclosed-bracket"),
        pytest.param("1.2.3.4:http", None, id="named-port"),
        pytest.param("", None, id="empty"),
    ],
)
def test_addresses_are_normalised_or_refused(raw: str, expected: str | None) -> None:
    assert normalize_ip(raw) == expected


def test_forwarded_elements_yield_their_for_parameter() -> None:
    header = 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=_x'
    assert parse_forwarded_for(header) == ["192.0.2.60", "2001:db8:cafe::17", None]


def test_a_quoted_comma_does_not_split_a_forwarded_element() -> None:
    assert parse_forwarded_for('for="1.2.3.4";ext="a,b", for=5.6.7.8') == ["1.2.3.4", "5.6.7.8"]


def test_an_element_with_two_for_parameters_is_refused() -> None:
    assert parse_forwarded_for("for=1.2.3.4;for=5.6.7.8") == [None]


def test_without_trust_the_header_is_ignored() -> None:
    resolver = ClientIPResolver()
    assert resolver.resolve("10.0.0.2", ["6.6.6.6"]) == "10.0.0.2"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("198.51.100.1", "198.51.100.1", id="one-proxy"),
        pytest.param("6.6.6.6, 198.51.100.1", "198.51.100.1", id="spoofed-left-ignored"),
        pytest.param("garbage, 198.51.100.1", "198.51.100.1", id="garbage-left-ignored"),
        pytest.param("6.6.6.6, unknown", "10.0.0.2", id="unknown-uses-peer"),
        pytest.param("", "10.0.0.2", id="empty-uses-peer"),
    ],
)
def test_one_trusted_hop_takes_the_rightmost_entry(header: str, expected: str) -> None:
    assert ClientIPResolver(trusted_hops=1).resolve("10.0.0.2", [header]) == expected


def test_two_trusted_hops_take_the_second_from_the_right() -> None:
    resolver = ClientIPResolver(trusted_hops=2)
    assert resolver.resolve("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.9"]) == "198.51.100.1"
    assert resolver.resolve("10.0.0.2", ["10.0.0.9"]) == "10.0.0.2"


def test_trusted_proxies_walk_left_until_an_untrusted_address() -> None:
    resolver = ClientIPResolver(trusted_proxies=("10.0.0.0/8", "fd00::/8"))
    chain = ["6.6.6.6, 198.51.100.1, 10.1.1.1", "fd00::5"]
    assert resolver.resolve("10.0.0.2", chain) == "198.51.100.1"


def test_a_peer_outside_the_trusted_proxies_is_the_client() -> None:
    resolver = ClientIPResolver(trusted_hops=1, trusted_proxies=("10.0.0.0/8",))
    assert resolver.resolve("203.0.113.5", ["6.6.6.6"]) == "203.0.113.5"
    assert resolver.resolve("10.0.0.2", ["198.51.100.1"]) == "198.51.100.1"


def test_an_obfuscated_hop_stops_the_walk_at_the_last_trusted_proxy() -> None:
    resolver = ClientIPResolver(trusted_proxies=("10.0.0.0/8",), header="forwarded")
    assert resolver.resolve("10.0.0.2", ["for=6.6.6.6, for=_gw, for=10.0.0.3"]) == "10.0.0.3"


def test_only_the_configured_header_is_read_from_the_scope() -> None:
    resolver = ClientIPResolver(trusted_hops=1, header="forwarded")
    scope = {
        "client": ("10.0.0.2", 5000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"forwarded", b'for="[2001:db8::9]"')],
    }
    assert resolver.from_scope(scope) == "2001:db8::9"


def test_a_scope_without_a_client_has_no_address() -> None:
    assert ClientIPResolver(trusted_hops=1).from_scope({"headers": []}) is None


def test_bad_trusted_proxies_name_the_field() -> None:
    with pytest.raises(ValueError, match="'trusted_proxies'"):
        ClientIPResolver(trusted_proxies=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="'trusted_hops'"):
        ClientIPResolver(trusted_hops=-1)


def test_an_oversized_header_is_ignored() -> None:
    resolver = ClientIPResolver(trusted_hops=1)
    assert resolver.resolve("10.0.0.2", ["1.1.1.1," * 2000]) == "10.0.0.2"


HEADER_TEXT = st.text(alphabet=st.sampled_from(list('0123456789abcdef.:[]"_,;= fortunknown\\')))


@given(header=HEADER_TEXT, hops=st.integers(0, 4), forwarded=st.booleans())
def test_any_header_resolves_to_the_peer_or_a_valid_address(
    header: str, hops: int, forwarded: bool
) -> None:
    resolver = ClientIPResolver(
        trusted_hops=hops,
        trusted_proxies=("10.0.0.0/8",) if hops == 0 else (),
        header="forwarded" if forwarded else "x-forwarded-for",
    )
    address = resolver.resolve("10.0.0.2", [header])
    assert address is not None
    assert normalize_ip(address) == address


@given(addresses=st.lists(st.ip_addresses(), min_size=1, max_size=6))
def test_x_forwarded_for_round_trips_any_address_list(addresses: list[object]) -> None:
    header = ", ".join(str(a) for a in addresses)
    assert parse_x_forwarded_for(header) == [normalize_ip(str(a)) for a in addresses]


@given(addresses=st.lists(st.ip_addresses(v=6), min_size=1, max_size=6))
def test_forwarded_round_trips_quoted_ipv6_with_ports(addresses: list[object]) -> None:
    header = ", ".join(f'for="[{a}]:8080"' for a in addresses)
    assert parse_forwarded_for(header) == [normalize_ip(str(a)) for a in addresses]
