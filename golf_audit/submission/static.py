"""Static leak-pattern checks on a submission script's syntax tree (ast, never regex).

Each check has a stable id and reports file:line evidence. The first five are known leak
patterns (DOMAIN.md §4): a ``fail`` from any of them fails the script even when no dynamic
test reached that code path. The last two are warnings.

GA-STATIC-001  Optimizer fed by a mask over scored positions.
    A tensor filled over a slice that starts where scoring starts (``mask[i, s:wlen] = 1``,
    with ``nll[i, s:wlen]`` scored) enters a loss that is back-propagated into an optimizer:
    the eval trains on the very targets it then scores (scored-mask SLOT).
    Fix: fit only on context positions ``[:s]``.
GA-STATIC-002  One delta/bias shared across the windows of a batch.
    A trainable tensor created with a leading dimension of 1 (``torch.zeros(1, 1, d,
    requires_grad=True)``) inside an eval that optimizes it over a batch of windows: each
    window's adaptation reads tokens that other windows of the batch score.
    Fix: one delta per window (leading dimension = batch size).
GA-STATIC-003  Adaptation on validation tokens before they are scored ("pre-quant TTT").
    In one block, a statement that back-propagates a loss over validation data (directly or
    through a local helper) comes before the statement that scores it.
    Fix: score each chunk first, then train on it (score-first TTT).
GA-STATIC-004  An n-gram or cache key that includes the predicted token.
    A lookup in a table/cache/n-gram/hash structure whose key is computed from the target
    being scored: the score then depends on that target.
    Fix: key only on context tokens; update the table after scoring.
GA-STATIC-005  Validation data read during training.
    A data loader built over the validation files, or validation tokens read by a training
    loop outside an eval call.
GA-STATIC-006  Network imports (warning): the challenge forbids network access at eval.
GA-STATIC-007  Environment hyperparameters defined but never used (warning): a knob that
    does nothing misleads readers of the launch command.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable, Iterator

from ..findings import CheckResult, Evidence, Severity, Status

OPTIMIZER_NAMES = frozenset({"SGD", "Adam", "AdamW", "Muon", "RMSprop", "Adagrad", "LBFGS", "NAdam", "RAdam"})
TARGET_NAMES = frozenset({"y", "ys", "tgt", "tgts", "target", "targets", "target_ids", "y_batch", "next_tok",
                          "next_token", "next_id", "next_ids", "labels", "label"})
TABLE_WORDS = ("gram", "cache", "table", "hash", "count", "bucket")
NETWORK_MODULES = frozenset({"socket", "urllib", "urllib3", "requests", "http", "httpx", "aiohttp", "ftplib",
                             "smtplib", "websocket", "websockets", "paramiko", "huggingface_hub", "wget", "boto3"})
TENSOR_FACTORIES = frozenset({"zeros", "ones", "empty", "randn", "rand", "full", "zeros_like", "tensor"})
SCORE_CONTEXTS = ("no_grad", "inference_mode")


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    title: str
    leak: bool  # a finding fails the script (else warns)
    rule: str
    remediation: str
    find: Callable[[ast.Module], list[tuple[ast.AST, str]]]


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _call_name(node: ast.Call) -> str:
    return ast.unparse(node.func).split(".")[-1]


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    return (n for n in ast.walk(node) if isinstance(n, ast.Call))


def _has_backward(node: ast.AST) -> bool:
    return any(_call_name(c) == "backward" for c in _calls(node))


def _has_optimizer(node: ast.AST) -> bool:
    return any(_call_name(c) in OPTIMIZER_NAMES for c in _calls(node))


VAL_DATA_WORDS = ("token", "data", "ids", "batch", "file", "loader", "stream", "seq", "chunk", "input")


def _is_val_name(name: str) -> bool:
    """Validation *data* (val_tokens, val_loader, ...), not validation metrics (val_loss, val_bpb)."""
    low = name.lower()
    return low in ("val", "validation") or (low.startswith(("val_", "validation_"))
                                            and any(w in low for w in VAL_DATA_WORDS))


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Nodes of ``fn`` without descending into nested function definitions."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


# ----------------------------------------------------------------------------- GA-STATIC-001


def _slice_parts(sub: ast.Subscript) -> ast.Slice | None:
    sl = sub.slice
    last = sl.elts[-1] if isinstance(sl, ast.Tuple) and sl.elts else sl
    return last if isinstance(last, ast.Slice) else None


def find_scored_mask(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for fn in _functions(tree):
        if not (_has_optimizer(fn) and _has_backward(fn)):
            continue
        masks: dict[str, tuple[ast.AST, str]] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
                sub = node.targets[0]
                sl = _slice_parts(sub)
                if isinstance(sub.value, ast.Name) and sl is not None and isinstance(sl.lower, ast.Name):
                    masks[sub.value.id] = (node, sl.lower.id)
        if not masks:
            continue
        scoring_starts = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                    and node.value.id not in masks:
                sl = _slice_parts(node)
                if sl is not None and isinstance(sl.lower, ast.Name):
                    scoring_starts.add(sl.lower.id)
        losses = [n for n in ast.walk(fn) if isinstance(n, ast.Assign)
                  and any(isinstance(x, ast.Name) and x.id in masks for x in ast.walk(n.value))]
        trained = {t.id for n in losses for t in n.targets if isinstance(t, ast.Name)}
        backwarded = {ast.unparse(c.func.value) for c in _calls(fn) if _call_name(c) == "backward"
                      and isinstance(c.func, ast.Attribute)}
        for name, (node, start) in masks.items():
            if start in scoring_starts and trained & backwarded:
                out.append((node, f"{name} is filled from {start} on, where scoring starts, and feeds the "
                                  f"back-propagated loss {sorted(trained & backwarded)[0]!r}"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-002


def _leading_one(call: ast.Call) -> bool:
    if not call.args:
        return False
    first = call.args[0]
    if isinstance(first, (ast.Tuple, ast.List)) and first.elts:
        first = first.elts[0]
    return isinstance(first, ast.Constant) and first.value == 1 and (len(call.args) >= 2 or isinstance(call.args[0], (ast.Tuple, ast.List)))


def find_shared_delta(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for fn in _functions(tree):
        if not _has_optimizer(fn):
            continue
        optimized = set()
        for c in _calls(fn):
            if _call_name(c) in OPTIMIZER_NAMES and c.args:
                optimized |= {n.id for n in ast.walk(c.args[0]) if isinstance(n, ast.Name)}
        for node in ast.walk(fn):
            if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
                continue
            calls = [c for c in _calls(node.value) if _call_name(c) in TENSOR_FACTORIES and _leading_one(c)]
            trainable = any(k.arg == "requires_grad" and getattr(k.value, "value", False) is True
                            for c in calls for k in c.keywords) or "Parameter" in ast.unparse(node.value)
            name = node.targets[0].id
            if calls and trainable and name in optimized:
                out.append((node, f"{name} has leading dimension 1: one {name} is optimized for every window "
                                  f"of the batch"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-003


def _reads_val_outside_eval(node: ast.AST) -> bool:
    skip: set[int] = set()
    for c in _calls(node):
        if _call_name(c).startswith("eval"):
            skip |= {id(n) for n in ast.walk(c)}
    return any(isinstance(n, ast.Name) and _is_val_name(n.id) and id(n) not in skip for n in ast.walk(node))


def _scores(node: ast.AST, scorers: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and (_call_name(n).startswith("eval_val") or _call_name(n) in scorers):
            return True
        if isinstance(n, ast.With) and any(any(w in ast.unparse(i.context_expr) for w in SCORE_CONTEXTS) for i in n.items) \
                and any(_call_name(c) in ("cross_entropy", "nll_loss", "log_softmax") for c in _calls(n)):
            return True
    return False


def find_train_before_score(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    local_defs = {f.name: f for f in _functions(tree)}
    trainers = {name for name, f in local_defs.items() if _has_backward(f) and _reads_val_outside_eval(f)}
    scorers = {name for name, f in local_defs.items() if name not in trainers and _scores(f, set())}

    def trains(stmt: ast.stmt) -> bool:
        if _has_backward(stmt) and _reads_val_outside_eval(stmt):
            return True
        return any(isinstance(c.func, ast.Name) and c.func.id in trainers for c in _calls(stmt))

    out = []
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            block = getattr(node, field, None)
            if not isinstance(block, list) or isinstance(node, ast.Module) and field == "body":
                continue
            stmts = [s for s in block if isinstance(s, ast.stmt) and not isinstance(s, (ast.FunctionDef, ast.ClassDef))]
            for i, stmt in enumerate(stmts):
                if trains(stmt) and not _scores(stmt, scorers) and any(_scores(s, scorers) for s in stmts[i + 1:]):
                    out.append((stmt, "trains on validation tokens here, and scores them afterwards in the same block"))
                    break
    return out


# ----------------------------------------------------------------------------- GA-STATIC-004


def find_target_keyed_table(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for fn in _functions(tree):
        tainted = set(TARGET_NAMES)
        assigns = sorted((n for n in _own_nodes(fn) if isinstance(n, ast.Assign)), key=lambda n: n.lineno)
        for _ in range(3):  # key = f(tgt); h = hash(key); ...
            for node in assigns:
                if any(isinstance(x, ast.Name) and x.id in tainted for x in ast.walk(node.value)):
                    tainted |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in _own_nodes(fn):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                    and any(w in node.value.id.lower() for w in TABLE_WORDS):
                keyed = [x.id for x in ast.walk(node.slice) if isinstance(x, ast.Name) and x.id in tainted]
                if keyed:
                    out.append((node, f"{node.value.id} is looked up with key {ast.unparse(node.slice)!r}, "
                                      f"computed from the predicted token"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-005


def find_val_in_training(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for c in _calls(tree):
        name = _call_name(c)
        if any(w in name.lower() for w in ("loader", "stream", "dataset")) and not name.lower().startswith("val"):
            for arg in c.args + [k.value for k in c.keywords]:
                text = ast.unparse(arg)
                if "val_files" in text or "fineweb_val" in text:
                    out.append((c, f"training data source {name}(…) reads validation data ({text})"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-006


def find_network_imports(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            if name.split(".")[0] in NETWORK_MODULES:
                out.append((node, f"imports {name}"))
    for c in _calls(tree):
        if ast.unparse(c.func) in ("torch.hub.load", "torch.hub.download_url_to_file", "hf_hub_download"):
            out.append((c, f"calls {ast.unparse(c.func)}"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-007


def find_unused_env(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    from .analyze import env_vars

    variables = env_vars(tree)
    if not variables:
        return []
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and "hyperparam" in n.name.lower()]
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            used.add(node.attr)
        elif isinstance(node, ast.Call) and _call_name(node) in ("getattr", "hasattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant):
            used.add(str(node.args[1].value))
    for cls in classes:  # class attributes used by later class attributes (val_files from data_path)
        for stmt in cls.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                used |= {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
    by_line = {stmt.lineno: stmt for cls in classes for stmt in cls.body}
    return [(by_line.get(v.line, tree), f"{v.name} (attribute {v.attr}) is read from the environment but never used")
            for v in variables if v.attr not in used]


CHECKS = [
    CheckSpec("GA-STATIC-001", "optimizer fed by a mask over scored positions", True,
              "condition 1 (causality), condition 3 (score before update)", "fit adaptation only on context positions",
              find_scored_mask),
    CheckSpec("GA-STATIC-002", "one delta/bias shared across the windows of a batch", True,
              "condition 1 (causality)", "give each window its own delta (leading dimension = batch size)",
              find_shared_delta),
    CheckSpec("GA-STATIC-003", "adaptation on validation tokens before they are scored", True,
              "condition 3 (score before update)", "score each chunk before training on it", find_train_before_score),
    CheckSpec("GA-STATIC-004", "n-gram/cache key includes the predicted token", True,
              "condition 1 (causality)", "key the table on context tokens only", find_target_keyed_table),
    CheckSpec("GA-STATIC-005", "validation data read during training", True,
              "no validation data during training", "train only on fineweb_train_* shards", find_val_in_training),
    CheckSpec("GA-STATIC-006", "network imports", False, "no network access", "remove the network code",
              find_network_imports),
    CheckSpec("GA-STATIC-007", "env hyperparameters defined but never used", False, "reproducibility",
              "remove the unused variables or wire them in", find_unused_env),
]


def run_all(tree: ast.Module, path: str, lines: list[str] | None = None) -> list[CheckResult]:
    """Every static check on one parsed script; a check that crashes is ``error``, never pass."""
    results = []
    for spec in CHECKS:
        try:
            found = spec.find(tree)
        except Exception as exc:  # noqa: BLE001 - a broken check must not read as a pass
            results.append(CheckResult(spec.check_id, spec.title, Status.ERROR, f"check crashed: {exc}",
                                       rule=spec.rule))
            continue
        seen: set[tuple[int, str]] = set()
        evidence = []
        for node, message in found:
            line = getattr(node, "lineno", None)
            if (line or 0, message) in seen:
                continue
            seen.add((line or 0, message))
            snippet = ast.unparse(node).splitlines()[0][:160] if isinstance(node, (ast.stmt, ast.expr)) else None
            evidence.append(Evidence(message, file=path, line=line, snippet=snippet))
        if evidence:
            status = Status.FAIL if spec.leak else Status.WARN
            summary = f"{len(evidence)} finding(s): {evidence[0].message} (line {evidence[0].line})"
        else:
            status, summary = Status.PASS, "pattern not found"
        results.append(CheckResult(spec.check_id, spec.title, status, summary,
                                   severity=Severity.CRITICAL if spec.leak else Severity.WARNING,
                                   rule=spec.rule, remediation=spec.remediation if evidence else "",
                                   evidence=evidence))
    return results
