"""The authorization decision: sans-I/O, over one compiled policy snapshot.

:meth:`PolicySnapshot.decide` takes a principal, a method, the route template
the request matched (or :data:`~sloguard.routing.UNMATCHED`) and its raw path,
and returns a :class:`Decision`. The order is fixed:

1. ``deny`` rules (``AUTH_202``): matched against the route template and every
   spelling a server might route the path as
   (:func:`~sloguard.auth._matchers.path_views`), so a rule on ``/admin/**``
   catches ``/admin/../admin/x``, ``/%2e%2e/admin``, ``//admin``,
   ``/admin%2F..``, ``/admin;x=1`` and, by default, ``/ADMIN``;
2. ``public`` rules (allowed without a principal): the route template matches,
   or *every* spelling of the path does, so a public rule never widens through
   ``..``, ``;params`` or an encoded slash;
3. no principal: ``AUTH_101`` (the caller raises ``MissingToken``);
4. tenancy (``AUTH_301``): a principal of tenant A never acts in tenant B, and
   a principal without a tenant never acts inside one;
5. RBAC (``AUTH_201``): one of the principal's roles, or a role bound to its
   subject inside the request's tenant, grants ``METHOD route`` -- or, when the
   route requires a named permission, that permission -- else default deny.

``route`` must be the template that serves ``path`` (from the framework or a
:class:`~sloguard.routing.RouteTable`): for a path in plain spelling, only the
rules that could match some path of that template are tried. Steps 1-2 depend
on the raw path and run on every call; step 5 depends only on (policy version,
roles, tenant-bound roles, method, route template, required permission), which
is what :class:`DecisionCache` keys on. Route permissions are matched against
the template; when the route is unmatched, against every spelling of the path,
all of which must be granted (such decisions are never cached).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from sloguard.auth._matchers import (
    KNOWN_METHODS,
    PLAIN_PATH,
    GrantIndex,
    NamedGrants,
    RouteRuleSet,
    RuleAlternation,
    canonical_method,
    is_plain,
    path_views,
    public_views,
)
from sloguard.auth._principal import Principal
from sloguard.routing import UNMATCHED

__all__ = [
    "AUTHENTICATION_REQUIRED",
    "CONFLICTING_TENANT",
    "Decision",
    "DecisionCache",
    "PolicySnapshot",
    "RoleInfo",
    "Tenancy",
    "next_policy_version",
]

_VERSIONS: Final = itertools.count(1)
_NO_ROLES: Final[frozenset[str]] = frozenset()
# Per-snapshot memos keyed by route template are cleared when they reach this size.
_MEMO_SIZE: Final = 4096


def next_policy_version() -> int:
    """A process-wide increasing number: every compiled snapshot gets its own."""
    return next(_VERSIONS)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check; ``rule`` names the policy field that decided."""

    allowed: bool
    public: bool
    code: str | None
    rule: str
    reason: str


#: What :meth:`PolicySnapshot.tenant_of` answers when a request names two tenants.
CONFLICTING_TENANT: Final = "<conflicting tenants>"

AUTHENTICATION_REQUIRED: Final = Decision(
    False, False, "AUTH_101", "authentication", "this route requires an authenticated principal"
)


@dataclass(frozen=True, slots=True)
class Tenancy:
    """Where a request's tenant comes from: a route template parameter, else a header."""

    route_param: str | None = None
    header: str | None = None


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """One role as declared, with its inheritance closure (itself first)."""

    name: str
    inherits: tuple[str, ...]
    permissions: tuple[str, ...]
    effective_roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _RoutePlan:
    """What steps 1-2 need for one (method, route template), worked out once."""

    template_deny: Decision | None
    template_public: Decision | None
    deny_plain: RuleAlternation | None  # deny rules that could match a plain path of the route
    public_plain: RuleAlternation | None
    deny_all: RuleAlternation | None  # every deny rule for the method, for other spellings
    public_all: RuleAlternation | None


