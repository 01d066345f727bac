"""Memoized ``ast.walk``/``ast.unparse`` for the static analyses of one script.

The static checks walk the same subtrees thousands of times (every function, for every
statement of every other function): on a 3,000-line record that was most of a report's time.
Inside :func:`scope`, :func:`walk` and :func:`unparse` remember their answer per node; the
memo holds a reference to each node, so an ``id`` is never reused while it is remembered, and
it is dropped when the outermost scope ends. Trees must not be changed inside a scope (the
static checks only read them). Outside a scope both are the plain ``ast`` functions.
"""

from __future__ import annotations

import ast
import contextlib
from typing import Iterator

_walks: dict[int, tuple[ast.AST, list[ast.AST]]] = {}
_texts: dict[int, tuple[ast.AST, str]] = {}
_owns: dict[int, tuple[ast.AST, list[ast.AST]]] = {}
_depth = 0


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Remember walks and unparses until the outermost scope ends."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _walks.clear()
            _texts.clear()
            _owns.clear()


def walk(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk(node)``, each subtree listed once per scope."""
    if not _depth:
        return ast.walk(node)
    hit = _walks.get(id(node))
    if hit is None:
        hit = _walks[id(node)] = (node, list(ast.walk(node)))
    return iter(hit[1])


def unparse(node: ast.AST) -> str:
    """``ast.unparse(node)``, computed once per node and scope."""
    if not _depth:
        return ast.unparse(node)
    hit = _texts.get(id(node))
    if hit is None:
        hit = _texts[id(node)] = (node, ast.unparse(node))
    return hit[1]


def _own(fn: ast.AST) -> Iterator[ast.AST]:
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """The nodes under ``fn`` without descending into nested function definitions or lambdas."""
    if not _depth:
        return _own(fn)
    hit = _owns.get(id(fn))
    if hit is None:
        hit = _owns[id(fn)] = (fn, list(_own(fn)))
    return iter(hit[1])
