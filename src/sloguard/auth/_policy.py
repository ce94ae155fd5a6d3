"""The policy document: validated at the boundary, compiled once into a snapshot.

A policy is YAML (JSON is YAML too, so Redis may hold either)::

    version: 1
    public:                       # allowed without a principal
      - {route: "/healthz"}
      - {route: "/docs/**", methods: [GET]}
    deny:                         # always denied, admins included (AUTH_202)
      - {route: "/internal/**"}   # case_insensitive: true is the default here
    roles:
      viewer: {permissions: ["GET /products/**", "catalog:read"]}
      editor: {inherits: [viewer], permissions: ["POST /products", "PUT /products/*"]}
      admin:  {inherits: [editor], permissions: ["* /**", "*"]}
    bindings:                     # roles that count only inside one tenant
      - {tenant: acme, subjects: [alice], roles: [admin]}
    tenancy:
      route_param: tenant_id      # /tenants/{tenant_id}/... wins over
      header: x-tenant-id         # the header; if both are present they must agree

Meaning, in brief (the decision order is in :mod:`sloguard.auth._decision`):

* globs: ``*`` within a segment, ``**`` across segments, ``?`` one character
  (:func:`~sloguard.routing.compile_glob`); matched against route templates
  (``/products/{id}`` is matched by ``/products/*``) and normalized paths;
* ``methods`` (rules) and ``METHOD`` (permissions) take standard HTTP methods or
  ``*``; GET covers HEAD;
* a permission is ``"METHOD /glob"`` or a name (``catalog:read``); in names,
  ``*`` matches anything (``"*"`` grants every name, ``"audit:*"`` a family). A
  route that requires a named permission is allowed by that name only: a route
  grant such as ``"* /**"`` does not satisfy it;
* ``inherits`` gives a role every permission of the named roles, transitively;
* a binding adds roles to ``subjects`` (``sub`` claim values, ``"*"`` for all)
  only while they act inside ``tenant`` -- and a principal only ever acts in
  its own tenant;
* ``case_insensitive`` defaults to true for deny rules and false for public ones;
  grants are case-sensitive, like routing.

Every mistake is reported at once, each as ``(file:line, field, message)`` in
a :class:`PolicyError`: unknown keys, bad globs (``//``, ``..``, ``;``, a
trailing ``/``: normalized paths never contain them), unknown methods, a route
permission without a method, unknown or cyclic ``inherits``, bindings to
unknown roles, duplicate YAML keys (which YAML would silently merge), and
documents that are too large, also after alias expansion.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from sloguard._yamlpos import line_of as _line_of
from sloguard.auth._decision import (
    Decision,
    PolicySnapshot,
    RoleInfo,
    Tenancy,
    next_policy_version,
)
from sloguard.auth._errors import PolicyError
from sloguard.auth._matchers import (
    ANY_METHOD,
    KNOWN_METHODS,
    MATCH_ALL_GLOBS,
    Grant,
    GrantIndex,
    NamedGrants,
    RouteRule,
    RouteRuleSet,
)

__all__ = [
    "MAX_POLICY_BYTES",
    "BindingSpec",
    "PolicyDocument",
    "RoleSpec",
    "RouteRuleSpec",
    "TenancySpec",
    "compile_policy",
    "empty_policy",
    "load_policy",
    "parse_policy",
    "validate_policy",
]

MAX_POLICY_BYTES: Final = 4 * 1024 * 1024
# YAML nodes visited with aliases expanded: bounds "billion laughs" documents.
MAX_POLICY_NODES: Final = 500_000

_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@-]*")
_NAMED_PERMISSION: Final = re.compile(r"[A-Za-z0-9_*][A-Za-z0-9_.:@*-]*")
_HEADER: Final = re.compile(r"[a-z0-9!#$&'*+.^_`|~-]+")
_ESCAPE: Final = re.compile(r"%(?:[0-9A-Fa-f]{2})?")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _method(value: str) -> str:
    method = value.upper()
    if method != ANY_METHOD and method not in KNOWN_METHODS:
        known = ", ".join(sorted(KNOWN_METHODS))
        raise ValueError(f"unknown HTTP method {value!r} (use one of {known}, or *)")
    return method


def _glob(value: str) -> str:
    """A route glob in the spelling normalized paths use; rejects what could never match."""
    if value in MATCH_ALL_GLOBS:
        return value
    if not value.startswith("/"):
        raise ValueError(f"route glob {value!r} must start with '/'")
    if re.fullmatch(r"[!-~]+", value) is None:
        raise ValueError(f"route glob {value!r} holds a space, control or non-ASCII character")
    if "#" in value or ";" in value:
        raise ValueError(f"route glob {value!r}: '#' and ';params' never reach a normalized path")
    value = _ESCAPE.sub(_fix_escape, value)
    segments = value.split("/")[1:]
    if value != "/" and "" in segments:
        raise ValueError(
            f"route glob {value!r} has an empty segment ('//' or a trailing '/'), which "
            "normalized paths never have: write '/x' or '/x/**'"
        )
    if any(segment in {".", ".."} for segment in segments):
        raise ValueError(f"route glob {value!r}: '.' and '..' segments are removed from paths")
    return value


def _fix_escape(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) != 3:
        raise ValueError("a '%' must start an escape of two hex digits")
    char = chr(int(found[1:], 16))
    return char if char in _UNRESERVED else found.upper()


def _parse_permission(value: str) -> tuple[str | None, str]:
    """``"GET /x/**"`` -> ("GET", "/x/**"); ``"catalog:read"`` -> (None, "catalog:read")."""
    parts = value.split()
    if len(parts) == 2:
        return _method(parts[0]), _glob(parts[1])
    if len(parts) == 1 and (value.startswith("/") or value == "**"):
        raise ValueError(f"route permission {value!r} needs a method: 'GET {value}' or '* {value}'")
    if len(parts) == 1 and _NAMED_PERMISSION.fullmatch(value):
        return None, value
    raise ValueError(
        f"permission {value!r} is neither 'METHOD /route-glob' nor a name like 'catalog:read'"
    )


def _role_name(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"role name {name!r} may hold letters, digits and _.:@- only")
    return name


RoleName = Annotated[str, AfterValidator(_role_name)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RouteRuleSpec(_Spec):
    route: str
    #: None (the default) means every method; GET covers HEAD.
    methods: tuple[str, ...] | None = None
    #: default: true for deny rules, false for public rules.
    case_insensitive: StrictBool | None = None
    description: str | None = None

    _route = field_validator("route")(_glob)

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches no method; leave 'methods' out for all")
        return None if value is None else tuple(_method(v) for v in value)


class RoleSpec(_Spec):
    inherits: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    description: str | None = None

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            _parse_permission(text)
        return value


class BindingSpec(_Spec):
    tenant: Annotated[str, Field(min_length=1)]
    #: subject ("sub") values; "*" binds every principal of the tenant.
    subjects: Annotated[tuple[str, ...], Field(min_length=1)]
    roles: Annotated[tuple[str, ...], Field(min_length=1)]


class TenancySpec(_Spec):
    route_param: str | None = None
    header: str | None = None

    @field_validator("route_param")
    @classmethod
    def _param(cls, value: str | None) -> str | None:
        if value is not None and not value.isidentifier():
            raise ValueError(f"{value!r} is not a route parameter name")
        return value

    @field_validator("header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and _HEADER.fullmatch(value.lower()) is None:
            raise ValueError(f"{value!r} is not an HTTP header name")
        return None if value is None else value.lower()


class PolicyDocument(_Spec):
    version: Literal[1]
    public: tuple[RouteRuleSpec, ...] = ()
    deny: tuple[RouteRuleSpec, ...] = ()
    roles: dict[RoleName, RoleSpec] = Field(default_factory=dict)
    bindings: tuple[BindingSpec, ...] = ()
    tenancy: TenancySpec = TenancySpec()


def parse_policy(text: str | bytes, *, source: str = "<policy>") -> PolicyDocument:
    """Validate a YAML/JSON policy document; :class:`PolicyError` lists every problem."""
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyError([(source, "-", f"larger than {MAX_POLICY_BYTES} bytes")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PolicyError([(source, "-", f"not UTF-8: {exc.reason}")]) from None
    node, data = _read_yaml(text, source)
    if not isinstance(data, dict):
        raise PolicyError([(f"{source}:1", "-", "the document must be a mapping with 'version'")])
    return _validate(data, source, node)


def validate_policy(data: Mapping[str, Any], *, source: str = "<policy>") -> PolicyDocument:
    """Validate a policy already parsed into Python data (problems carry no line numbers)."""
    return _validate(dict(data), source, None)


def compile_policy(
    document: PolicyDocument, *, source: str = "<policy>", version: int | None = None
) -> PolicySnapshot:
    """Flatten inheritance, precompile every glob, and freeze the result."""
    names = tuple(document.roles)
    bit_of = {name: 1 << index for index, name in enumerate(names)}
    closures = {name: _closure(document, name) for name in names}
    infos = {
        name: RoleInfo(name, spec.inherits, spec.permissions, closures[name])
        for name, spec in document.roles.items()
    }
    route_grants: list[Grant] = []
    named_grants: list[Grant] = []
    for name, spec in document.roles.items():
        for index, text in enumerate(spec.permissions):
            method, target = _parse_permission(text)
            field = f"roles.{name}.permissions.{index}"
            order = len(route_grants) + len(named_grants)
            grant = Grant(field, order, name, bit_of[name], method, target)
            (named_grants if method is None else route_grants).append(grant)
    bindings: dict[str, dict[str, frozenset[str]]] = {}
    for binding in document.bindings:
        by_subject = bindings.setdefault(binding.tenant, {})
        for subject in binding.subjects:
            by_subject[subject] = by_subject.get(subject, frozenset()) | frozenset(binding.roles)
    deny = [_route_rule(rule, f"deny.{i}", deny=True) for i, rule in enumerate(document.deny)]
    public = [_route_rule(r, f"public.{i}", deny=False) for i, r in enumerate(document.public)]
    return PolicySnapshot(
        version=next_policy_version() if version is None else version,
        content_hash=content_hash(document),
        source=source,
        deny=RouteRuleSet([rule for rule, _ in deny]),
        public=RouteRuleSet([rule for rule, _ in public]),
        rule_decisions={rule.field: decision for rule, decision in [*deny, *public]},
        grants=GrantIndex(route_grants),
        named=NamedGrants(named_grants),
        role_masks={name: _mask(bit_of, closures[name]) for name in names},
        role_bits=names,
        bindings=bindings,
        tenancy=Tenancy(document.tenancy.route_param, document.tenancy.header),
        roles=infos,
    )


def load_policy(text: str | bytes, *, source: str = "<policy>") -> PolicySnapshot:
    """:func:`parse_policy` then :func:`compile_policy`."""
    return compile_policy(parse_policy(text, source=source), source=source)


def empty_policy(*, source: str = "<no policy>") -> PolicySnapshot:
    """Nothing public, nothing granted: what is in force before any policy loads."""
    return compile_policy(PolicyDocument(version=1), source=source)


def content_hash(document: PolicyDocument) -> str:
    """SHA-256 of the document's canonical JSON: comments and layout do not change it."""
    canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _route_rule(spec: RouteRuleSpec, field: str, *, deny: bool) -> tuple[RouteRule, Decision]:
    methods = None if spec.methods is None else frozenset(spec.methods)
    shown = f"{','.join(spec.methods)} {spec.route}" if spec.methods else spec.route
    if deny:
        decision = Decision(False, False, "AUTH_202", field, f"{shown} is always denied")
    else:
        decision = Decision(True, True, None, field, f"{shown} is public")
    insensitive = deny if spec.case_insensitive is None else spec.case_insensitive
    return RouteRule(field, spec.route, methods, insensitive), decision