@dataclass(frozen=True, slots=True, eq=False)
class PolicySnapshot:
    """A compiled, immutable policy: globs precompiled, inheritance flattened to bit masks.

    The two memo dicts (per route template, bounded) are the only mutable parts; they
    hold values derived from the fields, so sharing a snapshot across threads is safe.
    """

    version: int
    content_hash: str
    source: str
    deny: RouteRuleSet
    public: RouteRuleSet
    rule_decisions: Mapping[str, Decision]
    grants: GrantIndex
    named: NamedGrants
    #: role name -> bits of the role and of every role it inherits from.
    role_masks: Mapping[str, int]
    role_bits: tuple[str, ...]
    #: tenant -> subject -> roles bound inside that tenant; subject "*" binds everyone.
    bindings: Mapping[str, Mapping[str, frozenset[str]]]
    tenancy: Tenancy
    roles: Mapping[str, RoleInfo]
    _plans: dict[tuple[str, str], _RoutePlan] = field(default_factory=dict, repr=False)
    _tenant_segments: dict[str, int | None] = field(default_factory=dict, repr=False)

    def decide(
        self,
        principal: Principal | None,
        method: str,
        route: str,
        path: str | bytes,
        *,
        tenant: str | None,
        required_permission: str | None = None,
    ) -> Decision:
        """Decide one request without the decision cache (order: module docstring)."""
        method = canonical_method(method)
        found = self.route_decision(method, route, path)
        if found is not None:
            return found
        if principal is None:
            return AUTHENTICATION_REQUIRED
        mismatch = self.tenant_decision(principal, tenant)
        if mismatch is not None:
            return mismatch
        bound = self.bound_roles(principal, tenant)
        if route == UNMATCHED:
            return self.unmatched_decision(
                principal.roles, bound, method, path, required_permission
            )
        return self.rbac_decision(principal.roles, bound, method, route, required_permission)

    def route_decision(self, method: str, route: str, path: str | bytes) -> Decision | None:
        """Steps 1-2: the deny or public rule that decides, or None."""
        plan = self._plans.get((method, route)) or self._plan(method, route)
        if plan.template_deny is not None:
            return plan.template_deny
        if isinstance(path, str):
            subject = path if PLAIN_PATH.fullmatch(path) is not None else None
        else:
            subject = path.decode("ascii") if is_plain(path) else None
        if subject is not None:
            if subject != route:  # equal: the template check above already covered it
                rule = None if plan.deny_plain is None else plan.deny_plain.first(subject)
                if rule is not None:
                    return self.rule_decisions[rule.field]
            if plan.template_public is not None or subject == route:
                return plan.template_public
            rule = None if plan.public_plain is None else plan.public_plain.first(subject)
            return None if rule is None else self.rule_decisions[rule.field]
        views = path_views(path)
        if plan.deny_all is not None:
            for view in views:
                rule = plan.deny_all.first(view)
                if rule is not None:
                    return self.rule_decisions[rule.field]
        if plan.template_public is not None or plan.public_all is None:
            return plan.template_public
        rule = plan.public_all.first_for_all(public_views(path, views))
        return None if rule is None else self.rule_decisions[rule.field]

    def _plan(self, method: str, route: str) -> _RoutePlan:
        deny_all, public_all = self.deny.alternation(method), self.public.alternation(method)
        if route == UNMATCHED:
            plan = _RoutePlan(None, None, deny_all, public_all, deny_all, public_all)
        else:
            denied, public = self.deny.first(method, route), self.public.first(method, route)
            plan = _RoutePlan(
                None if denied is None else self.rule_decisions[denied.field],
                None if public is None else self.rule_decisions[public.field],
                self.deny.restricted(method, route),
                self.public.restricted(method, route),
                deny_all,
                public_all,
            )
        if len(self._plans) >= _MEMO_SIZE:
            self._plans.clear()
        self._plans[(method, route)] = plan
        return plan

    def tenant_decision(self, principal: Principal, tenant: str | None) -> Decision | None:
        """Step 4: ``AUTH_301`` when the principal acts outside its own tenant."""
        if tenant is None or (principal.tenant == tenant and tenant != CONFLICTING_TENANT):
            return None
        if tenant == CONFLICTING_TENANT:
            return Decision(
                False, False, "AUTH_301", "tenancy", "the request names more than one tenant"
            )
        held = "no tenant" if principal.tenant is None else f"tenant {principal.tenant!r}"
        reason = f"a principal of {held} may not act in tenant {tenant!r}"
        return Decision(False, False, "AUTH_301", "tenancy", reason)

    def bound_roles(self, principal: Principal, tenant: str | None) -> frozenset[str]:
        """Roles the bindings give ``principal`` inside ``tenant`` (after the tenant check)."""
        by_subject = self.bindings.get(tenant) if tenant is not None else None
        if by_subject is None:
            return _NO_ROLES
        named = by_subject.get(principal.subject, _NO_ROLES)
        everyone = by_subject.get("*", _NO_ROLES)
        return named | everyone if everyone else named

    def principal_mask(self, roles: frozenset[str], bound: frozenset[str]) -> int:
        masks = self.role_masks
        mask = 0
        for role in roles:
            mask |= masks.get(role, 0)
        for role in bound:
            mask |= masks.get(role, 0)
        return mask

    def rbac_decision(
        self,
        roles: frozenset[str],
        bound: frozenset[str],
        method: str,
        subject: str,
        required_permission: str | None,
    ) -> Decision:
        """Step 5: allowed by the first grant (in policy order) a held role has, else deny."""
        held = self.principal_mask(roles, bound)
        if required_permission is not None:
            grant = self.named.first_granted(required_permission, held)
            wanted = f"permission {required_permission!r}"
        else:
            grant = self.grants.first_granted(method, subject, held)
            wanted = f"{method} {subject}"
        if grant is None:
            return Decision(False, False, "AUTH_201", "default-deny", f"no role grants {wanted}")
        holder = sorted(r for r in roles | bound if self.role_masks.get(r, 0) & grant.bit)[0]
        via = "" if holder == grant.role else f" (inherits {grant.role})"
        return Decision(True, False, None, grant.field, f"role {holder}{via} grants {grant.text}")

    def unmatched_decision(
        self,
        roles: frozenset[str],
        bound: frozenset[str],
        method: str,
        path: str | bytes,
        required_permission: str | None,
    ) -> Decision:
        """Step 5 for a path no route template claims: every spelling must be granted,
        since nothing says which one a server would act on."""
        decisions = [
            self.rbac_decision(roles, bound, method, view, required_permission)
            for view in path_views(path)
        ]
        return next((d for d in decisions if not d.allowed), decisions[0])

    def tenant_of(self, route: str, path: str | bytes, *, header: str | None = None) -> str | None:
        """The tenant a request acts in: the route parameter, else the header value.

        When the spellings of the path disagree on the tenant segment
        (``/tenants/a/../b/x``), or the header names another tenant than the path,
        the answer is :data:`CONFLICTING_TENANT`, which no principal may act in:
        passed on to :meth:`decide`, it fails the tenancy step (``AUTH_301``) in
        its place in the order, after the deny and public rules.
        """
        found: str | None = None
        index = self._tenant_segment(route)
        if index is not None:
            values = {_segment(view, index) for view in path_views(path)} - {None}
            if len(values) > 1:
                return CONFLICTING_TENANT
            found = values.pop() if values else None
        if found is None:
            return header or None
        if header and header != found:
            return CONFLICTING_TENANT
        return found

    def _tenant_segment(self, route: str) -> int | None:
        name = self.tenancy.route_param
        if name is None or route == UNMATCHED:
            return None
        cache = self._tenant_segments
        if route in cache:
            return cache[route]
        index: int | None = None
        for position, segment in enumerate(route.split("/")):
            if segment == f"{{{name}}}" or segment.startswith(f"{{{name}:"):
                index = position
                break
            if ":path}" in segment:
                break  # a path parameter before it: the tenant has no fixed segment
        if len(cache) >= _MEMO_SIZE:
            cache.clear()
        cache[route] = index
        return index


