"""Compiled matchers for a policy: route rules, path spellings and the grant index.

Three structures, built once per policy snapshot:

* :class:`RouteRuleSet` -- the ``public`` or ``deny`` rules as one regex
  alternation per method (the first matching rule, in policy order, wins), and
  :meth:`RouteRuleSet.restricted` -- the rules that could match any path of a
  given route template (a segment-wise test), so a plain path under
  ``/products/{id}`` never runs the ``/internal/**`` regex;
* :func:`path_views` -- every spelling a server might route a raw path as;
* :class:`GrantIndex` -- route grants (``"GET /products/**"``) in a trie over
  path segments with per-method role bit masks at each node, so a check walks
  the path's few segments instead of scanning thousands of globs; and
  :class:`NamedGrants` for named permissions (``catalog:read``).

Globs mean what :func:`~sloguard.routing.compile_glob` says; the trie is a
hand-written matcher for speed, and a property test holds it to that function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sloguard.routing import compile_glob
from sloguard.routing._normalize import normalize_path, percent_normalize, resolve_segments

__all__ = [
    "ANY_METHOD",
    "KNOWN_METHODS",
    "MATCH_ALL_GLOBS",
    "PLAIN_PATH",
    "Grant",
    "GrantIndex",
    "NamedGrants",
    "RouteRule",
    "RouteRuleSet",
    "RuleAlternation",
    "canonical_method",
    "could_match",
    "is_plain",
    "method_covers",
    "path_views",
    "public_views",
]

KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
ANY_METHOD: Final = "*"
# Globs that match every route, as compile_glob reads them.
MATCH_ALL_GLOBS: Final = frozenset({"*", "**", "/**"})
# A path of plain segments: no escapes, dot segments, params, empty segments or trailing slash.
# Every server routes it as written, so it is its own only spelling.
_PLAIN_CHARS = r"A-Za-z0-9\-_~!$&'()*+,=:@"
_PLAIN_PATTERN = rf"(?:/[{_PLAIN_CHARS}][{_PLAIN_CHARS}.]*)+|/"
PLAIN_PATH: Final = re.compile(_PLAIN_PATTERN)
_PLAIN_BYTES: Final = re.compile(_PLAIN_PATTERN.encode("ascii"))


def canonical_method(method: str) -> str:
    return method if method in KNOWN_METHODS else method.upper()


def method_covers(methods: frozenset[str] | None, method: str) -> bool:
    """``None`` or ``*`` covers every method; rules for GET cover HEAD (servers answer
    HEAD with the GET handler)."""
    if methods is None or ANY_METHOD in methods or method in methods:
        return True
    return method == "HEAD" and "GET" in methods


# --- path spellings ----------------------------------------------------------------------


def is_plain(path: str | bytes) -> bool:
    """Whether ``path`` is already in its only spelling (most paths are)."""
    if isinstance(path, str):
        return PLAIN_PATH.fullmatch(path) is not None
    return _PLAIN_BYTES.fullmatch(path) is not None


def path_views(path: str | bytes) -> tuple[str, ...]:
    """Every spelling a server might route ``path`` as; the RFC 3986 normalized one first.

    Besides :func:`~sloguard.routing.normalize_path`'s form, the views resolve
    ``..`` after merging repeated slashes (as nginx does: ``/a//../b`` is
    ``/b``, not ``/a/b``), keep ``..`` segments unresolved (Starlette routes
    ``/admin/..`` to ``/admin/{x}``) and, when the path holds an encoded ``/``
    or ``\\``, read those as separators (as a server that decodes before
    routing does).
    """
    if is_plain(path):
        return (path if isinstance(path, str) else path.decode("ascii"),)
    data = path.encode("utf-8", "surrogatepass") if isinstance(path, str) else path
    text = percent_normalize(data.partition(b"?")[0])
    views = _spellings(text)
    if "%2F" in text or "%5C" in text:
        views += _spellings(text.replace("%2F", "/").replace("%5C", "/"))
    return tuple(dict.fromkeys(views))


def _spellings(text: str) -> list[str]:
    """RFC 3986 resolution, resolution after merging slashes (nginx), and no resolution."""
    unresolved = _unresolved(text)
    return [
        resolve_segments(text, trailing_slash="strip", strip_params=True),
        resolve_segments(unresolved, trailing_slash="strip", strip_params=False),
        unresolved,
    ]


def public_views(path: str | bytes, views: tuple[str, ...]) -> tuple[str, ...]:
    """``views`` plus the spelling with ``;params`` kept: a public rule must match them all."""
    has_params = ";" in path if isinstance(path, str) else b";" in path
    if not has_params:
        return views
    return (*views, normalize_path(path, strip_params=False))


def _unresolved(text: str) -> str:
    """Params stripped and empty segments dropped, but ``.``/``..`` kept as segments."""
    kept = (segment.partition(";")[0] for segment in text.split("/"))
    return "/" + "/".join(segment for segment in kept if segment)


# --- public and deny rules ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One public or deny rule; ``field`` is where it sits in the policy (``deny.0``)."""

    field: str
    route: str
    methods: frozenset[str] | None
    case_insensitive: bool

    def pattern(self) -> str:
        """The glob's regex in one capturing group, case-insensitive (ASCII) when asked."""
        flags = "?ai:" if self.case_insensitive else "?:"
        return f"(({flags}{compile_glob(self.route).pattern}))"

    def matches(self, method: str, subject: str) -> bool:
        if not method_covers(self.methods, method):
            return False
        return re.fullmatch(self.pattern(), subject) is not None


