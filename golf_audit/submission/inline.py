"""Eval blocks written inline in the entry code (``if args.slot_enabled: ...`` inside ``main``).

They are found statically (automatic candidates: an ``if`` whose test reads an eval flag and
whose body optimizes over validation data and scores; or the block named with ``--inline``)
and rewritten, in the child's copy of the script only, into a nested function defined and
called in place::

    if args.slot_enabled:                      if args.slot_enabled:
        ...block...                    ->          def __ga_inline_412():
                                                       nonlocal <names the block assigns>
                                                       ...block...
                                                       return (slot_loss, slot_bpb)
                                                   __ga_inline_412 = __ga_wrap__(__ga_inline_412, ...)
                                                   __ga_inline_412()

so ``main`` still sees every name the block assigns, and the block becomes a scoring call like
any other: recorded, frozen (its closure over ``main``'s locals copied with it) and replayed on
flipped streams. Line numbers are kept. Blocks that ``return``/``break``/``continue``/``yield``
at their top level, or that sit at module level, cannot be moved into a function and are left
in place (the pipeline test still covers them).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .analyze import AnalysisError

EVAL_FLAG_WORDS = ("slot", "ttt", "ngram", "cache", "eval", "ppm")
OPTIMIZER_NAMES = ("SGD", "Adam", "AdamW", "Muon", "RMSprop", "Adagrad", "LBFGS")
SCORING_CALLS = ("cross_entropy", "log_softmax", "nll_loss")


@dataclass
class InlineBlock:
    function: str  # the entry function holding it
    line: int  # line of the ``if``
    test: str
    loss: str  # names returned as (val_loss, val_bpb)
    bpb: str

    @property
    def name(self) -> str:
        return f"__ga_inline_{self.line}"

    @property
    def label(self) -> str:
        return f"inline block {self.function}:{self.line} if {self.test}"


def _flag_test(node: ast.If) -> bool:
    return any(w in ast.unparse(node.test).lower() for w in EVAL_FLAG_WORDS)


def _evaluates_over_val(block: list[ast.stmt]) -> bool:
    mod = ast.Module(body=block, type_ignores=[])
    calls = {ast.unparse(n.func).split(".")[-1] for n in ast.walk(mod) if isinstance(n, ast.Call)}
    val = any(isinstance(n, ast.Name) and "val" in n.id.lower() for n in ast.walk(mod))
    return bool(calls & set(OPTIMIZER_NAMES)) and bool(calls & set(SCORING_CALLS)) and val


def _return_names(block: list[ast.stmt]) -> tuple[str, str] | None:
    stores = [n for n in ast.walk(ast.Module(body=block, type_ignores=[]))
              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    assigned = [n.id for n in sorted(stores, key=lambda n: (n.lineno, n.col_offset))]
    loss = [n for n in assigned if "loss" in n.lower() and "bpb" not in n.lower()]
    bpb = [n for n in assigned if "bpb" in n.lower()]
    return (loss[-1], bpb[-1]) if loss and bpb else None


def _movable(block: list[ast.stmt]) -> bool:
    """No top-level return/yield/break/continue: the block can become a function body."""
    def walk(nodes: list[ast.AST], in_loop: bool) -> bool:
        for n in nodes:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(n, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)):
                return False
            if isinstance(n, (ast.Break, ast.Continue)) and not in_loop:
                return False
            loop = in_loop or isinstance(n, (ast.For, ast.While, ast.AsyncFor))
            if not walk(list(ast.iter_child_nodes(n)), loop):
                return False
        return True

    return walk(list(block), False)


def inline_blocks(tree: ast.Module, selector: str | None = None, skip: set[str] | None = None) -> list[InlineBlock]:
    """The inline eval blocks to audit: ``selector`` (``'if args.slot_enabled'``), or the candidates.

    AnalysisError when ``selector`` names no block.
    """
    want = None
    if selector is not None:
        want = " ".join(selector.strip().rstrip(":").split())
        want = want[3:] if want.startswith("if ") else want
    out = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in (skip or set())):
        for node in ast.walk(fn):
            if not isinstance(node, ast.If) or not node.body:
                continue
            test = " ".join(ast.unparse(node.test).split())
            chosen = test == want if want is not None else (_flag_test(node) and _evaluates_over_val(node.body))
            names = _return_names(node.body)
            if chosen and names and _movable(node.body):
                out.append(InlineBlock(fn.name, node.lineno, test[:80], *names))
    if want is not None and not out:
        raise AnalysisError(f"no movable 'if {want}:' block that assigns a loss and a bpb in a function of the script")
    return out


def _assigned(block: list[ast.stmt]) -> list[str]:
    """Names the block binds in its own scope (not inside nested functions or comprehensions)."""
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name not in out:
                out.append(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)) and node.id not in out:
            out.append(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                name = (a.asname or a.name).split(".")[0]
                if name not in out:
                    out.append(name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in block:
        visit(stmt)
    return out


def rewrite(tree: ast.Module, blocks: list[InlineBlock]) -> None:
    """Rewrite ``tree`` in place: each block becomes a nested, wrapped function called where it was."""
    by_line = {b.line: b for b in blocks}
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, ast.If) and node.lineno in by_line:
                b = by_line[node.lineno]
                names = _assigned(node.body)
                end = node.body[-1].end_lineno or node.body[-1].lineno
                header = [ast.Nonlocal(names=names)] if names else []
                ret = ast.Return(value=ast.Tuple(elts=[ast.Name(b.loss, ast.Load()), ast.Name(b.bpb, ast.Load())],
                                                 ctx=ast.Load()))
                inner = ast.FunctionDef(name=b.name, args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                                        kw_defaults=[], defaults=[]),
                                        body=header + node.body + [ret], decorator_list=[], returns=None,
                                        type_params=[])
                wrap = ast.parse(f"{b.name} = __ga_wrap__({b.name}, {b.label!r}, {b.line})\n{b.name}()").body
                # ``nonlocal`` needs a binding in the enclosing function: a never-run one keeps every
                # name the block assigns a local of that function, as it was before the move
                binders = ast.parse("if False:\n" + "".join(f"    {n} = None\n" for n in names)).body if names else []
                new_body = binders + [inner] + wrap
                for n in ast.walk(ast.Module(body=header + [ret] + wrap + binders, type_ignores=[])):
                    if hasattr(n, "lineno"):
                        n.lineno = n.end_lineno = end  # type: ignore[attr-defined]
                        n.col_offset = n.end_col_offset = 0  # type: ignore[attr-defined]
                ast.copy_location(inner, node.body[0])
                inner.end_lineno = end
                node.body = new_body
    ast.fix_missing_locations(tree)
