"""What a training script says about its byte accounting, read by ast only (nothing executed).

* ``builders``: the functions that build or load the per-token byte tables (a SentencePiece
  loop over ``is_byte``/``id_to_piece``; a loader of a shipped ``base_bytes`` table; a
  dispatcher choosing between them). The roots of their call graph are what the script uses.
* ``extract``: one builder and everything it needs (imports, constants, helper functions,
  transitively), as a small module whose lines keep the script's line numbers; it is what runs
  in the sandbox, instead of the whole training script.
* ``denominator_findings``: where a bpb is computed from a fixed bytes-per-token constant, or,
  with a transformed tokenizer, from a per-token table of the transformed pieces with no
  raw-byte sidecar in sight.
"""

from __future__ import annotations

import ast
import math
import re

from .. import astmemo
from dataclasses import dataclass, field

SP_METHODS = {"is_byte", "id_to_piece", "IsByte", "IdToPiece", "is_control", "IsControl"}
TABLE_KEYS = {"base_bytes", "has_leading_space", "is_boundary_token", "is_boundary"}
_SIDECAR_NAME = re.compile(r"sidecar|load_\w*bytes|val_bytes|byte_counts", re.IGNORECASE)
_TABLE_NAME = re.compile(r"bytes_lut|base_bytes|token_bytes|bytes_per_token_lut", re.IGNORECASE)


@dataclass
class Builder:
    name: str
    line: int
    kind: str  # "sentencepiece" | "table-file" | "dispatcher"
    params: list[str]
    calls: set[str] = field(default_factory=set)  # other builders it calls


@dataclass
class Finding:
    kind: str  # "fixed-bytes-per-token" | "transformed-bytes"
    line: int
    function: str
    message: str


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _called_names(node: ast.AST) -> set[str]:
    return {c.func.id for c in astmemo.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}


def builders(tree: ast.Module) -> list[Builder]:
    """Every byte-table builder/loader of the script (top-level functions), in source order."""
    found: dict[str, Builder] = {}
    fns = _functions(tree)
    for name, fn in fns.items():
        methods = {c.func.attr for c in astmemo.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
        strings = {c.value for c in astmemo.walk(fn) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
        if methods & {"is_byte", "IsByte"} or ({"id_to_piece", "IdToPiece"} & methods
                                               and methods & {"is_control", "is_unknown", "IsControl", "IsUnknown"}):
            found[name] = Builder(name, fn.lineno, "sentencepiece", params)
        elif strings & TABLE_KEYS and "load" in methods:
            found[name] = Builder(name, fn.lineno, "table-file", params)
    changed = True
    while changed:  # functions that call a builder and return what it built are dispatchers
        changed = False
        for name, fn in fns.items():
            calls = _called_names(fn) & set(found) - {name}
            if name in found:
                found[name].calls |= calls
            elif calls and any(isinstance(n, ast.Return) and n.value is not None for n in astmemo.walk(fn)) \
                    and "lut" in name.lower():
                params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]
                found[name] = Builder(name, fn.lineno, "dispatcher", params, calls)
                changed = True
    return sorted(found.values(), key=lambda b: b.line)


def roots(found: list[Builder]) -> list[Builder]:
    """The builders no other builder calls: the ones the script itself uses."""
    called = set().union(*(b.calls for b in found)) if found else set()
    return [b for b in found if b.name not in called]


# --- extraction -----------------------------------------------------------------------------------


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in astmemo.walk(t) if isinstance(n, ast.Name)}
    return set()


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in astmemo.walk(node) if isinstance(n, ast.Name)}


