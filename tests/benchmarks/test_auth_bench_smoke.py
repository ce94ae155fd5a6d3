"""The auth benchmark still runs, and each engine it times really does its work.

Speed is not asserted here (``make bench`` measures it); behaviour is, on tiny
sizes: sloguard and pycasbin give the same answers, the cached decisions equal
the uncached ones, every token is verified (and only never-seen ones miss the
cache), and every middleware request is answered 200 -- so the benchmark can
never quietly compare an engine that skipped its work.
"""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.auth import (
    Sizes,
    binding_probes,
    build_bench,
    casbin_enforcer,
    casbin_object,
    measure_interleaved,
)

from sloguard.auth import Principal
from sloguard.auth._policy import compile_policy, validate_policy
from sloguard.auth._synthetic import synthetic_policy

# 8 tenants so that tenant7's binding (role 49 % 20 = role9) starts a 10-role chain.
TINY = Sizes(
    tenants=8,
    roles=20,
    rules=40,
    requests=30,
    agree_sample=30,
    users=5,
    churn_every=4,
    middleware_ids=5,
    rounds=1,
)
OPS = 20


def _finish(name: str, ops: int = OPS) -> dict[str, Any]:
    bench = build_bench(name, TINY, ops)
    bench.run(ops)
    bench.run(ops)
    return bench.finish()


def test_sloguard_and_pycasbin_agree_on_requests_and_deep_binding_probes() -> None:
    ours, theirs = _finish("rbac-sloguard"), _finish("rbac-casbin")
    assert len(ours["answers"]) == TINY.agree_sample + TINY.tenants
    assert ours["answers"] == theirs["answers"]
    assert 0 < sum(ours["answers"]) < len(ours["answers"])
    assert ours["allowed_share"] == theirs["allowed_share"]


def test_cached_decisions_equal_uncached_ones() -> None:
    uncached, cached = _finish("rbac-sloguard"), _finish("rbac-sloguard-cached")
    assert cached["answers"] == uncached["answers"]
    assert cached["allowed_share"] == uncached["allowed_share"]
    assert cached["cache_entries"] > 0
    assert cached["decisions"] == 2 * OPS


def test_deep_binding_probe_needs_more_than_casbins_default_ten_links() -> None:
    policy = synthetic_policy(TINY.tenants, TINY.roles, TINY.rules)
    probe = next(p for p in binding_probes(policy) if p.tenant == "tenant7")
    request = (probe.subject, probe.tenant, probe.path, probe.method)
    snapshot = compile_policy(validate_policy(policy))
    principal = Principal(probe.subject, frozenset(), probe.tenant)
    decision = snapshot.decide(
        principal, probe.method, probe.route, probe.path, tenant=probe.tenant
    )
    assert decision.allowed
    assert casbin_enforcer(policy).enforce(*request)
    default_depth = casbin_enforcer(policy)
    default_depth.get_role_manager().max_hierarchy_level = 10
    assert not default_depth.enforce(*request)


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        pytest.param("/tenants/*/svc1/res2/**", "/tenants/:p1/svc1/res2/*", id="glob"),
        pytest.param(
            "/tenants/{tenant_id}/svc0/res0/{item_id}",
            "/tenants/:tenant_id/svc0/res0/:item_id",
            id="template",
        ),
        pytest.param("/docs/{path:path}", "/docs/:path", id="typed-parameter"),
        pytest.param("/**", "*", id="everything"),
        pytest.param("/healthz", "/healthz", id="literal"),
    ],
)
def test_casbin_object_spells_route_globs_for_keymatch2(glob: str, expected: str) -> None:
    assert casbin_object(glob) == expected


@pytest.mark.parametrize("glob", ["/a/**/b", "/a/b*", "/a/?"])
def test_casbin_object_refuses_globs_keymatch2_cannot_say(glob: str) -> None:
    with pytest.raises(ValueError, match="no keyMatch2 spelling"):
        casbin_object(glob)


@pytest.mark.parametrize(
    ("name", "misses_per_run"),
    [
        pytest.param("token-sloguard-hot", 0, id="hot"),
        pytest.param("token-sloguard-mix", 0, id="mix"),
        pytest.param("token-sloguard-churn", OPS // TINY.churn_every, id="churn"),
        pytest.param("token-sloguard-nocache", OPS, id="nocache"),
    ],
)
def test_sloguard_verifies_every_token_and_only_unseen_ones_miss(
    name: str, misses_per_run: int
) -> None:
    result = _finish(name)
    assert result["verified"] == 2 * OPS
    assert result["subjects_ok"]
    assert result["cache_misses"] == 2 * misses_per_run
    assert result["cache_hits"] == 2 * (OPS - misses_per_run)


def test_pyjwt_decodes_every_token_to_its_subject() -> None:
    result = _finish("token-pyjwt")
    assert result["verified"] == 2 * OPS
    assert result["subjects_ok"]


@pytest.mark.parametrize("name", ["mw-bare", "mw-guard", "mw-guard-auth"])
def test_every_middleware_variant_answers_each_request_200(name: str) -> None:
    assert _finish(name)["statuses"] == {"200": 2 * OPS}


def test_auth_middleware_verifies_the_token_once_and_refuses_a_request_without_it() -> None:
    result = _finish("mw-guard-auth")
    assert result["token_cache"] == {"hits": 2 * OPS - 1, "misses": 1}
    assert result["decision_cache_entries"] == 1
    assert result["status_without_token"] == 401


def test_interleaved_rounds_run_each_variant_in_its_own_interpreter() -> None:
    names = ["token-pyjwt", "token-sloguard-hot"]
    results = measure_interleaved(names, TINY, quick=True, rounds=1, progress=lambda _: None)
    for name in names:
        assert results[name]["rounds"] == 1
        assert results[name]["median_us"] > 0
        assert results[name]["verified"] == 2 * results[name]["ops_per_round"]
