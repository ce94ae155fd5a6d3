import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.auth._decision import (
    AUTHENTICATION_REQUIRED,
    CONFLICTING_TENANT,
    DecisionCache,
    PolicySnapshot,
)
from sloguard.auth._explain import explain
from sloguard.auth._matchers import (
    Grant,
    GrantIndex,
    RouteRule,
    could_match,
    path_views,
)
from sloguard.auth._policy import compile_policy, load_policy, validate_policy
from sloguard.auth._principal import Principal
from sloguard.auth._synthetic import synthetic_policy, synthetic_requests, synthetic_routes
from sloguard.routing import UNMATCHED, RouteTable, glob_matches

POLICY = """
version: 1
public:
  - {route: "/healthz"}
  - {route: "/docs/**", methods: [GET]}
deny:
  - {route: "/internal/**"}
roles:
  viewer:  {permissions: ["GET /products/**", "catalog:read"]}
  editor:  {inherits: [viewer], permissions: ["POST /products", "PUT /products/*"]}
  admin:   {inherits: [editor], permissions: ["* /**", "*"]}
  auditor: {permissions: ["GET /tenants/*/audit", "audit:*"]}
bindings:
  - {tenant: acme, subjects: [alice], roles: [admin]}
  - {tenant: acme, subjects: ["*"], roles: [auditor]}
tenancy: {route_param: tenant_id, header: x-tenant-id}
"""


@pytest.fixture(scope="module")
def policy() -> PolicySnapshot:
    return load_policy(POLICY, source="policy.yaml")


def who(*roles: str, tenant: str | None = "acme", subject: str = "bob") -> Principal:
    return Principal(subject, frozenset(roles), tenant=tenant)


def test_a_deny_rule_beats_a_public_rule_and_every_role(policy: PolicySnapshot) -> None:
    for principal in (None, who("admin")):
        decision = policy.decide(principal, "GET", UNMATCHED, "/internal/x", tenant=None)
        assert (decision.allowed, decision.code, decision.rule) == (False, "AUTH_202", "deny.0")


def test_a_public_route_needs_no_principal(policy: PolicySnapshot) -> None:
    decision = policy.decide(None, "GET", "/docs/{page}", "/docs/intro", tenant=None)
    assert (decision.allowed, decision.public, decision.rule) == (True, True, "public.1")


def test_a_public_rule_for_get_also_covers_head_but_not_post(policy: PolicySnapshot) -> None:
    assert policy.decide(None, "HEAD", "/docs/{page}", "/docs/a", tenant=None).public
    post = policy.decide(None, "POST", "/docs/{page}", "/docs/a", tenant=None)
    assert post is AUTHENTICATION_REQUIRED


def test_without_a_principal_a_private_route_needs_authentication(policy: PolicySnapshot) -> None:
    decision = policy.decide(None, "GET", "/products/{id}", "/products/1", tenant=None)
    assert (decision.allowed, decision.code, decision.rule) == (False, "AUTH_101", "authentication")


def test_an_inherited_role_grants_and_the_decision_names_the_rule(policy: PolicySnapshot) -> None:
    decision = policy.decide(who("editor"), "GET", "/products/{id}", "/products/1", tenant=None)
    assert decision.allowed
    assert decision.rule == "roles.viewer.permissions.0"
    assert decision.reason == "role editor (inherits viewer) grants GET /products/**"


def test_nothing_granted_is_default_deny(policy: PolicySnapshot) -> None:
    decision = policy.decide(who("viewer"), "DELETE", "/products/{id}", "/products/1", tenant=None)
    assert (decision.allowed, decision.code, decision.rule) == (False, "AUTH_201", "default-deny")
    assert decision.reason == "no role grants DELETE /products/{id}"


def test_roles_the_policy_does_not_know_grant_nothing(policy: PolicySnapshot) -> None:
    decision = policy.decide(who("root", "superuser"), "GET", "/products", "/products", tenant=None)
    assert decision.code == "AUTH_201"


def test_route_grants_match_the_template_not_the_concrete_path(policy: PolicySnapshot) -> None:
    put = policy.decide(who("editor"), "PUT", "/products/{id}", "/products/7", tenant=None)
    assert put.allowed
    # An unmatched route falls back to the normalized path.
    assert policy.decide(who("editor"), "PUT", UNMATCHED, "/products/7/", tenant=None).allowed
    nested = policy.decide(who("editor"), "PUT", "/products/{id}/x", "/products/7/x", tenant=None)
    assert not nested.allowed


