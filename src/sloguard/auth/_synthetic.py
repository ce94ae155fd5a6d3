"""A policy of any size, and requests against it, for benchmarks and load tests.

:func:`synthetic_policy` builds a valid policy document (a dict: pass it to
:func:`~sloguard.auth._policy.validate_policy`, or dump it as YAML) shaped
like a multi-tenant API:

* ``rules`` route grants over templates ``/tenants/{tenant_id}/svc{S}/res{R}/{item_id}``
  (and ``.../res{R}`` for collections), ``rules // 10`` services; role ``i`` holds the
  grants ``j`` with ``j % roles == i``, alternating an exact template with one method
  and a glob (``/tenants/*/svc{S}/res{R}/**``) for every method;
* role ``i`` inherits role ``i - 1`` unless ``i`` is a multiple of 10, so inheritance
  chains ten deep must be flattened;
* each tenant binds one subject (``user-{t}``) to one role inside that tenant;
* three deny rules, two public rules, tenancy from the ``tenant_id`` route parameter.

:func:`synthetic_requests` draws requests against it (about half allowed), each
with the principal that makes it: a subject, one or two token roles, a tenant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["SyntheticRequest", "synthetic_policy", "synthetic_requests", "synthetic_routes"]

_METHODS = ("GET", "POST", "PUT", "DELETE")


def _services(rules: int) -> int:
    return max(1, rules // 10)


def _grant(index: int, rules: int) -> str:
    service, resource = index % _services(rules), index // _services(rules)
    if index % 2:
        return f"* /tenants/*/svc{service}/res{resource}/**"
    method = _METHODS[(index // 2) % len(_METHODS)]
    return f"{method} /tenants/{{tenant_id}}/svc{service}/res{resource}/{{item_id}}"


def synthetic_policy(tenants: int = 50, roles: int = 200, rules: int = 1000) -> dict[str, Any]:
    """A valid policy document with ``roles`` roles holding ``rules`` grants in all."""
    if tenants < 1 or roles < 1 or rules < 0:
        raise ValueError("need at least one tenant and one role, and no negative rule count")
    role_specs: dict[str, dict[str, Any]] = {}
    for i in range(roles):
        spec: dict[str, Any] = {"permissions": [_grant(j, rules) for j in range(i, rules, roles)]}
        if i % 10:
            spec["inherits"] = [f"role{i - 1}"]
        role_specs[f"role{i}"] = spec
    return {
        "version": 1,
        "public": [{"route": "/healthz"}, {"route": "/docs/**", "methods": ["GET"]}],
        "deny": [
            {"route": "/internal/**"},
            {"route": "/admin/**"},
            {"route": "/tenants/*/debug/**"},
        ],
        "roles": role_specs,
        "bindings": [
            {"tenant": f"tenant{t}", "subjects": [f"user-{t}"], "roles": [f"role{(t * 7) % roles}"]}
            for t in range(tenants)
        ],
        "tenancy": {"route_param": "tenant_id", "header": "x-tenant-id"},
    }


def synthetic_routes(rules: int = 1000) -> list[str]:
    """The route templates the synthetic application declares (for a RouteTable)."""
    services = _services(rules)
    resources = max(1, -(-rules // services))
    routes = ["/healthz", "/docs/{path:path}"]
    for service in range(services):
        for resource in range(resources):
            base = f"/tenants/{{tenant_id}}/svc{service}/res{resource}"
            routes += [base, f"{base}/{{item_id}}"]
    return routes


@dataclass(frozen=True, slots=True)
class SyntheticRequest:
    subject: str
    roles: frozenset[str]
    tenant: str
    method: str
    route: str
    path: str


def synthetic_requests(
    tenants: int = 50, roles: int = 200, rules: int = 1000, *, count: int = 1000, seed: int = 0
) -> list[SyntheticRequest]:
    """``count`` requests: half aimed at a grant one of the principal's roles holds."""
    rng = random.Random(seed)
    services = _services(rules)
    requests = []
    for _ in range(count):
        tenant = rng.randrange(tenants)
        held = {f"role{rng.randrange(roles)}" for _ in range(rng.choice((1, 2)))}
        grant = rng.randrange(rules) if rules else 0
        if rng.random() < 0.5 and rules:
            owner = sorted(held)[0]
            owned = list(range(int(owner.removeprefix("role")), rules, roles))
            grant = rng.choice(owned) if owned else grant
        service, resource = grant % services, grant // services
        item = rng.randrange(10_000)
        method = _METHODS[(grant // 2) % len(_METHODS)] if grant % 2 == 0 else rng.choice(_METHODS)
        requests.append(
            SyntheticRequest(
                subject=f"user-{tenant}" if rng.random() < 0.5 else f"someone-{rng.randrange(999)}",
                roles=frozenset(held),
                tenant=f"tenant{tenant}",
                method=method,
                route=f"/tenants/{{tenant_id}}/svc{service}/res{resource}/{{item_id}}",
                path=f"/tenants/tenant{tenant}/svc{service}/res{resource}/{item}",
            )
        )
    return requests
