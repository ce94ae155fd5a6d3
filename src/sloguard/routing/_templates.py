"""Route templates: which declared route a raw request path belongs to.

A :class:`RouteTable` turns a raw path into the template that serves it
(``/items/42`` -> ``/items/{item_id:int}``) or into :data:`UNMATCHED`, one
label for everything else, so metric and SLI cardinality stays bounded however
many distinct paths clients send. Templates use Starlette's syntax --
``{name}`` or ``{name:convertor}`` with the convertors ``str`` (one segment,
the default), ``int``, ``float``, ``uuid`` and ``path`` (any rest, slashes
included) -- and are matched against the *normalized* path, so an encoded
slash (``%2F``) stays inside a ``str`` parameter and never splits a segment.

Loading normalizes each template as :func:`normalize_path` does (``//a/b/`` ->
``/a/b``, ``%7e`` -> ``~``) and rejects, with a :class:`PathError` naming the
template, one that does not start with ``/``, holds a query (``?``, ``#``),
a stray brace, an unknown convertor, a ``.``/``..`` segment or a ``;param``
(normalized paths never contain the last two, so such a template could never
match). A repeated parameter name is allowed: matching ignores names, and
nested Starlette mounts (``Mount("/{id}", routes=[Route("/{id}", ...)])``)
produce such templates.

Which template wins when several match:

1. a static template (no parameters) always wins; these sit in a dict;
2. otherwise the most specific dynamic template wins, comparing segment by
   segment from the left: a static segment beats a segment mixing text and
   parameters (``{id}.json``), which beats a typed parameter (``int``,
   ``float``, ``uuid``), which beats a ``str`` parameter, which beats a
   ``path`` parameter; a template that ends beats none of these (so
   ``/files/{p:path}/raw`` beats ``/files/{p:path}``);
3. equally specific templates keep their declared order.

A trailing ``/{name:path}`` also matches the bare prefix (``/static`` for
``/static/{path:path}``), because a stripped trailing slash must not turn a
mounted sub-application's root into ``<unmatched>``.

Resolution is cached per raw path in a bounded LRU (paths longer than
``MAX_CACHED_PATH_LENGTH`` bypass it, so a flood of huge unique paths cannot
pin much memory).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sloguard.routing._normalize import (
    PathError,
    TrailingSlash,
    normalize_path,
    percent_normalize,
    resolve_segments,
)

__all__ = ["MAX_CACHED_PATH_LENGTH", "UNMATCHED", "RouteTable", "RouteTemplate"]

UNMATCHED: Final = "<unmatched>"
MAX_CACHED_PATH_LENGTH: Final = 2048

_PARAM: Final = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?\}")
_CONVERTOR_REGEX: Final = {
    "str": r"[^/]+",
    "int": r"[0-9]+",
    "float": r"[0-9]+(?:\.[0-9]+)?",
    "uuid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
    "path": r".*",
}
# Segment ranks, lower is more specific; _END marks where a template stops.
_STATIC, _MIXED, _END = 0, 1, 5
_TRAILING_SLASH_MODES: Final = frozenset({"strip", "keep"})
_CONVERTOR_RANK: Final = {"int": 2, "float": 2, "uuid": 2, "str": 3, "path": 4}


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """One loaded template: its normalized text, its regex and its specificity."""

    template: str
    pattern: str
    specificity: tuple[int, ...]

    @property
    def is_static(self) -> bool:
        return _PARAM.search(self.template) is None

    @classmethod
    def parse(cls, template: str, *, trailing_slash: TrailingSlash = "strip") -> RouteTemplate:
        normalized = _normalize_template(template, trailing_slash)
        return cls(normalized, _pattern_of(normalized), _specificity_of(normalized))


def _normalize_template(template: str, trailing_slash: TrailingSlash) -> str:
    if not template.startswith("/"):
        raise PathError(template, "a route template must start with '/'")
    if "?" in template or "#" in template:
        raise PathError(template, "a route template holds no query or fragment")
    params = list(_PARAM.finditer(template))
    for match in params:
        if (match.group(2) or "str") not in _CONVERTOR_REGEX:
            raise PathError(template, f"unknown convertor in {match.group()}")
    literals = _PARAM.split(template)[:: _PARAM.groups + 1]
    if any("{" in text or "}" in text for text in literals):
        raise PathError(template, "a '{' or '}' that is not part of a {name:convertor}")
    # "\0<n>\0" stands in for parameter n: percent_normalize escapes NUL, so no
    # literal text can collide with it.
    marked = "".join(
        percent_normalize(text.encode("utf-8", "surrogatepass"))
        + (f"\0{index}\0" if index < len(params) else "")
        for index, text in enumerate(literals)
    )
    if ";" in marked:
        raise PathError(template, "';params' are stripped from paths, so cannot be matched")
    if any(segment in {".", ".."} for segment in marked.split("/")):
        raise PathError(template, "'.' and '..' segments are removed from paths")
    resolved = resolve_segments(marked, trailing_slash=trailing_slash, strip_params=False)
    for index, match in enumerate(params):
        resolved = resolved.replace(f"\0{index}\0", match.group())
    return resolved


def _pattern_of(template: str) -> str:
    parts: list[str] = []
    position = 0
    for match in _PARAM.finditer(template):
        convertor = match.group(2) or "str"
        literal = template[position : match.start()]
        if convertor == "path" and literal.endswith("/") and match.end() == len(template):
            parts.append(re.escape(literal[:-1]) + "(?:/.*)?")
        else:
            parts.append(re.escape(literal) + _CONVERTOR_REGEX[convertor])
        position = match.end()
    parts.append(re.escape(template[position:]))
    return "".join(parts)


def _specificity_of(template: str) -> tuple[int, ...]:
    ranks: list[int] = []
    for segment in template.split("/")[1:]:
        params = list(_PARAM.finditer(segment))
        if not params:
            ranks.append(_STATIC)
        elif len(params) == 1 and params[0].group() == segment:
            ranks.append(_CONVERTOR_RANK[params[0].group(2) or "str"])
        elif any(match.group(2) == "path" for match in params):
            ranks.append(_CONVERTOR_RANK["path"])
        else:
            ranks.append(_MIXED)
    return (*ranks, _END)


def _first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


@dataclass(frozen=True, slots=True)
class _Alternation:
    """Templates tried in order as one regex: one group each, the first match wins."""

    regex: re.Pattern[str]
    templates: tuple[str, ...]

    @classmethod
    def of(cls, templates: list[RouteTemplate]) -> _Alternation:
        pattern = "|".join(f"({t.pattern})" for t in templates)
        return cls(re.compile(pattern), tuple(t.template for t in templates))

    def match(self, path: str) -> str | None:
        found = self.regex.fullmatch(path)
        if found is None or found.lastindex is None:
            return None
        return self.templates[found.lastindex - 1]


class RouteTable:
    """Resolves raw request paths to the declared templates that serve them."""

    __slots__ = (
        "_anywhere",
        "_by_first_segment",
        "_cached",
        "_static",
        "_trailing_slash",
        "templates",
    )

    def __init__(
        self,
        templates: Iterable[str],
        *,
        trailing_slash: TrailingSlash = "strip",
        max_cached_paths: int = 4096,
    ) -> None:
        if trailing_slash not in _TRAILING_SLASH_MODES:
            raise ValueError(f"trailing_slash must be 'strip' or 'keep', not {trailing_slash!r}")
        if max_cached_paths < 0:
            raise ValueError(f"max_cached_paths must be >= 0, not {max_cached_paths}")
        loaded: dict[str, RouteTemplate] = {}
        for text in templates:
            parsed = RouteTemplate.parse(text, trailing_slash=trailing_slash)
            loaded.setdefault(parsed.template, parsed)
        self.templates: tuple[str, ...] = tuple(loaded)
        self._trailing_slash: TrailingSlash = trailing_slash
        self._static = {t.template: t.template for t in loaded.values() if t.is_static}
        # sorted() is stable, so equally specific templates keep their declared order.
        dynamic = sorted(
            (t for t in loaded.values() if not t.is_static), key=lambda t: t.specificity
        )
        # A template whose first segment is static outranks every template whose first
        # segment is not, and only matches paths starting with that segment: so try the
        # path's own first-segment group, then the rest, each in specificity order.
        grouped: dict[str, list[RouteTemplate]] = {}
        anywhere: list[RouteTemplate] = []
        for parsed in dynamic:
            first = _first_segment(parsed.template)
            if _PARAM.search(first) is None:
                grouped.setdefault(first, []).append(parsed)
            else:
                anywhere.append(parsed)
        self._by_first_segment = {first: _Alternation.of(group) for first, group in grouped.items()}
        self._anywhere = _Alternation.of(anywhere) if anywhere else None
        self._cached: functools._lru_cache_wrapper[str] = functools.lru_cache(
            maxsize=max_cached_paths
        )(self._resolve_uncached)

    def resolve(self, raw_path: str | bytes) -> str:
        """The template serving ``raw_path``, or :data:`UNMATCHED`; never raises on input."""
        if len(raw_path) > MAX_CACHED_PATH_LENGTH:
            return self._resolve_uncached(raw_path)
        return self._cached(raw_path)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()

    def _resolve_uncached(self, raw_path: str | bytes) -> str:
        path = normalize_path(raw_path, trailing_slash=self._trailing_slash)
        template = self._static.get(path)
        if template is not None:
            return template
        group = self._by_first_segment.get(_first_segment(path))
        if group is not None and (template := group.match(path)) is not None:
            return template
        if self._anywhere is not None and (template := self._anywhere.match(path)) is not None:
            return template
        return UNMATCHED

    def __repr__(self) -> str:
        return f"RouteTable({list(self.templates)!r})"