def _closure(document: PolicyDocument, name: str) -> tuple[str, ...]:
    """``name`` and every role it inherits from, breadth first, each once."""
    order = [name]
    for current in order:
        order.extend(r for r in document.roles[current].inherits if r not in order)
    return tuple(order)


def _mask(bit_of: Mapping[str, int], roles: tuple[str, ...]) -> int:
    mask = 0
    for role in roles:
        mask |= bit_of[role]
    return mask


# --- validation with file:line ------------------------------------------------------------

_Loc = tuple[str, ...]


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        problems = _node_problems(node, source)
        if problems:
            raise PolicyError(problems)
        return node, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([(where, "-", f"invalid YAML: {problem}")]) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp like 2024-13-45
        raise PolicyError([(source, "-", f"invalid YAML value: {exc}")]) from None
    except RecursionError:
        raise PolicyError([(source, "-", "invalid YAML: nested too deeply")]) from None
    finally:
        loader.dispose()


def _node_problems(root: yaml.Node, source: str) -> list[tuple[str, str, str]]:
    """Duplicate keys (YAML keeps the last silently) and the alias-expanded size."""
    problems: list[tuple[str, str, str]] = []
    visited = 0
    pending: list[tuple[yaml.Node, _Loc]] = [(root, ())]
    while pending:
        node, loc = pending.pop()
        visited += 1
        if visited > MAX_POLICY_NODES:
            return [(source, "-", f"more than {MAX_POLICY_NODES} YAML nodes (aliases expanded)")]
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                if isinstance(key, yaml.ScalarNode) and name in seen:
                    where = f"{source}:{key.start_mark.line + 1}"
                    problems.append((where, ".".join((*loc, name)), "duplicate key"))
                seen.add(name)
                pending.append((value, (*loc, name)))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*loc, str(i))) for i, item in enumerate(node.value))
    return problems