@dataclass(frozen=True, slots=True)
class RuleAlternation:
    """Rules tried in order as one regex, one capturing group each: the first match wins."""

    regex: re.Pattern[str]
    rules: tuple[RouteRule, ...]

    def first(self, subject: str) -> RouteRule | None:
        found = self.regex.fullmatch(subject)
        if found is None or found.lastindex is None:
            return None
        return self.rules[found.lastindex - 1]

    def first_for_all(self, subjects: Sequence[str]) -> RouteRule | None:
        """The rule for ``subjects[0]`` if every subject matches some rule, else None."""
        found = self.first(subjects[0])
        if found is None or any(self.regex.fullmatch(s) is None for s in subjects[1:]):
            return None
        return found


class RouteRuleSet:
    """Public or deny rules compiled to one alternation per method."""

    __slots__ = ("_built", "_by_method", "_other", "rules")

    def __init__(self, rules: Sequence[RouteRule]) -> None:
        self.rules = tuple(rules)
        self._built: dict[tuple[RouteRule, ...], RuleAlternation | None] = {}
        methods = KNOWN_METHODS | {m for rule in self.rules for m in rule.methods or ()}
        self._by_method = {method: self._alternation(self.for_method(method)) for method in methods}
        # A method no rule names: only the rules for every method apply.
        self._other = self._alternation(self.for_method(""))

    def for_method(self, method: str) -> tuple[RouteRule, ...]:
        return tuple(rule for rule in self.rules if method_covers(rule.methods, method))

    def _alternation(self, selected: tuple[RouteRule, ...]) -> RuleAlternation | None:
        if selected not in self._built:
            pattern = "|".join(rule.pattern() for rule in selected)
            self._built[selected] = (
                RuleAlternation(re.compile(pattern), selected) if selected else None
            )
        return self._built[selected]

    def alternation(self, method: str) -> RuleAlternation | None:
        """All the rules for ``method``, or None when there are none."""
        return self._by_method.get(method, self._other)

    def restricted(self, method: str, template: str) -> RuleAlternation | None:
        """The rules for ``method`` that could match some path of route ``template``."""
        selected = tuple(r for r in self.for_method(method) if could_match(r, template))
        return self._alternation(selected)

    def first(self, method: str, subject: str) -> RouteRule | None:
        """The first rule, in policy order, for ``method`` whose glob matches ``subject``."""
        alternation = self.alternation(method)
        return None if alternation is None else alternation.first(subject)


def could_match(rule: RouteRule, template: str) -> bool:
    """False only when no path of ``template`` can match ``rule``'s glob.

    Conservative, segment by segment: a ``**`` or a ``{x:path}`` parameter ends the
    comparison with "maybe"; a parameter segment matches anything; literal segments
    must agree with the glob's segment; otherwise the segment counts must agree.
    """
    if rule.route in MATCH_ALL_GLOBS or not template.startswith("/"):
        return True
    globs = rule.route.split("/")[1:]
    parts = template.split("/")[1:]
    flags = re.IGNORECASE | re.ASCII if rule.case_insensitive else 0
    for index, glob in enumerate(globs):
        if glob == "**":
            return True
        if index >= len(parts):
            return False
        part = parts[index]
        if ":path}" in part:
            return True
        if "{" in part:
            continue
        if re.fullmatch(compile_glob(glob).pattern, part, flags) is None:
            return False
    return len(parts) == len(globs) or any(":path}" in p for p in parts[len(globs) :])


# --- grants ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission a role declares: a route grant (``method`` set) or a named one."""

    field: str
    order: int
    role: str
    bit: int
    method: str | None
    target: str

    @property
    def text(self) -> str:
        return self.target if self.method is None else f"{self.method} {self.target}"

    def covers(self, method: str) -> bool:
        return self.method in (ANY_METHOD, method) or (method == "HEAD" and self.method == "GET")