def extract(source: str, function: str) -> str:
    """``function`` and the top-level statements it needs, at their original line numbers."""
    tree = ast.parse(source)
    by_name: dict[str, list[ast.stmt]] = {}
    for stmt in tree.body:
        for name in _bound_names(stmt):
            by_name.setdefault(name, []).append(stmt)
    if function not in by_name:
        raise KeyError(function)
    keep: set[int] = set()
    todo = list(by_name[function])
    while todo:
        stmt = todo.pop()
        if id(stmt) in keep:
            continue
        keep.add(id(stmt))
        for name in _used_names(stmt):
            todo.extend(s for s in by_name.get(name, []) if id(s) not in keep)
    lines = source.splitlines()
    out: list[str] = []
    for stmt in tree.body:
        if id(stmt) in keep or (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
            start = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
            out.extend([""] * (start - 1 - len(out)))
            out.extend(lines[start - 1: stmt.end_lineno])
    return "\n".join(out) + "\n"


# --- what the script declares -----------------------------------------------------------------------


def env_default(tree: ast.Module, name: str) -> str | None:
    """The literal default of ``os.environ.get(NAME, default)`` anywhere in the script."""
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value == name and ast.unparse(node.func) in ("os.environ.get", "os.getenv", "environ.get"):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                return str(node.args[1].value)
    return None


def mentions_transform(source: str) -> bool:
    """The script names a reversible text transform applied before tokenizing (CaseOps / lossless caps)."""
    return bool(re.search(r"caseops|lossless_caps", source, re.IGNORECASE))


# --- the bpb denominator -----------------------------------------------------------------------------

_LN2_LIKE = (math.log(2), 1 / math.log(2), 1.0, 8.0)


def _numeric_constants(scope: ast.AST) -> dict[str, float]:
    """Names bound exactly once in ``scope``, to a number literal (accumulators are not constants)."""
    literal: dict[str, float] = {}
    bindings: dict[str, int] = {}
    for node in astmemo.walk(scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bindings[node.id] = bindings.get(node.id, 0) + 1
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, (int, float)) \
                and not isinstance(node.value.value, bool):
            literal[node.targets[0].id] = float(node.value.value)
    return {k: v for k, v in literal.items() if bindings.get(k) == 1}


def _bpb_assignments(fn: ast.AST) -> list[ast.stmt]:
    found = []
    for node in astmemo.walk(fn):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any("bpb" in ast.unparse(t).lower() for t in targets) and \
                    any(isinstance(x, ast.BinOp) and isinstance(x.op, ast.Div) for x in astmemo.walk(node.value)):
                found.append(node)
    return found


def _divisors(expr: ast.AST) -> list[ast.AST]:
    return [x.right for x in astmemo.walk(expr) if isinstance(x, ast.BinOp) and isinstance(x.op, ast.Div)]


def denominator_findings(tree: ast.Module, transformed: bool) -> tuple[list[Finding], list[str]]:
    """(findings, notes): bpb computed from a fixed constant, or from transformed-piece bytes.

    With a transformed tokenizer, every function that computes a bpb from a per-token byte
    table must also take bytes from the raw-byte sidecar (the merged CaseOps records do:
    ``if caseops_enabled and val_bytes is not None``); helpers that receive the byte count
    as an argument are judged through their callers.
    """
    findings: list[Finding] = []
    notes: list[str] = []
    module_consts = _numeric_constants(ast.Module(body=[s for s in tree.body if isinstance(s, ast.Assign)],
                                                  type_ignores=[]))
    fns = [n for n in astmemo.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    sidecar_names = set()
    for node in astmemo.walk(tree):  # what a sidecar loader's result is stored as
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                _SIDECAR_NAME.search(ast.unparse(node.value.func)):
            for t in node.targets:
                sidecar_names.add(ast.unparse(t).split(".")[-1])
    for fn in fns:
        consts = {**module_consts, **_numeric_constants(fn)}
        assigns = _bpb_assignments(fn)
        for node in assigns:
            for div in _divisors(node.value):
                name = ast.unparse(div)
                value = consts.get(name) if isinstance(div, ast.Name) else \
                    float(div.value) if isinstance(div, ast.Constant) and isinstance(div.value, (int, float)) else None
                if value is None or any(abs(value - c) < 1e-3 for c in _LN2_LIKE):
                    continue
                if isinstance(div, ast.Constant) or "byte" in name.lower():
                    findings.append(Finding("fixed-bytes-per-token", node.lineno, fn.name,
                                            f"{fn.name}: the bpb divides by a fixed bytes-per-token constant "
                                            f"{name} = {value:g}, not by the bytes of the scored text"))
        if not transformed or not assigns:
            continue
        names = {n.attr for n in astmemo.walk(fn) if isinstance(n, ast.Attribute)} | \
            {n.id for n in astmemo.walk(fn) if isinstance(n, ast.Name)} | {a.arg for a in fn.args.args}
        uses_table = any(_TABLE_NAME.search(n) for n in names)
        uses_sidecar = bool(names & sidecar_names) or any(_SIDECAR_NAME.search(n) for n in names)
        if uses_table and not uses_sidecar:
            findings.append(Finding("transformed-bytes", min(a.lineno for a in assigns), fn.name,
                                    f"{fn.name}: the bpb takes its bytes from a per-token table of the transformed "
                                    f"pieces, with no raw-byte sidecar (divides by transformed bytes)"))
        elif uses_sidecar:
            notes.append(f"{fn.name} (line {fn.lineno}) takes its bytes from the raw-byte sidecar")
    return findings, notes
