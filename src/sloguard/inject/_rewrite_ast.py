"""The source rewrite: add ``@__sloguard_traced__(module, qualname)`` to selected defs.

The decorator goes last in the decorator list, so it is applied first, to
the bare function: ``@staticmethod``, ``@property``, ``@contextmanager``,
``@functools.cache`` and the like then wrap the traced function as they would
the bare one. Bodies are not touched, so ``nonlocal``, argument-less
``super()``, the ``__class__`` cell, class bodies, ``global`` and closures
keep their meaning, and every line keeps its number: the added nodes carry
the location of their ``def`` line and nothing else moves. The module is
compiled under its real file name, so tracebacks, ``inspect.getsource`` and
coverage see the file on disk.

Skipped: lambdas (no ``def`` to decorate), ``@overload`` stubs (replaced at
definition time, never called) and defs that already carry the decorator.
Qualnames follow Python's own rules (``Outer.Inner.method``,
``outer.<locals>.inner``), so a selector matches what ``func.__qualname__``
will say at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from sloguard.inject._traced import TRACED_NAME

__all__ = ["rewrite_tree"]

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _should_skip(node: _FunctionNode) -> bool:
    names = {_decorator_name(d) for d in node.decorator_list}
    return "overload" in names or TRACED_NAME in names


def _traced_decorator(node: _FunctionNode, module: str, qualname: str) -> ast.expr:
    call = ast.Call(
        func=ast.Name(id=TRACED_NAME, ctx=ast.Load()),
        args=[ast.Constant(value=module), ast.Constant(value=qualname)],
        keywords=[],
    )
    # Every added node sits on the def's own line: no other line moves.
    for added in ast.walk(call):
        if isinstance(added, ast.expr):
            added.lineno = added.end_lineno = node.lineno
            added.col_offset = added.end_col_offset = node.col_offset
    return call


def rewrite_tree(tree: ast.Module, module: str, selected: Callable[[str], bool]) -> list[str]:
    """Decorate, in place, each def whose qualname ``selected`` accepts; return their qualnames."""
    wrapped: list[str] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for statement in body:
            _visit_statement(statement, prefix)

    def _visit_statement(node: ast.AST, prefix: str) -> None:
        if isinstance(node, ast.ClassDef):
            visit(node.body, f"{prefix}{node.name}.")
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            qualname = f"{prefix}{node.name}"
            if selected(qualname) and not _should_skip(node):
                node.decorator_list.append(_traced_decorator(node, module, qualname))
                wrapped.append(qualname)
            visit(node.body, f"{qualname}.<locals>.")
            return
        # Compound statements (if/try/with/for/while/match) keep the enclosing prefix.
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt | ast.match_case | ast.ExceptHandler):
                _visit_statement(child, prefix)

    visit(tree.body, "")
    return wrapped
