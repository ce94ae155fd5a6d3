"""Attempts to slip past a route rule by spelling the path differently.

Each case names what the attacker tries; the expected code is what must hold:
``AUTH_202`` for a denied route (even for an admin), ``AUTH_101`` when a public
rule must not widen to an anonymous request, ``AUTH_201`` when RBAC must hold.
Every case runs through the uncached decision and the decision cache.
"""

from collections.abc import Callable

import pytest

from sloguard.auth._decision import Decision, DecisionCache
from sloguard.auth._policy import load_policy
from sloguard.auth._principal import Principal
from sloguard.routing import UNMATCHED as U

POLICY = load_policy(
    """
version: 1
public:
  - {route: "/healthz"}
  - {route: "/docs/**", methods: [GET]}
  - {route: "/files/readme.txt"}
deny:
  - {route: "/admin/**"}
  - {route: "/internal/**"}
  - {route: "/reports/**", methods: [GET]}
  - {route: "/api/*/secrets/**"}
roles:
  viewer: {permissions: ["GET /products/**", "GET /files/*"]}
  admin: {permissions: ["* /**"]}
tenancy: {route_param: tenant_id}
"""
)
PRINCIPALS = {
    "anonymous": None,
    "viewer": Principal("v", frozenset({"viewer"})),
    "admin": Principal("a", frozenset({"admin"})),
}
Decide = Callable[[Principal | None, str, str, str | bytes], Decision]

DENIED = [
    pytest.param("GET", U, "/admin", id="exact"),
    pytest.param("GET", U, "/admin/", id="trailing-slash"),
    pytest.param("GET", U, "/admin/users", id="subpath"),
    pytest.param("GET", U, "//admin", id="double-leading-slash"),
    pytest.param("GET", U, "///admin///users", id="many-slashes"),
    pytest.param("GET", U, "/./admin", id="dot-segment"),
    pytest.param("GET", U, "/admin/.", id="trailing-dot-segment"),
    pytest.param("GET", U, "/x/../admin", id="dotdot-into-admin"),
    pytest.param("GET", U, "/admin/../admin/x", id="dotdot-round-trip"),
    pytest.param("GET", U, "/foo//..//admin", id="dotdot-after-empty-segment"),
    pytest.param("GET", U, "/%2e%2e/admin", id="encoded-dotdot"),
    pytest.param("GET", U, "/x/%2E%2E/admin", id="uppercase-encoded-dotdot"),
    pytest.param("GET", U, "/x/.%2e/admin", id="half-encoded-dotdot"),
    pytest.param("GET", U, "/admin/%2e", id="encoded-dot-after"),
    pytest.param("GET", U, "/%61dmin", id="encoded-letter"),
    pytest.param("GET", U, "/%41DMIN/x", id="encoded-uppercase-letter"),
    pytest.param("GET", U, "/ADMIN", id="uppercase"),
    pytest.param("GET", U, "/Admin/Users", id="mixed-case"),
    pytest.param("GET", U, "/admin;x=1", id="matrix-param"),
    pytest.param("GET", U, "/admin;jsessionid=abc/users", id="jsessionid"),
    pytest.param("GET", U, "/x/..;/admin", id="tomcat-dotdot-semicolon"),
    pytest.param("GET", U, "/admin%2F..", id="encoded-slash-then-dotdot"),
    pytest.param("GET", U, "/admin%2f..", id="lowercase-encoded-slash"),
    pytest.param("GET", U, "/admin%2Fusers", id="encoded-slash-subpath"),
    pytest.param("GET", U, "/x%2F..%2Fadmin", id="encoded-slash-traversal"),
    pytest.param("GET", U, "\\admin", id="backslash"),
    pytest.param("GET", U, "/x\\..\\admin", id="backslash-traversal"),
    pytest.param("GET", U, "/admin%5Cusers", id="encoded-backslash"),
    pytest.param("GET", U, "/admin?x=1", id="query-string"),
    pytest.param("GET", U, "/admin/x?y=/../..", id="dots-in-query"),
    pytest.param("GET", U, b"/admin/x", id="raw-path-bytes"),
    pytest.param("GET", U, b"/%61dmin/x", id="raw-path-bytes-encoded"),
    pytest.param("get", U, "/admin", id="lowercase-method"),
    pytest.param("PROPFIND", U, "/admin", id="unusual-method"),
    pytest.param("GET", "/admin/{x}", "/admin/x", id="matched-template"),
    pytest.param("GET", "/{page}", "/ADMIN", id="catch-all-template-uppercase"),
    pytest.param("GET", "/{p:path}", "/admin/x/y", id="path-template"),
    pytest.param("GET", "/products/{id}", "/products/..%2F..%2Fadmin", id="other-template"),
    pytest.param("GET", U, "/INTERNAL%2Fmetrics", id="second-rule-uppercase-encoded"),
    pytest.param("HEAD", U, "/reports/q1", id="head-under-get-only-rule"),
    pytest.param("get", U, "/Reports/q1", id="lowercase-get-and-case"),
    pytest.param("GET", "/api/{v}/secrets/{k}", "/api/v2/secrets/k", id="wildcard-template"),
    pytest.param("GET", U, "/api/v2/x/../secrets/k", id="wildcard-with-dotdot"),
    pytest.param("GET", U, "/API/v1/SECRETS", id="wildcard-uppercase"),
]

