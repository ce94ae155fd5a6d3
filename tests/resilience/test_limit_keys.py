"""Key extractors over RequestInfo: who a rate limit counts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sloguard.context import RequestContext
from sloguard.resilience._limit_keys import RequestInfo, key_function, principal_id

INFO = RequestInfo(
    method="POST",
    path="/users/7",
    route="/users/{id}",
    client_ip="198.51.100.1",
    headers=[(b"x-api-key", b"k-1"), (b"accept", b"a"), (b"accept", b"b")],
    principal="alice",
    tenant="acme",
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("ip", "198.51.100.1", id="ip"),
        pytest.param("principal", "alice", id="principal"),
        pytest.param("tenant", "acme", id="tenant"),
        pytest.param("route", "/users/{id}", id="route"),
        pytest.param("method", "POST", id="method"),
        pytest.param("global", "*", id="global"),
        pytest.param("header:X-Api-Key", "k-1", id="header"),
        pytest.param("header:accept", "a, b", id="repeated-header"),
        pytest.param("header:authorization", None, id="absent-header"),
    ],
)
def test_named_keys_read_their_part_of_the_request(spec: str, expected: str | None) -> None:
    assert key_function(spec)(INFO) == expected


def test_a_callable_is_its_own_key_function() -> None:
    def by_tenant_and_route(info: RequestInfo) -> str | None:
        return f"{info.tenant}|{info.route}"

    assert key_function(by_tenant_and_route)(INFO) == "acme|/users/{id}"


@pytest.mark.parametrize("spec", ["cookie", "header:", "header:a b"])
def test_unknown_specs_name_the_field(spec: str) -> None:
    with pytest.raises(ValueError, match="'key'"):
        key_function(spec)


@dataclass
class Principal:
    subject: str


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("bob", "bob", id="text"),
        pytest.param(Principal("carol"), "carol", id="subject"),
        pytest.param(object(), None, id="unknown"),
    ],
)
def test_principal_ids_come_from_text_or_a_subject(principal: object, expected: str | None) -> None:
    assert principal_id(principal) == expected


def test_request_info_from_a_scope_takes_route_principal_and_tenant_from_the_context() -> None:
    ctx = RequestContext(request_id="r", route="/orders/{id}", principal=Principal("dave"))
    ctx.tenant = "t-1"
    scope = {"method": "GET", "path": "/orders/9", "headers": [(b"x", b"y")]}
    info = RequestInfo.from_scope(scope, client_ip="192.0.2.1", context=ctx)
    assert (info.route, info.principal, info.tenant) == ("/orders/{id}", "dave", "t-1")
    assert (info.path, info.client_ip, info.header("x")) == ("/orders/9", "192.0.2.1", "y")


def test_without_a_route_template_the_route_key_does_not_apply() -> None:
    info = RequestInfo.from_scope({"path": "/orders/9"}, client_ip=None)
    assert key_function("route")(info) is None