class _Node:
    """A trie node over path segments; ``loops`` marks a ``**`` node (any number of segments)."""

    __slots__ = (
        "children",
        "closure",
        "globstar",
        "grants",
        "loops",
        "masks",
        "other_mask",
        "patterns",
    )

    def __init__(self, *, loops: bool = False) -> None:
        self.children: dict[str, _Node] = {}
        self.patterns: list[tuple[str, re.Pattern[str], _Node]] = []
        self.globstar: _Node | None = None
        self.loops = loops
        self.grants: list[Grant] = []
        self.masks: dict[str, int] = {}
        self.other_mask = 0
        #: this node and the ``**`` nodes reachable from it without consuming a segment.
        self.closure: tuple[_Node, ...] = (self,)

    def child(self, segment: str) -> _Node:
        if segment == "**":
            if self.globstar is None:
                self.globstar = _Node(loops=True)
            return self.globstar
        if "*" in segment or "?" in segment:
            for text, _, node in self.patterns:
                if text == segment:
                    return node
            node = _Node()
            self.patterns.append((segment, compile_glob(segment), node))
            return node
        node = self.children.get(segment) or _Node()
        self.children[segment] = node
        return node

    def finish(self, methods: frozenset[str]) -> None:
        """Precompute, per method, the mask of roles whose grants end here, and closures."""
        closure = [self]
        while closure[-1].globstar is not None:
            closure.append(closure[-1].globstar)
        self.closure = tuple(closure)
        for method in methods:
            self.masks[method] = _mask_of(g for g in self.grants if g.covers(method))
        self.other_mask = _mask_of(g for g in self.grants if g.method == ANY_METHOD)
        below = [*self.children.values(), *(node for _, _, node in self.patterns)]
        for node in [*below, *([self.globstar] if self.globstar else [])]:
            node.finish(methods)


def _mask_of(grants: Iterable[Grant]) -> int:
    mask = 0
    for grant in grants:
        mask |= grant.bit
    return mask


class GrantIndex:
    """Route grants in a segment trie; each node keeps per-method role masks."""

    __slots__ = ("_anywhere", "_root", "grants")

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.grants = tuple(grants)
        self._root = _Node()
        self._anywhere = _Node()  # "* /**" and friends: every subject
        for grant in self.grants:
            node = self._anywhere
            if grant.target not in MATCH_ALL_GLOBS:
                node = self._root
                for segment in grant.target.split("/")[1:]:
                    node = node.child(segment)
            node.grants.append(grant)
        methods = KNOWN_METHODS | {g.method for g in self.grants if g.method}
        self._root.finish(methods)
        self._anywhere.finish(methods)

    def _terminals(self, subject: str) -> list[_Node]:
        """The nodes where a glob matching all of ``subject`` ends (an NFA walk)."""
        if not subject.startswith("/"):
            return [self._anywhere]
        current: Iterable[_Node] = self._root.closure
        for segment in subject.split("/")[1:]:
            following: dict[_Node, None] = {}
            for node in current:
                if node.loops:
                    following[node] = None
                child = node.children.get(segment)
                if child is not None:
                    following.update(dict.fromkeys(child.closure))
                for _, regex, matched in node.patterns:
                    if regex.fullmatch(segment) is not None:
                        following.update(dict.fromkeys(matched.closure))
            if not following:
                return [self._anywhere]
            current = following
        return [self._anywhere, *current]

    def matching(self, method: str, subject: str) -> list[Grant]:
        """Every grant for ``method`` whose glob matches ``subject``, in policy order."""
        found = {g for node in self._terminals(subject) for g in node.grants if g.covers(method)}
        return sorted(found, key=lambda g: g.order)

    def first_granted(self, method: str, subject: str, held: int) -> Grant | None:
        """The first grant (in policy order) of a role in ``held`` that allows the request."""
        if not held:
            return None
        best: Grant | None = None
        for node in self._terminals(subject):
            if not node.masks.get(method, node.other_mask) & held:
                continue
            for grant in node.grants:
                if grant.bit & held and grant.covers(method):
                    if best is None or grant.order < best.order:
                        best = grant
                    break
        return best


class NamedGrants:
    """Named permissions (``catalog:read``); ``*`` in a grant matches any run of characters."""

    __slots__ = ("_exact", "_patterns", "grants")

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.grants = tuple(grants)
        self._exact: dict[str, list[Grant]] = {}
        self._patterns: list[tuple[re.Pattern[str], Grant]] = []
        for grant in self.grants:
            if "*" in grant.target:
                regex = re.compile(".*".join(map(re.escape, grant.target.split("*"))))
                self._patterns.append((regex, grant))
            else:
                self._exact.setdefault(grant.target, []).append(grant)

    def matching(self, name: str) -> list[Grant]:
        found = [*self._exact.get(name, ()), *(g for r, g in self._patterns if r.fullmatch(name))]
        return sorted(found, key=lambda g: g.order)

    def first_granted(self, name: str, held: int) -> Grant | None:
        if not held:
            return None
        return next((g for g in self.matching(name) if g.bit & held), None)
