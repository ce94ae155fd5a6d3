"""Route globs, shared by SLO selectors, per-route sampling and authorization.

A glob is matched against a route template (``/items/{item_id}``) or a
normalized path, segment by segment:

* ``*`` alone matches every route (any path at all);
* ``*`` inside a segment matches any run of characters except ``/``;
* ``**`` as a whole segment matches zero or more segments;
* ``?`` matches one character except ``/``;
* everything else is literal (so ``{item_id}`` matches itself in a template).

Globs compile to one regular expression each; :class:`GlobSet` answers "does
any glob match" and "which globs match" for a list of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["GlobSet", "compile_glob", "glob_matches"]


@lru_cache(maxsize=1024)
def compile_glob(glob: str) -> re.Pattern[str]:
    """Compile one route glob to an anchored regular expression."""
    if glob in {"*", "**", "/**"}:
        return re.compile(r"(?s:.*)")
    parts: list[str] = []
    segments = glob.split("/")
    for index, segment in enumerate(segments):
        if segment == "**":
            # "/a/**" matches "/a" and "/a/x/y"; "/**/b" matches "/b" and "/x/y/b".
            parts.append("(?:/[^/]*)*" if index else "")
            continue
        piece = "".join(
            "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in segment
        )
        parts.append(("/" if index else "") + piece)
    return re.compile("".join(parts))


def glob_matches(glob: str, route: str) -> bool:
    return compile_glob(glob).fullmatch(route) is not None


class GlobSet:
    """An ordered list of globs, matched as one."""

    __slots__ = ("_combined", "globs")

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(globs)
        pattern = "|".join(f"(?:{compile_glob(g).pattern})" for g in self.globs)
        self._combined = re.compile(pattern) if self.globs else None

    def matches(self, route: str) -> bool:
        return self._combined is not None and self._combined.fullmatch(route) is not None

    def first(self, route: str) -> str | None:
        """The first glob (in order) that matches ``route``, or None."""
        for glob in self.globs:
            if compile_glob(glob).fullmatch(route) is not None:
                return glob
        return None