def _segment(path: str, index: int) -> str | None:
    parts = path.split("/")
    return unquote(parts[index]) if index < len(parts) and parts[index] else None


class DecisionCache:
    """RBAC outcomes keyed by (policy version, roles, tenant-bound roles, method, route
    template, required permission); emptied when a snapshot of another version arrives.

    Deny and public rules still run on every call, as they depend on the raw path.
    Unmatched routes and unknown methods are never cached, so the key space is that
    of the application's routes times the role sets in use; past ``maxsize`` entries
    the cache starts over (cheaper than LRU bookkeeping on every hit).
    """

    __slots__ = ("_decisions", "_maxsize", "_version")

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, not {maxsize}")
        self._maxsize = maxsize
        self._version = -1
        self._decisions: dict[tuple[object, ...], Decision] = {}

    def __len__(self) -> int:
        return len(self._decisions)

    def clear(self) -> None:
        # A new dict rather than .clear(): a thread still holding the old one is unaffected.
        self._decisions = {}

    def decide(
        self,
        snapshot: PolicySnapshot,
        principal: Principal | None,
        method: str,
        route: str,
        path: str | bytes,
        *,
        tenant: str | None,
        required_permission: str | None = None,
    ) -> Decision:
        """Same result as ``snapshot.decide(...)``, from the cache when it can."""
        version = snapshot.version
        if version != self._version:
            self.clear()
            self._version = version
        if method not in KNOWN_METHODS:
            method = method.upper()
        found = snapshot.route_decision(method, route, path)
        if found is not None:
            return found
        if principal is None:
            return AUTHENTICATION_REQUIRED
        if tenant is not None:
            if principal.tenant != tenant or tenant == CONFLICTING_TENANT:
                mismatch = snapshot.tenant_decision(principal, tenant)
                assert mismatch is not None
                return mismatch
            bound = snapshot.bound_roles(principal, tenant)
        else:
            bound = _NO_ROLES
        if route == UNMATCHED:
            return snapshot.unmatched_decision(
                principal.roles, bound, method, path, required_permission
            )
        key = (version, principal.roles, bound, method, route, required_permission)
        decisions = self._decisions
        decision = decisions.get(key)
        if decision is not None:
            return decision
        decision = snapshot.rbac_decision(
            principal.roles, bound, method, route, required_permission
        )
        if method in KNOWN_METHODS:
            if len(decisions) >= self._maxsize:
                decisions = self._decisions = {}
            decisions[key] = decision
        return decision