@pytest.mark.parametrize(
    ("principal", "tenant", "code"),
    [
        pytest.param(who("admin", tenant="acme"), "globex", "AUTH_301", id="other-tenant"),
        pytest.param(who("admin", tenant=None), "acme", "AUTH_301", id="untenanted-principal"),
        pytest.param(who("viewer", tenant="acme"), "acme", None, id="own-tenant"),
        pytest.param(who("viewer", tenant="acme"), None, None, id="no-tenant-in-request"),
    ],
)
def test_a_principal_acts_only_in_its_own_tenant(
    policy: PolicySnapshot, principal: Principal, tenant: str | None, code: str | None
) -> None:
    decision = policy.decide(principal, "GET", "/products/{id}", "/products/1", tenant=tenant)
    assert decision.code == code


def test_a_binding_grants_its_roles_only_inside_its_tenant(policy: PolicySnapshot) -> None:
    alice_acme = who(subject="alice", tenant="acme")
    delete = ("DELETE", "/products/{id}", "/products/1")
    assert policy.decide(alice_acme, *delete, tenant="acme").allowed
    assert policy.decide(alice_acme, *delete, tenant=None).code == "AUTH_201"
    alice_globex = who(subject="alice", tenant="globex")
    assert policy.decide(alice_globex, *delete, tenant="globex").code == "AUTH_201"


def test_a_wildcard_binding_covers_every_subject_of_the_tenant(policy: PolicySnapshot) -> None:
    route, path = "/tenants/{tenant_id}/audit", "/tenants/acme/audit"
    decision = policy.decide(who(subject="carol"), "GET", route, path, tenant="acme")
    assert decision.reason == "role auditor grants GET /tenants/*/audit"


@pytest.mark.parametrize(
    ("roles", "permission", "rule"),
    [
        pytest.param(("viewer",), "catalog:read", "roles.viewer.permissions.1", id="exact"),
        pytest.param(("admin",), "anything:at-all", "roles.admin.permissions.1", id="star"),
        pytest.param(("auditor",), "audit:export", "roles.auditor.permissions.1", id="prefix"),
        pytest.param(("viewer",), "catalog:write", "default-deny", id="not-granted"),
        pytest.param(("editor",), "audit:export", "default-deny", id="other-prefix"),
    ],
)
def test_a_named_permission_is_granted_by_name_or_pattern(
    policy: PolicySnapshot, roles: tuple[str, ...], permission: str, rule: str
) -> None:
    decision = policy.decide(
        who(*roles), "GET", "/catalog", "/catalog", tenant=None, required_permission=permission
    )
    assert decision.rule == rule


def test_a_route_grant_does_not_satisfy_a_named_permission() -> None:
    snapshot = load_policy("version: 1\nroles:\n  ops: {permissions: ['* /**']}\n")
    decision = snapshot.decide(
        who("ops"), "GET", "/x", "/x", tenant=None, required_permission="catalog:read"
    )
    assert decision.code == "AUTH_201"


@pytest.mark.parametrize(
    ("route", "path", "header", "tenant"),
    [
        pytest.param("/tenants/{tenant_id}/x", "/tenants/acme/x", None, "acme", id="route-param"),
        pytest.param("/tenants/{tenant_id:str}/x", "/tenants/acme/x", None, "acme", id="typed"),
        pytest.param("/tenants/{tenant_id}/x", "/tenants/a%20b/x", None, "a b", id="decoded"),
        pytest.param("/products", "/products", "acme", "acme", id="header-when-no-param"),
        pytest.param("/tenants/{tenant_id}/x", "/tenants/acme/x", "acme", "acme", id="agree"),
        pytest.param(UNMATCHED, "/tenants/acme/x", None, None, id="unmatched-has-no-param"),
        pytest.param("/{p:path}/{tenant_id}", "/a/b/acme", None, None, id="after-a-path-param"),
    ],
)
def test_the_tenant_comes_from_the_route_parameter_then_the_header(
    policy: PolicySnapshot, route: str, path: str, header: str | None, tenant: str | None
) -> None:
    assert policy.tenant_of(route, path, header=header) == tenant


