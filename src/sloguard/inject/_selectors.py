"""Which functions to trace: ``module_glob:qualname_glob`` selectors.

A selector names functions by where they live, like New Relic's function
selectors, and is matched at import time (no running code is inspected)::

    myapp.services.*:*        every function and method of each module directly under myapp.services
    myapp.**:*                every function and method of myapp and all its submodules
    myapp.db:Repo.*           the methods of myapp.db.Repo
    myapp.db:Repo.**          the methods of Repo and anything nested inside them
    myapp.api:handle_*        the module-level functions of myapp.api whose name starts with handle_

Both halves are dotted names matched segment by segment:

* ``*`` inside a segment matches any run of characters except ``.``;
* ``?`` matches one character except ``.``;
* ``**`` as a whole segment matches zero or more segments;
* a qualname glob of ``*`` alone matches every function and method that is not
  nested inside another function (qualnames without ``<locals>``); functions
  defined inside functions are traced only when named (``outer.<locals>.inner``)
  or matched by a ``**`` segment, because their wrapper is rebuilt on every
  call of the enclosing function;
* everything else is literal (``<locals>`` included).

Selectors are parsed once (:func:`parse_selector`); a :class:`SelectorSet`
answers the import hook's question "might this module hold a selected
function" with one cached dictionary lookup per module name.

Exceptions::

    ValueError
     └── SelectorError     a selector could not be parsed; the message names it
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Selector", "SelectorError", "SelectorSet", "parse_selector"]

_SEGMENT = re.compile(r"[A-Za-z_*?<>][A-Za-z0-9_*?<>]*")
_WILDCARDS = frozenset("*?")


class SelectorError(ValueError):
    """A selector could not be parsed."""

    def __init__(self, selector: str, reason: str) -> None:
        super().__init__(f"invalid trace selector {selector!r}: {reason}")
        self.selector = selector
        self.reason = reason


def _glob_pattern(glob: str) -> str:
    """Translate one dotted glob to a regular expression (matched with ``fullmatch``)."""
    segments = glob.split(".")
    if segments == ["**"]:
        return r".*"
    parts: list[str] = []
    for index, segment in enumerate(segments):
        if segment == "**":
            # "**.b" matches "b" and "x.y.b"; "a.**" matches "a" and "a.x.y".
            parts.append(r"(?:[^.]+\.)*" if index == 0 else r"(?:\.[^.]+)*")
            continue
        piece = "".join(
            "[^.]*" if ch == "*" else "[^.]" if ch == "?" else re.escape(ch) for ch in segment
        )
        leading_dot = index > 0 and not (index == 1 and segments[0] == "**")
        parts.append((r"\." if leading_dot else "") + piece)
    return "".join(parts)


def _check_glob(selector: str, half: str, glob: str) -> None:
    if not glob:
        raise SelectorError(selector, f"the {half} part is empty")
    for segment in glob.split("."):
        if not segment:
            raise SelectorError(selector, f"the {half} part {glob!r} has an empty segment")
        if segment != "**" and "**" in segment:
            raise SelectorError(
                selector, f"'**' must be a whole segment of the {half} part, got {segment!r}"
            )
        if segment != "**" and not _SEGMENT.fullmatch(segment):
            raise SelectorError(
                selector,
                f"segment {segment!r} of the {half} part is not a Python name or a glob of one",
            )


@dataclass(frozen=True)
class Selector:
    """One parsed ``module_glob:qualname_glob`` selector."""

    text: str
    module_glob: str
    qualname_glob: str
    _module_re: re.Pattern[str] = field(repr=False, compare=False)
    _qualname_re: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def is_exact(self) -> bool:
        """True when the selector names one function (no wildcards): a live-probe target."""
        return not (_WILDCARDS & set(self.text))

    def matches_module(self, module: str) -> bool:
        return self._module_re.fullmatch(module) is not None

    def matches_qualname(self, qualname: str) -> bool:
        if self.qualname_glob == "*":
            return "<locals>" not in qualname
        return self._qualname_re.fullmatch(qualname) is not None

    def matches(self, module: str, qualname: str) -> bool:
        return self.matches_module(module) and self.matches_qualname(qualname)


def parse_selector(text: str) -> Selector:
    """Parse ``module_glob:qualname_glob``; raise :class:`SelectorError` naming ``text``."""
    if not isinstance(text, str):
        raise SelectorError(repr(text), "a selector is a string 'module:qualname'")
    stripped = text.strip()
    if stripped.count(":") != 1:
        raise SelectorError(
            text, "expected exactly one ':' between the module and the qualname, as in 'pkg.mod:*'"
        )
    module_glob, qualname_glob = (part.strip() for part in stripped.split(":"))
    _check_glob(text, "module", module_glob)
    _check_glob(text, "qualname", qualname_glob)
    return Selector(
        text=stripped,
        module_glob=module_glob,
        qualname_glob=qualname_glob,
        _module_re=re.compile(_glob_pattern(module_glob)),
        _qualname_re=re.compile(_glob_pattern(qualname_glob)),
    )


class SelectorSet:
    """Selectors matched as one, with a per-module cache for the import hook."""

    __slots__ = ("_module_cache", "_modules_re", "selectors")

    def __init__(self, selectors: Iterable[str | Selector]) -> None:
        self.selectors = tuple(
            s if isinstance(s, Selector) else parse_selector(s) for s in selectors
        )
        pattern = "|".join(f"(?:{s._module_re.pattern})" for s in self.selectors)
        self._modules_re = re.compile(pattern) if self.selectors else None
        self._module_cache: dict[str, tuple[Selector, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.selectors)

    def module_may_match(self, module: str) -> bool:
        """The import hook's pre-filter: could ``module`` hold a selected function?"""
        if self._modules_re is None:
            return False
        return self._modules_re.fullmatch(module) is not None

    def for_module(self, module: str) -> tuple[Selector, ...]:
        """The selectors whose module glob matches ``module`` (cached)."""
        found = self._module_cache.get(module)
        if found is None:
            found = tuple(s for s in self.selectors if s.matches_module(module))
            self._module_cache[module] = found
        return found

    def matches(self, module: str, qualname: str) -> bool:
        return any(s.matches_qualname(qualname) for s in self.for_module(module))
