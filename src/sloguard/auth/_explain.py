"""What ``sloguard auth check`` and ``sloguard auth explain`` report, as data.

:func:`check_policy_file` validates a policy file and returns its compiled
snapshot (or raises :class:`PolicyError` listing every ``file:line: field:
message``). :func:`explain` decides one request the way the middleware would
and says why: every stage in order (deny, public, authentication, tenancy,
RBAC) with its outcome, the spellings of the path the route rules saw, the
principal's roles -- from the token and from tenant bindings -- with what they
inherit, the permissions those roles hold, and which grants match the request.
The CLI renders an :class:`Explanation` with rich or as JSON (``to_dict``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sloguard.auth._decision import Decision, PolicySnapshot
from sloguard.auth._errors import PolicyError
from sloguard.auth._matchers import canonical_method, path_views
from sloguard.auth._policy import load_policy
from sloguard.auth._principal import Principal
from sloguard.routing import UNMATCHED, RouteTable, normalize_path

__all__ = ["Explanation", "RoleView", "Step", "check_policy_file", "explain"]


def check_policy_file(path: str | os.PathLike[str]) -> PolicySnapshot:
    """Validate and compile a policy file; :class:`PolicyError` lists every problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PolicyError([(str(path), "-", f"cannot read: {reason}")]) from None
    return load_policy(data, source=str(path))


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of the decision: ``outcome`` is decided, passed or skipped."""

    stage: str
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class RoleView:
    """A role the principal holds: where it comes from and what it brings with it."""

    name: str
    origin: str
    known: bool
    effective_roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    method: str
    path: str
    route: str
    tenant: str | None
    path_views: tuple[str, ...]
    principal: str | None
    roles: tuple[RoleView, ...]
    #: every permission the principal's effective roles hold, as "role: permission".
    permissions: tuple[str, ...]
    #: grants whose pattern matches this request, held or not, as "field: permission".
    matching_grants: tuple[str, ...]
    steps: tuple[Step, ...]
    policy_version: int
    policy_hash: str
    policy_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": {
                "allowed": self.decision.allowed,
                "public": self.decision.public,
                "code": self.decision.code,
                "rule": self.decision.rule,
                "reason": self.decision.reason,
            },
            "request": {"method": self.method, "path": self.path, "route": self.route},
            "tenant": self.tenant,
            "path_views": list(self.path_views),
            "principal": self.principal,
            "roles": [
                {
                    "name": r.name,
                    "origin": r.origin,
                    "known": r.known,
                    "effective_roles": list(r.effective_roles),
                }
                for r in self.roles
            ],
            "permissions": list(self.permissions),
            "matching_grants": list(self.matching_grants),
            "steps": [
                {"stage": s.stage, "outcome": s.outcome, "detail": s.detail} for s in self.steps
            ],
            "policy": {
                "version": self.policy_version,
                "hash": self.policy_hash,
                "source": self.policy_source,
            },
        }


def explain(
    snapshot: PolicySnapshot,
    principal: Principal | None,
    method: str,
    path: str,
    route_table: RouteTable | None = None,
    *,
    tenant_header: str | None = None,
    required_permission: str | None = None,
) -> Explanation:
    """Decide one request as the middleware would, and record why."""
    method = canonical_method(method)
    route = route_table.resolve(path) if route_table is not None else UNMATCHED
    tenant = snapshot.tenant_of(route, path, header=tenant_header)
    decision = snapshot.decide(
        principal, method, route, path, tenant=tenant, required_permission=required_permission
    )
    roles = _roles(snapshot, principal, tenant)
    held = {effective for role in roles for effective in role.effective_roles}
    subject = normalize_path(path) if route == UNMATCHED else route
    if required_permission is not None:
        matching = snapshot.named.matching(required_permission)
    else:
        matching = snapshot.grants.matching(method, subject)
    return Explanation(
        decision=decision,
        method=method,
        path=path,
        route=route,
        tenant=tenant,
        path_views=path_views(path),
        principal=None if principal is None else principal.subject,
        roles=roles,
        permissions=tuple(
            f"{name}: {permission}"
            for name, info in snapshot.roles.items()
            if name in held
            for permission in info.permissions
        ),
        matching_grants=tuple(f"{g.field}: {g.text}" for g in matching),
        steps=_steps(decision),
        policy_version=snapshot.version,
        policy_hash=snapshot.content_hash,
        policy_source=snapshot.source,
    )


def _roles(
    snapshot: PolicySnapshot, principal: Principal | None, tenant: str | None
) -> tuple[RoleView, ...]:
    if principal is None:
        return ()
    origins = dict.fromkeys(sorted(principal.roles), "token")
    if tenant is not None and principal.tenant == tenant:
        for name in sorted(snapshot.bound_roles(principal, tenant)):
            origins.setdefault(name, f"binding in tenant {tenant!r}")
    views = []
    for name, origin in origins.items():
        info = snapshot.roles.get(name)
        effective = info.effective_roles if info is not None else ()
        views.append(RoleView(name, origin, info is not None, effective))
    return tuple(views)


_STAGES = ("deny", "public", "authentication", "tenancy", "rbac")
_STAGE_OF_CODE = {"AUTH_202": "deny", "AUTH_101": "authentication", "AUTH_301": "tenancy"}
_PASSED = {
    "deny": "no deny rule matched",
    "public": "no public rule matched",
    "authentication": "a principal is present",
    "tenancy": "the principal acts in its own tenant, or in none",
}


def _steps(decision: Decision) -> tuple[Step, ...]:
    """Every stage before the deciding one passed; the ones after it did not run."""
    decided = "public" if decision.public else _STAGE_OF_CODE.get(decision.code or "", "rbac")
    steps = []
    reached = False
    for stage in _STAGES:
        if stage == decided:
            steps.append(Step(stage, "decided", f"{decision.rule}: {decision.reason}"))
            reached = True
        elif reached:
            steps.append(Step(stage, "skipped", "an earlier stage decided"))
        else:
            steps.append(Step(stage, "passed", _PASSED[stage]))
    return tuple(steps)