@pytest.mark.parametrize(
    ("path", "header"),
    [
        pytest.param("/tenants/acme/x", "globex", id="header-disagrees-with-path"),
        pytest.param("/tenants/acme/..%2Fglobex/x", None, id="encoded-slash-changes-the-tenant"),
        pytest.param("/tenants/acme/../globex/x", None, id="dotdot-changes-the-tenant"),
    ],
)
def test_a_request_naming_two_tenants_fails_the_tenancy_step(
    policy: PolicySnapshot, path: str, header: str | None
) -> None:
    route = "/tenants/{tenant_id}/x"
    tenant = policy.tenant_of(route, path, header=header)
    assert tenant == CONFLICTING_TENANT
    decision = policy.decide(
        who("admin", tenant=CONFLICTING_TENANT), "GET", route, path, tenant=tenant
    )
    assert (decision.code, decision.reason) == (
        "AUTH_301",
        "the request names more than one tenant",
    )


def test_a_conflicting_tenant_still_lets_deny_and_public_rules_decide_first(
    policy: PolicySnapshot,
) -> None:
    tenant = policy.tenant_of("/docs/{tenant_id}", "/docs/acme", header="globex")
    assert policy.decide(None, "GET", "/docs/{tenant_id}", "/docs/acme", tenant=tenant).public


def test_path_views_of_a_plain_path_is_the_path_itself() -> None:
    assert path_views("/products/42") == ("/products/42",)
    assert path_views(b"/products/42") == ("/products/42",)


def test_path_views_add_merged_slash_unresolved_and_decoded_slash_spellings() -> None:
    assert path_views("/admin/..") == ("/", "/admin/..")
    assert path_views("/a//../b") == ("/a/b", "/b", "/a/../b")
    assert path_views("/a%2F..%2Fadmin") == ("/a%2F..%2Fadmin", "/admin", "/a/../admin")


@settings(max_examples=400, deadline=None)
@given(
    glob=st.lists(st.sampled_from(["a", "b", "*", "**", "a*", "?", "{x}"]), max_size=4),
    path=st.lists(st.sampled_from(["a", "b", "ab", "", "{x}", "ba"]), max_size=5),
)
def test_the_grant_trie_matches_exactly_as_compile_glob(glob: list[str], path: list[str]) -> None:
    target = "/" + "/".join(glob)
    subject = "/" + "/".join(path)
    index = GrantIndex([Grant("f", 0, "r", 1, "GET", target)])
    assert bool(index.matching("GET", subject)) == glob_matches(target, subject)


@settings(max_examples=400, deadline=None)
@given(
    glob=st.lists(st.sampled_from(["a", "B", "*", "**", "a*", "?"]), min_size=1, max_size=4),
    template=st.lists(st.sampled_from(["a", "b", "{x}", "{p:path}"]), min_size=1, max_size=4),
    fills=st.lists(st.sampled_from(["a", "b", "A", "ab", "a/b"]), min_size=4, max_size=4),
    insensitive=st.booleans(),
)
def test_could_match_never_rules_out_a_path_the_template_serves(
    glob: list[str], template: list[str], fills: list[str], insensitive: bool
) -> None:
    rule = RouteRule("deny.0", "/" + "/".join(glob), None, insensitive)
    text = "/" + "/".join(template)
    path = "/" + "/".join(fills[i] if p.startswith("{") else p for i, p in enumerate(template))
    table = RouteTable([text])
    if table.resolve(path) == table.templates[0] and rule.matches("GET", path):
        assert could_match(rule, text)


def test_the_cache_answers_like_the_snapshot_on_the_synthetic_policy() -> None:
    snapshot = compile_policy(validate_policy(synthetic_policy(tenants=5, roles=40, rules=200)))
    cache = DecisionCache()
    for request in synthetic_requests(5, 40, 200, count=400, seed=7) * 2:
        principal = Principal(request.subject, request.roles, tenant=request.tenant)
        args = (principal, request.method, request.route, request.path)
        expected = snapshot.decide(*args, tenant=request.tenant)
        assert cache.decide(snapshot, *args, tenant=request.tenant) == expected


def test_the_cache_keys_on_the_route_template_not_the_raw_path(policy: PolicySnapshot) -> None:
    cache = DecisionCache()
    for item in range(50):
        path = f"/products/{item}"
        assert cache.decide(policy, who("viewer"), "GET", "/products/{id}", path, tenant=None)
    assert len(cache) == 1


