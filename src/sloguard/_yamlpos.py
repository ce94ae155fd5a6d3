"""Where in a YAML file a field lives: the line numbers of our error messages.

Settings, auth policies and SLO specs all validate a parsed document with
pydantic and report problems as ``file:line: field: message``; this finds the
line from the document's node tree (``yaml.compose``) and the error location.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

__all__ = ["line_of"]


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest node along ``loc`` that exists (a key's own line).

    ``loc`` parts are mapping keys, or list indexes given as ints or digit strings.
    """
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode):
            index = part if isinstance(part, int) else int(part) if part.isdigit() else -1
            if 0 <= index < len(node.value):
                child = node.value[index]
                line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