NOT_PUBLIC = [
    pytest.param("GET", U, "/docs/../products", id="dotdot-out-of-public"),
    pytest.param("GET", U, "/docs/%2e%2e/products", id="encoded-dotdot-out-of-public"),
    pytest.param("GET", U, "/docs%2F..%2Fproducts", id="encoded-slash-out-of-public"),
    pytest.param("GET", U, "/docs\\..\\products", id="backslash-out-of-public"),
    pytest.param("GET", U, "/healthz;/../products", id="param-then-dotdot"),
    pytest.param("GET", U, "/healthz/..", id="public-then-dotdot"),
    pytest.param("GET", U, "/files/readme.txt;.exe", id="param-on-public-file"),
    pytest.param("POST", "/docs/{p:path}", "/docs/a", id="method-public-rule-lacks"),
    pytest.param("GET", U, "/HEALTHZ", id="case-variant-of-public"),
    pytest.param("GET", U, "/healthz-internal", id="public-prefix-lookalike"),
    pytest.param("GET", "/files/{name}", "/files/secret.txt", id="sibling-of-public-file"),
]

RBAC = [
    pytest.param("POST", "/products/{id}", "/products/1", id="method-not-granted"),
    pytest.param("BREW", "/products/{id}", "/products/1", id="made-up-method"),
    pytest.param("GET", U, "/products/../orders", id="dotdot-out-of-grant"),
    pytest.param("GET", U, "/Products/1", id="case-variant-of-grant"),
    pytest.param("GET", U, "/files/a%2F..%2F..%2Forders", id="encoded-slash-out-of-grant"),
    pytest.param("GET", "/orders/{id}", "/orders/1", id="other-route"),
]


@pytest.fixture(params=["uncached", "cached"])
def decide(request: pytest.FixtureRequest) -> Decide:
    cache = DecisionCache()

    def run(principal: Principal | None, method: str, route: str, path: str | bytes) -> Decision:
        if request.param == "cached":
            cache.decide(POLICY, principal, method, route, path, tenant=None)  # warm the cache
            return cache.decide(POLICY, principal, method, route, path, tenant=None)
        return POLICY.decide(principal, method, route, path, tenant=None)

    return run


@pytest.mark.parametrize(("method", "route", "path"), DENIED)
def test_a_denied_route_stays_denied_however_it_is_spelt(
    decide: Decide, method: str, route: str, path: str | bytes
) -> None:
    for who in ("anonymous", "admin"):
        decision = decide(PRINCIPALS[who], method, route, path)
        assert (decision.allowed, decision.code) == (False, "AUTH_202"), (who, decision)


@pytest.mark.parametrize(("method", "route", "path"), NOT_PUBLIC)
def test_a_public_rule_does_not_widen_to_other_spellings(
    decide: Decide, method: str, route: str, path: str
) -> None:
    decision = decide(None, method, route, path)
    assert (decision.allowed, decision.public, decision.code) == (False, False, "AUTH_101")


@pytest.mark.parametrize(("method", "route", "path"), RBAC)
def test_rbac_holds_however_the_path_is_spelt(
    decide: Decide, method: str, route: str, path: str
) -> None:
    decision = decide(PRINCIPALS["viewer"], method, route, path)
    assert (decision.allowed, decision.code) == (False, "AUTH_201")


def test_the_same_spellings_of_allowed_routes_stay_allowed(decide: Decide) -> None:
    viewer = PRINCIPALS["viewer"]
    assert decide(viewer, "GET", "/products/{id}", "/products/1").allowed
    assert decide(viewer, "HEAD", U, "/products//1/").allowed
    assert decide(None, "GET", "/docs/{p:path}", "/docs/a/../b").public
    assert decide(None, "GET", U, "/healthz/").public
    assert decide(PRINCIPALS["admin"], "DELETE", U, "/administrators").allowed


def test_the_table_holds_at_least_forty_bypass_attempts() -> None:
    assert len(DENIED) + len(NOT_PUBLIC) + len(RBAC) >= 40


def test_a_tenant_in_another_spelling_of_the_path_is_a_mismatch() -> None:
    route = "/tenants/{tenant_id}/products"
    assert POLICY.tenant_of(route, "/tenants/acme/products") == "acme"
    cache = DecisionCache()
    acme_admin = Principal("a", frozenset({"admin"}), tenant="acme")
    for path in ("/tenants/acme/..%2Fglobex/products", "/tenants/acme/../globex/products"):
        tenant = POLICY.tenant_of(route, path)
        decision = cache.decide(POLICY, acme_admin, "GET", route, path, tenant=tenant)
        assert decision.code == "AUTH_301"