def _validate(data: dict[str, Any], source: str, node: yaml.Node | None) -> PolicyDocument:
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(_problem(source, node, loc, message))
        raise PolicyError(problems) from None
    semantic = [_problem(source, node, loc, msg) for loc, msg in _semantic_problems(document)]
    if semantic:
        raise PolicyError(semantic)
    return document


def _problem(source: str, node: yaml.Node | None, loc: _Loc, message: str) -> tuple[str, str, str]:
    fields = tuple(part for part in loc if part != "[key]")
    line = _line_of(node, fields)
    return (f"{source}:{line}" if line else source, ".".join(fields) or "-", message)


def _semantic_problems(document: PolicyDocument) -> list[tuple[_Loc, str]]:
    problems: list[tuple[_Loc, str]] = []
    roles = document.roles
    for name, spec in roles.items():
        for index, parent in enumerate(spec.inherits):
            if parent not in roles:
                problems.append((("roles", name, "inherits", str(index)), _unknown(parent, roles)))
    reported: set[frozenset[str]] = set()
    for name in roles:
        cycle = _cycle_from(document, name)
        if cycle is not None and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            index = roles[cycle[-2]].inherits.index(cycle[-1])
            message = "inheritance cycle: " + " -> ".join(cycle)
            problems.append((("roles", cycle[-2], "inherits", str(index)), message))
    for b_index, binding in enumerate(document.bindings):
        for r_index, role in enumerate(binding.roles):
            if role not in roles:
                loc = ("bindings", str(b_index), "roles", str(r_index))
                problems.append((loc, _unknown(role, roles)))
    return problems


def _unknown(role: str, roles: Mapping[str, RoleSpec]) -> str:
    known = ", ".join(sorted(roles)) or "none are defined"
    return f"unknown role {role!r} (known: {known})"


def _cycle_from(document: PolicyDocument, start: str) -> list[str] | None:
    """A path ``start -> ... -> start`` through ``inherits``, if there is one (depth first)."""
    trail = [start]
    stack = [iter(document.roles[start].inherits)]
    explored: set[str] = set()
    while stack:
        parent = next(stack[-1], None)
        if parent is None:
            stack.pop()
            explored.add(trail.pop())
            continue
        if parent == start:
            return [*trail, start]
        if parent in explored or parent in trail or parent not in document.roles:
            continue
        trail.append(parent)
        stack.append(iter(document.roles[parent].inherits))
    return None