@pytest.mark.parametrize(
    ("method", "route", "path"),
    [
        pytest.param("GET", UNMATCHED, "/products/1", id="unmatched-route"),
        pytest.param("BREW", "/products/{id}", "/products/1", id="unknown-method"),
    ],
)
def test_the_cache_never_stores_unbounded_keys(
    policy: PolicySnapshot, method: str, route: str, path: str
) -> None:
    cache = DecisionCache()
    cache.decide(policy, who("viewer"), method, route, path, tenant=None)
    assert len(cache) == 0


def test_the_cache_is_bounded() -> None:
    snapshot = load_policy("version: 1\nroles:\n  r: {permissions: ['GET /**']}\n")
    cache = DecisionCache(maxsize=3)
    for index in range(10):
        route = f"/r{index}"
        assert cache.decide(snapshot, who("r"), "GET", route, route, tenant=None).allowed
        assert len(cache) <= 3


def test_the_cache_starts_over_when_the_policy_version_changes() -> None:
    cache = DecisionCache()
    grants = load_policy("version: 1\nroles:\n  r: {permissions: ['GET /x']}\n")
    revokes = load_policy("version: 1\nroles:\n  r: {permissions: []}\n")
    assert cache.decide(grants, who("r"), "GET", "/x", "/x", tenant=None).allowed
    assert not cache.decide(revokes, who("r"), "GET", "/x", "/x", tenant=None).allowed
    assert len(cache) == 1


def test_cached_decisions_are_shared_across_tenants_with_the_same_roles() -> None:
    snapshot = load_policy("version: 1\nroles:\n  r: {permissions: ['GET /t/*/x']}\n")
    cache = DecisionCache()
    for tenant in ("a", "b", "c"):
        principal = who("r", tenant=tenant)
        assert cache.decide(snapshot, principal, "GET", "/t/{t}/x", f"/t/{tenant}/x", tenant=tenant)
    assert len(cache) == 1


def test_explain_lists_the_stages_roles_and_matching_grants(policy: PolicySnapshot) -> None:
    table = RouteTable(["/products/{id}", "/tenants/{tenant_id}/audit"])
    result = explain(policy, who("editor", subject="alice"), "get", "/tenants/acme/audit", table)
    assert result.decision.rule == "roles.admin.permissions.0"
    assert (result.route, result.tenant) == ("/tenants/{tenant_id}/audit", "acme")
    assert [(r.name, r.origin) for r in result.roles] == [
        ("editor", "token"),
        ("admin", "binding in tenant 'acme'"),
        ("auditor", "binding in tenant 'acme'"),
    ]
    assert result.matching_grants == (
        "roles.admin.permissions.0: * /**",
        "roles.auditor.permissions.0: GET /tenants/*/audit",
    )
    assert [(s.stage, s.outcome) for s in result.steps][-1] == ("rbac", "decided")


def test_explain_says_which_rule_denied_and_skips_the_later_stages(policy: PolicySnapshot) -> None:
    result = explain(policy, None, "GET", "/INTERNAL/../internal/x")
    assert result.decision.code == "AUTH_202"
    assert [(s.stage, s.outcome) for s in result.steps] == [
        ("deny", "decided"),
        ("public", "skipped"),
        ("authentication", "skipped"),
        ("tenancy", "skipped"),
        ("rbac", "skipped"),
    ]
    assert result.to_dict()["decision"]["rule"] == "deny.0"


def test_explain_reports_an_ambiguous_tenant_as_a_tenant_mismatch(policy: PolicySnapshot) -> None:
    table = RouteTable(["/tenants/{tenant_id}/audit"])
    result = explain(policy, who("admin"), "GET", "/tenants/acme/audit", table, tenant_header="x")
    assert result.decision.code == "AUTH_301"
    assert result.decision.reason == "the request names more than one tenant"
    assert [s.outcome for s in result.steps] == ["passed"] * 3 + ["decided", "skipped"]


def test_synthetic_routes_serve_every_synthetic_request() -> None:
    table = RouteTable(synthetic_routes(rules=200))
    requests = synthetic_requests(5, 40, 200, count=100, seed=random.Random(3).randrange(99))
    assert all(table.resolve(r.path) == r.route for r in requests)
