"""Static leak-pattern checks on a submission script's syntax tree (ast, never regex).

Each check has a stable id and reports file:line evidence. 001-005, 008 and 009 are known leak
patterns (DOMAIN.md §4): a ``fail`` from any of them fails the script even when no dynamic
test reached that code path. 006 and 007 are warnings.

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
GA-STATIC-008  A realized token's log-probability spread evenly over its bytes.
    A per-token log-probability divided by that token's byte length (``lp / piece_lens[tgt]``,
    usually repeated over the bytes) and exponentiated into a per-byte probability (a byte-level
    mixer): a probability for the realized byte only, not a distribution over the next byte.
    Fix: mix a full next-byte distribution fixed before the target is known.
GA-STATIC-009  A per-position prediction gated on the realized token.
    In a loop over the tokens, ``out[i]`` is written from the state before token i enters it
    (a prediction of token i), but only under a test that reads token i (a word-start or
    boundary class): whether position i is tilted depends on the target.
    Fix: decide the hint from the context alone.

Every check also runs on the local Python modules the script imports (an n-gram helper);
findings there name that file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable, Iterator

from ..findings import CheckResult, Evidence, Severity, Status
from .. import astmemo

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
    for node in astmemo.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _call_name(node: ast.Call) -> str:
    return astmemo.unparse(node.func).split(".")[-1]


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    return (n for n in astmemo.walk(node) if isinstance(n, ast.Call))


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
    """Nodes of ``fn`` without descending into nested function definitions (memoized in a scope)."""
    return astmemo.own_nodes(fn)


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
        for node in astmemo.walk(fn):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
                sub = node.targets[0]
                sl = _slice_parts(sub)
                if isinstance(sub.value, ast.Name) and sl is not None and isinstance(sl.lower, ast.Name):
                    masks[sub.value.id] = (node, sl.lower.id)
        if not masks:
            continue
        scoring_starts = set()
        for node in astmemo.walk(fn):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                    and node.value.id not in masks:
                sl = _slice_parts(node)
                if sl is not None and isinstance(sl.lower, ast.Name):
                    scoring_starts.add(sl.lower.id)
        losses = [n for n in astmemo.walk(fn) if isinstance(n, ast.Assign)
                  and any(isinstance(x, ast.Name) and x.id in masks for x in astmemo.walk(n.value))]
        trained = {t.id for n in losses for t in n.targets if isinstance(t, ast.Name)}
        backwarded = {astmemo.unparse(c.func.value) for c in _calls(fn) if _call_name(c) == "backward"
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


def module_constants(tree: ast.Module) -> dict[str, object]:
    """Module-level ``_B = True`` style constants (minified scripts alias literals this way)."""
    out: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value
    return out


def _is_true(node: ast.AST, consts: dict[str, object]) -> bool:
    return (isinstance(node, ast.Constant) and node.value is True) or (
        isinstance(node, ast.Name) and consts.get(node.id) is True)


def find_shared_delta(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    consts = module_constants(tree)
    out = []
    for fn in _functions(tree):
        if not _has_optimizer(fn):
            continue
        optimized = set()
        for c in _calls(fn):
            if _call_name(c) in OPTIMIZER_NAMES and c.args:
                optimized |= {n.id for n in astmemo.walk(c.args[0]) if isinstance(n, ast.Name)}
        for node in astmemo.walk(fn):
            if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
                continue
            calls = [c for c in _calls(node.value) if _call_name(c) in TENSOR_FACTORIES and _leading_one(c)]
            trainable = any(k.arg == "requires_grad" and _is_true(k.value, consts)
                            for c in calls for k in c.keywords) or "Parameter" in astmemo.unparse(node.value)
            name = node.targets[0].id
            if calls and trainable and name in optimized:
                out.append((node, f"{name} has leading dimension 1: one {name} is optimized for every window "
                                  f"of the batch"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-003

TABLE_FILL_METHODS = ("build", "fill", "update", "add", "fit", "observe", "ingest", "count")
TABLE_CLASS_WORDS = ("cache", "ngram", "gram", "table", "counter", "ppm", "mixer")
RESET_METHODS = ("load_state_dict", "reset", "reset_parameters", "zero_", "copy_")


def _reads_val_outside_eval(node: ast.AST) -> bool:
    skip: set[int] = set()
    for c in _calls(node):
        if _call_name(c).startswith("eval"):
            skip |= {id(n) for n in astmemo.walk(c)}
    return any(isinstance(n, ast.Name) and _is_val_name(n.id) and id(n) not in skip for n in astmemo.walk(node)) or any(
        isinstance(n, ast.Attribute) and _is_val_name(n.attr) and id(n) not in skip for n in astmemo.walk(node))


def _scores(node: ast.AST, scorers: set[str]) -> bool:
    def scorer(name: str) -> bool:  # eval functions, the script's scoring functions
        return name.startswith("eval_val") or name in scorers

    for n in astmemo.walk(node):
        if isinstance(n, ast.Call) and (scorer(_call_name(n)) or "bpb" in _call_name(n).lower() or any(
                isinstance(a, ast.Name) and scorer(a.id) for a in n.args)):  # timed_eval("x", eval_val, ...)
            return True
        if isinstance(n, ast.With) and any(any(w in astmemo.unparse(i.context_expr) for w in SCORE_CONTEXTS) for i in n.items) \
                and any(_call_name(c) in ("cross_entropy", "nll_loss", "log_softmax") for c in _calls(n)):
            return True
    return False


@dataclass
class Adaptation:
    """A statement that adapts something on validation data, before it is scored."""

    node: ast.AST  # the offending expression (the call that trains or fills)
    adapted: set[str]  # names of what is adapted (optimizer targets, filled tables); empty: unknown
    kind: str  # "trains" | "fills"


def _optimizer_targets(fn: ast.AST, within: ast.AST) -> set[str]:
    """Names whose parameters the optimizers stepped inside ``within`` optimize (looked up in ``fn``)."""
    stepped = {astmemo.unparse(c.func.value) for c in _calls(within) if _call_name(c) == "step" and
               isinstance(c.func, ast.Attribute)}
    out: set[str] = set()
    for node in astmemo.walk(fn):
        value = node.value if isinstance(node, ast.Assign) else None
        if value is None or not isinstance(value, ast.Call) or _call_name(value) not in OPTIMIZER_NAMES:
            continue
        names = {astmemo.unparse(t) for t in node.targets}
        if stepped & names or not stepped:
            first = value.args[0] if value.args else next((k.value for k in value.keywords if k.arg == "params"), None)
            if first is not None:
                for n in astmemo.walk(first):
                    if isinstance(n, ast.Call) and _call_name(n) in ("parameters", "named_parameters") and \
                            isinstance(n.func, ast.Attribute):
                        out.add(astmemo.unparse(n.func.value))
                    elif isinstance(n, ast.Name) and n.id not in ("p", "n", "param"):
                        out.add(n.id)
    return _resolve_aliases(fn, out)


def _resolve_aliases(fn: ast.AST, names: set[str]) -> set[str]:
    """``params = list(model.parameters())``: the optimized object is ``model``, not ``params``."""
    out: set[str] = set()
    for _ in range(3):
        changed = False
        for name in list(names):
            source = next((n.value for n in astmemo.walk(fn) if isinstance(n, ast.Assign)
                           and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
                           and not isinstance(n.value, ast.Call) or (isinstance(n, ast.Assign) and
                           any(isinstance(t, ast.Name) and t.id == name for t in n.targets) and
                           isinstance(n.value, ast.Call) and _call_name(n.value) in ("list", "tuple", "chain"))), None)
            if source is None:
                out.add(name)
                continue
            roots = {astmemo.unparse(c.func.value) for c in _calls(source) if _call_name(c) in ("parameters",
                     "named_parameters") and isinstance(c.func, ast.Attribute)}
            roots |= {x.id for x in astmemo.walk(source) if isinstance(x, ast.Name) and x.id not in ("p", "n", "param",
                      "list", "tuple", "chain", name)}
            names.discard(name)
            names |= roots or {name}
            changed = True
        if not changed:
            break
    return out | names


def _adaptation(stmt: ast.stmt, fn: ast.AST, trainers: dict[str, ast.AST], tables: set[str],
                aliases: set[str]) -> Adaptation | None:
    """How ``stmt`` adapts on validation data (backward over val, a trainer call, a table filled from val)."""
    def val(node: ast.AST) -> bool:  # validation data, followed back through the names' last bindings
        return _depends_on(node, fn, _reads_val_outside_eval)

    for c in _calls(stmt):
        if isinstance(c.func, ast.Name) and c.func.id in trainers and any(
                val(a) for a in list(c.args) + [k.value for k in c.keywords]):
            model = {astmemo.unparse(a) for a in c.args if isinstance(a, ast.Name) and "model" in a.id.lower()}
            return Adaptation(c, model, "trains")
        if isinstance(c.func, ast.Attribute) and _call_name(c).lower().startswith(TABLE_FILL_METHODS) and \
                astmemo.unparse(c.func.value) in tables and any(val(a) for a in c.args):
            return Adaptation(c, {astmemo.unparse(c.func.value)}, "fills")
    for back in (c for c in _calls(stmt) if _call_name(c) == "backward" and isinstance(c.func, ast.Attribute)):
        if val(back.func.value):
            return Adaptation(back, _optimizer_targets(fn, stmt), "trains")
    return None


def _depends_on(expr: ast.AST, fn: ast.AST, pred: Callable[[ast.AST], bool], depth: int = 6,
                stop: Callable[[ast.AST], bool] | None = None) -> bool:
    """``expr`` is computed (through assignments in ``fn``'s own scope) from something ``pred`` accepts.

    Each name is followed to its last binding before the use, in (line, column) order: minified
    scripts put many statements on one line. An expression ``stop`` accepts is not followed further.
    """
    scope = [fn] + list(_own_nodes(fn))
    binds: dict[str, list[tuple[tuple[int, int], ast.AST]]] = {}
    for a in scope:
        if isinstance(a, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and a.value is not None:
            for t in (a.targets if isinstance(a, ast.Assign) else [a.target]):
                for x in astmemo.walk(t):
                    if isinstance(x, ast.Name):
                        binds.setdefault(x.id, []).append(((a.lineno, a.col_offset), a.value))
        elif isinstance(a, ast.For):
            for x in astmemo.walk(a.target):
                if isinstance(x, ast.Name):
                    binds.setdefault(x.id, []).append(((a.lineno, a.col_offset), a.iter))
    todo, seen = [expr], set()
    while todo and depth > 0:
        depth -= 1
        nxt = []
        for e in todo:
            if pred(e):
                return True
            if stop is not None and stop(e):
                continue
            at = (getattr(e, "lineno", 10**9), getattr(e, "col_offset", 0))
            for name in {n.id for n in astmemo.walk(e) if isinstance(n, ast.Name)} - seen:
                seen.add(name)
                before = [b for b in binds.get(name, []) if b[0] < at]  # none: a parameter, global or loop var
                if before:
                    nxt.append(max(before, key=lambda b: b[0])[1])
        todo = nxt
    return False


def _discarded(adapted: set[str], stmts: list[ast.stmt], scorer: ast.stmt, model_names: set[str]) -> ast.AST | None:
    """The statement that deletes, replaces or restores everything adapted before ``scorer``, if any."""
    if not adapted or adapted & model_names:
        return None
    left = set(adapted)
    found: ast.AST | None = None
    for stmt in stmts:
        for n in astmemo.walk(stmt):
            gone: set[str] = set()
            if isinstance(n, ast.Delete):
                gone = {astmemo.unparse(t) for t in n.targets} | {astmemo.unparse(e) for t in n.targets
                                                             if isinstance(t, ast.Tuple) for e in t.elts}
            elif isinstance(n, ast.Call) and _call_name(n) in RESET_METHODS and isinstance(n.func, ast.Attribute):
                gone = {astmemo.unparse(n.func.value)}
            if gone & left:
                left -= gone
                found = n
        if stmt is scorer:
            break
    return found if not left else None


def _table_objects(tree: ast.Module) -> set[str]:
    """Variables bound to an instance of a script class that looks like an n-gram/cache table."""
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)
               and any(w in n.name.lower() for w in TABLE_CLASS_WORDS)}
    return {astmemo.unparse(t) for n in astmemo.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
            and _call_name(n.value) in classes for t in n.targets}


def find_train_before_score(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    return _train_before_score(tree)[0]


def discarded_adaptations(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    """Adaptation on validation tokens that is thrown away before scoring (not a leak): the evidence."""
    return _train_before_score(tree)[1]


def _in_loop(holder: ast.AST, block_owner: ast.AST) -> bool:
    """``block_owner`` is a loop, or sits inside one, within ``holder``."""
    if isinstance(block_owner, (ast.For, ast.While)):
        return True
    for loop in astmemo.walk(holder):
        if isinstance(loop, (ast.For, ast.While)) and any(n is block_owner for n in astmemo.walk(loop)):
            return True
    return False


def _built_in(stmts: list[ast.stmt], upto: ast.AST) -> set[str]:
    """Names (re)built by a call in ``stmts`` before the node ``upto``."""
    out = set()
    for stmt in stmts:
        for n in astmemo.walk(stmt):
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and n.lineno <= getattr(upto, "lineno", 0):
                out |= {astmemo.unparse(t) for t in n.targets}
    return out


def _self_contained(fn: ast.FunctionDef) -> bool:
    """Everything ``fn`` optimizes is built inside it and not returned (a throw-away probe, a diagnostic)."""
    targets = _optimizer_targets(fn, fn)
    params = {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
    built = {astmemo.unparse(t) for n in astmemo.walk(fn) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
             for t in n.targets}
    returned = {x.id for r in astmemo.walk(fn) if isinstance(r, ast.Return) and r.value is not None
                for x in astmemo.walk(r.value) if isinstance(x, ast.Name)}
    roots = {t.split(".")[0].split("[")[0] for t in targets}
    return bool(targets) and not roots & params and targets <= built and not roots & returned


def _val_aliases(holder: ast.AST) -> set[str]:
    """Names in ``holder`` assigned from validation data (``tokens_np = val_tokens.numpy()``)."""
    out: set[str] = set()
    assigns = [n for n in _own_nodes(holder) if isinstance(n, ast.Assign)]
    for _ in range(3):
        for n in assigns:
            if _reads_val_outside_eval(n.value) or any(isinstance(x, ast.Name) and x.id in out for x in astmemo.walk(n.value)):
                out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _train_before_score(tree: ast.Module) -> tuple[list[tuple[ast.AST, str]], list[tuple[ast.AST, str]]]:
    local_defs = {f.name: f for f in _functions(tree)}
    trainers = {name: f for name, f in local_defs.items() if _has_backward(f) and _reads_val_outside_eval(f)}
    contained = {name for name, f in trainers.items() if isinstance(f, ast.FunctionDef) and _self_contained(f)}
    from .analyze import scoring_functions

    scorers = {name for name, f in local_defs.items() if name not in trainers and _scores(f, set())}
    scorers |= {f.name for f in scoring_functions(tree)} - set(trainers)
    tables = _table_objects(tree)
    models = {"model", "base_model", "eval_model", "ttt_model", "gpt"}
    found, discarded = [], []
    seen: set[int] = set()
    for holder in list(_functions(tree)) + [n for n in tree.body if isinstance(n, ast.If)]:
        aliases = _val_aliases(holder)
        for node in [holder] + list(_own_nodes(holder)):
            for field in ("body", "orelse"):
                block = getattr(node, field, None)
                if not isinstance(block, list) or (isinstance(node, ast.Module) and field == "body"):
                    continue
                stmts = [s for s in block if isinstance(s, ast.stmt) and not isinstance(s, (ast.FunctionDef, ast.ClassDef))]
                for i, stmt in enumerate(stmts):
                    if _scores(stmt, scorers):
                        continue
                    info = _adaptation(stmt, holder, trainers, tables, aliases)
                    if info is None or id(info.node) in seen:
                        continue
                    seen.add(id(info.node))
                    callee = _call_name(info.node) if isinstance(info.node, ast.Call) else ""
                    if callee in contained:
                        discarded.append((info.node, f"{callee}(…) trains only what it builds itself and does not "
                                                     f"return it (a throw-away probe): the model is not adapted"))
                        continue
                    later = [s for s in stmts[i + 1:] if _scores(s, scorers)]
                    if not later:
                        continue
                    gone = _discarded(info.adapted, stmts[i:], later[0], models)
                    if gone is None and info.kind == "trains" and info.adapted and _in_loop(holder, node) and \
                            info.adapted <= _built_in(stmts[:i + 1], info.node):
                        continue  # a per-window/per-chunk delta rebuilt each iteration: GA-STATIC-001/002, flip tests
                    what = ("fills " + ", ".join(sorted(info.adapted)) + " from validation tokens"
                            if info.kind == "fills" else "trains on validation tokens")
                    if gone is not None:
                        discarded.append((info.node, f"{what} (adapting {', '.join(sorted(info.adapted))}), then "
                                                     f"discards it at line {gone.lineno} ({astmemo.unparse(gone)[:60]}) "
                                                     f"before scoring at line {later[0].lineno}"))
                    else:
                        found.append((info.node, f"{what} here, and scores them afterwards (line {later[0].lineno})"))
                    break
    return found, discarded


# ----------------------------------------------------------------------------- GA-STATIC-004

NORMALIZERS = ("softmax", "log_softmax", "normalize")


def _is_target_name(name: str) -> bool:
    low = name.lower()
    return low in TARGET_NAMES or "target" in low or low.startswith(("y_", "tgt"))


def _root(node: ast.AST) -> ast.AST:
    """The container a (nested) subscript reads: ``self.full_counts`` of ``self.full_counts[o][k].astype(..)``."""
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("astype", "get",
                                                                                                       "float", "long"):
            node = node.func.value
        else:
            return node


def _root_name(node: ast.AST) -> str:
    root = _root(node)
    return root.id if isinstance(root, ast.Name) else root.attr if isinstance(root, ast.Attribute) else ""


def _normalized_tables(tree: ast.Module) -> set[str]:
    """Table names assigned from a normalized expression (softmax, or counts divided by their row sums)."""
    out = set()
    for node in astmemo.walk(tree):
        if not isinstance(node, (ast.Assign, ast.AugAssign)):
            continue
        value = node.value
        norm = any(isinstance(c, ast.Call) and _call_name(c) in NORMALIZERS for c in _calls(value))
        for d in astmemo.walk(value):
            if isinstance(d, ast.BinOp) and isinstance(d.op, ast.Div) and any(
                    isinstance(c, ast.Call) and _call_name(c) == "sum" for c in astmemo.walk(d.right)):
                norm = True
        if norm:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {_root_name(t) for t in targets}
    return out - {""}


def _return_taint(fn: ast.FunctionDef, tainted: set[str]) -> list[bool] | None:
    """Per position of a returned tuple (or [x] for a single value): a key computed from the target?

    A returned *score* (a loss from cross_entropy/log_softmax) is what scoring is for, not a key.
    """
    if any(isinstance(c, ast.Call) and _call_name(c) in ("cross_entropy", "log_softmax", "nll_loss")
           for c in astmemo.walk(fn)):
        return None
    for node in astmemo.walk(fn):
        if isinstance(node, ast.Return) and node.value is not None:
            elts = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            return [bool(_value_names(e) & tainted) for e in elts]
    return None


SIZE_ONLY = ("numel", "size", "shape", "dim", "ndim", "len", "__len__", "device", "dtype")


def _value_names(expr: ast.AST) -> set[str]:
    """Names whose *values* ``expr`` depends on (``x.numel()``, ``x.shape``, ``len(x)`` are sizes, not values)."""
    skip: set[int] = set()
    for n in astmemo.walk(expr):
        if isinstance(n, ast.Attribute) and n.attr in SIZE_ONLY:
            skip |= {id(m) for m in astmemo.walk(n.value)}
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len":
            skip |= {id(m) for a in n.args for m in astmemo.walk(a)}
    return {n.id for n in astmemo.walk(expr) if isinstance(n, ast.Name) and id(n) not in skip}


def _taint(fn: ast.AST, returns: dict[str, list[bool]]) -> set[str]:
    """Names in ``fn`` computed from the target being scored (assignments and script calls followed)."""
    tainted = {n.id for n in astmemo.walk(fn) if isinstance(n, ast.Name) and _is_target_name(n.id)}
    tainted |= {a.arg for a in astmemo.walk(fn) if isinstance(a, ast.arg) and _is_target_name(a.arg)}
    assigns = sorted((n for n in _own_nodes(fn) if isinstance(n, (ast.Assign, ast.AugAssign))), key=lambda n: n.lineno)
    for _ in range(4):  # key = f(tgt); h = hash(key); ...
        for node in assigns:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if isinstance(value, ast.Call) and _call_name(value) in returns and len(targets) == 1 \
                    and isinstance(targets[0], ast.Tuple):
                for elt, hot in zip(targets[0].elts, returns[_call_name(value)]):
                    if hot and isinstance(elt, ast.Name):
                        tainted.add(elt.id)
                continue
            hot = bool(_value_names(value) & tainted) or (
                isinstance(value, ast.Call) and returns.get(_call_name(value), [False])[0] and len(
                    returns.get(_call_name(value), [])) == 1)
            if hot:
                for t in targets:  # a name (or names unpacked) becomes target-derived; a subscript store does not
                    elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
                    tainted |= {e.id for e in elts if isinstance(e, ast.Name)}
    return tainted


def _reachable_from_scoring(tree: ast.Module) -> set[str] | None:
    """Names of the functions and methods the scoring functions call (transitively); None: no scoring function."""
    from .analyze import scoring_functions

    roots = {f.name for f in scoring_functions(tree)}
    if not roots:
        return None
    defs: dict[str, list[ast.AST]] = {}
    for f in _functions(tree):
        defs.setdefault(f.name, []).append(f)
    reach, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in reach:
            continue
        reach.add(name)
        for f in defs.get(name, []):
            todo.extend(_call_name(c) for c in _calls(f) if _call_name(c) in defs)
    return reach


def _one_per_line(found: list[tuple[ast.AST, str]]) -> list[tuple[ast.AST, str]]:
    """The first finding of each line (one expression, one finding)."""
    seen: set[int] = set()
    return [(node, msg) for node, msg in found if not (node.lineno in seen or seen.add(node.lineno))]


def find_target_keyed_table(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    fns = list(_functions(tree))
    returns: dict[str, list[bool]] = {}
    for _ in range(3):  # helpers that return target-derived keys (a hash of context and target)
        for fn in fns:
            rt = _return_taint(fn, _taint(fn, returns))
            if rt and any(rt):
                returns[fn.name] = rt
    normalized = _normalized_tables(tree)
    reach = _reachable_from_scoring(tree)
    out = []
    for fn in fns:
        if reach is not None and fn.name not in reach:
            continue  # training-time tables (loss weights) are not scores
        tainted = _taint(fn, returns)
        updates: set[int] = set()  # reads inside ``table[k] = table.get(k, 0) + 1``: the table's own update
        for node in _own_nodes(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                stores = {_root_name(t) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                          if isinstance(t, ast.Subscript)}
                for n in astmemo.walk(node.value):
                    if (isinstance(n, ast.Subscript) and _root_name(n) in stores) or (
                            isinstance(n, ast.Call) and _call_name(n) == "get" and isinstance(n.func, ast.Attribute)
                            and _root_name(n.func.value) in stores):
                        updates.add(id(n))
        for node in _own_nodes(fn):
            if id(node) in updates:
                continue
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                name = _root_name(node)
                if not name or not any(w in name.lower() for w in TABLE_WORDS) or name in normalized:
                    continue
                keyed = [x.id for x in astmemo.walk(node.slice) if isinstance(x, ast.Name) and x.id in tainted]
                if keyed:
                    out.append((node, f"{name} is looked up with key {astmemo.unparse(node.slice)[:60]!r}, computed from "
                                      f"the predicted token ({keyed[0]}): its value exists only for the realized target"))
            elif isinstance(node, ast.Call) and _call_name(node) == "get" and isinstance(node.func, ast.Attribute) \
                    and node.args:
                name = _root_name(node.func.value)
                keyed = [x.id for x in astmemo.walk(node.args[0]) if isinstance(x, ast.Name) and x.id in tainted]
                if name and any(w in name.lower() for w in TABLE_WORDS) and keyed and name not in normalized:
                    out.append((node, f"{name}.get({astmemo.unparse(node.args[0])[:40]}) reads a count for the predicted "
                                      f"token ({keyed[0]}) only: the blended probability exists only for the realized "
                                      f"target"))
    return _one_per_line(out)  # nested subscripts of one expression are one lookup


# ----------------------------------------------------------------------------- GA-STATIC-009

UPDATE_METHODS = ("append", "add", "update", "extend", "push", "observe", "insert", "setdefault", "appendleft")


def _loop_element(loop: ast.For) -> tuple[str, set[str]] | None:
    """(index, element names) of a loop over a token sequence.

    ``for i, tok in enumerate(seq)``, or ``for i in range(...)`` with ``tok = seq[i]`` (through
    ``int()``) among the body's statements.
    """
    t, it = loop.target, loop.iter
    if isinstance(it, ast.Call) and _call_name(it) == "enumerate" and isinstance(t, ast.Tuple) and len(t.elts) == 2 \
            and all(isinstance(e, ast.Name) for e in t.elts):
        return t.elts[0].id, {t.elts[1].id}  # type: ignore[union-attr]
    if isinstance(t, ast.Name) and isinstance(it, ast.Call) and _call_name(it) == "range":
        elems = set()
        for stmt in loop.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                v = stmt.value
                while isinstance(v, ast.Call) and len(v.args) == 1 and isinstance(v.func, ast.Name) \
                        and v.func.id in ("int", "bool"):
                    v = v.args[0]
                if isinstance(v, ast.Subscript) and isinstance(v.slice, ast.Name) and v.slice.id == t.id:
                    elems.add(stmt.targets[0].id)
        if elems:
            return t.id, elems
    return None


def _loop_taint(loop: ast.For, seeds: set[str], index: str) -> dict[str, int]:
    """Names computed from the current element, with the line from which they hold it.

    Flow-sensitive within one iteration: ``prev = tok`` at the end of the body does not make an
    earlier read of ``prev`` (the previous token) a read of the current one.
    """
    tainted = {name: 0 for name in seeds}
    for node in sorted((n for n in astmemo.own_nodes(loop) if isinstance(n, ast.Assign)), key=lambda n: n.lineno):
        if any(tainted.get(n, node.lineno) < node.lineno for n in _value_names(node.value)):
            for t in node.targets:
                elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
                for e in elts:
                    if isinstance(e, ast.Name) and e.id != index:
                        tainted.setdefault(e.id, node.lineno)
    return tainted


def _reads(expr: ast.AST, tainted: dict[str, int]) -> bool:
    """``expr`` reads a name that holds the current element at that point."""
    line = getattr(expr, "lineno", 0)
    return any(tainted.get(n, line) < line for n in _value_names(expr))


def _exits(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Continue, ast.Break, ast.Return, ast.Raise))


def _gated_writes(stmts: list[ast.stmt], index: str, tainted: dict[str, int], guard: ast.expr | None,
                  out: list[tuple[ast.Assign, str, ast.expr | None]]) -> None:
    """Each ``arr[index] = value`` with the innermost test reading the element that guards it."""
    for stmt in stmts:
        if isinstance(stmt, ast.If):
            inner = stmt.test if _reads(stmt.test, tainted) else guard
            _gated_writes(stmt.body, index, tainted, inner, out)
            _gated_writes(stmt.orelse, index, tainted, inner, out)
            if inner is not None and inner is not guard and _exits(stmt.body) and not stmt.orelse:
                guard = stmt.test  # the statements after `if <test>: continue` run only when it is false
        elif isinstance(stmt, (ast.For, ast.While, ast.With, ast.Try)):
            for block in ("body", "orelse", "finalbody"):
                _gated_writes(getattr(stmt, block, []) or [], index, tainted, guard, out)
            for handler in getattr(stmt, "handlers", []):
                _gated_writes(handler.body, index, tainted, guard, out)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Name) and t.slice.id == index:
                    out.append((stmt, _root_name(t), guard))


def _element_updates(loop: ast.For, tainted: dict[str, int], outputs: set[str]) -> list[ast.stmt]:
    """Statements that add the current element to a state: a store keyed or valued by it, or a
    method call that takes it (``counts[(ctx, tok)] = n``, ``self.words.append(tok)``)."""
    found = []
    for node in astmemo.own_nodes(loop):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, (ast.Subscript, ast.Attribute)) and _root_name(t) not in outputs and (
                        _reads(node.value, tainted) or (isinstance(t, ast.Subscript) and _reads(t.slice, tainted))):
                    found.append(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Attribute) and node.value.func.attr in UPDATE_METHODS \
                and any(_reads(a, tainted) for a in node.value.args):
            found.append(node)
    return found


def find_target_gated_prediction(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    """A per-position prediction (a hint, a top token) that exists only when the realized token
    is of some class: the distribution scoring position i depends on token i itself.

    In a loop over the token sequence, ``out[i]`` is written from the state *before* token i is
    added to it (so ``out[i]`` predicts token i), but only under a test that reads token i
    (``if starts_new_word[tok]: hint[i] = best[ctx]``). A loop that absorbs token i first and
    then writes ``out[i]`` (a prediction for token i+1) is not this pattern.
    """
    out: list[tuple[ast.AST, str]] = []
    for loop in (n for n in astmemo.walk(tree) if isinstance(n, ast.For)):
        found = _loop_element(loop)
        if found is None:
            continue
        index, elems = found
        tainted = _loop_taint(loop, elems, index)
        writes: list[tuple[ast.Assign, str, ast.expr | None]] = []
        _gated_writes(loop.body, index, tainted, None, writes)
        outputs = {name for _, name, _ in writes}
        updates = _element_updates(loop, tainted, outputs)
        elem = sorted(elems)[0]
        for stmt, name, guard in writes:
            if guard is None or _reads(stmt.value, tainted):
                continue  # written for every token, or from the token itself (a prediction for the next one)
            later = sorted((u for u in updates if u.lineno > stmt.lineno), key=lambda u: u.lineno)
            if not later or any(u.lineno < stmt.lineno for u in updates):
                continue  # the token entered the state first: out[i] is not its prediction
            out.append((guard, f"{name}[{index}], the prediction for the token at {index} ({elem}) made before "
                               f"that token enters the state (line {later[0].lineno}), is written or not according to "
                               f"`{astmemo.unparse(guard)[:60]}`, a test that reads that token: whether "
                               f"position {index} gets a prediction depends on the realized token"))
    return _one_per_line(out)


# ----------------------------------------------------------------------------- GA-STATIC-008

LOGPROB_PARTS = frozenset({"lp", "lps", "logp", "logps", "logprob", "logprobs", "lprob", "lprobs", "nll", "nlls",
                           "loss", "losses"})
LOGPROB_CALLS = ("log_softmax", "cross_entropy", "nll_loss", "log_prob")
BYTE_LEN_WORDS = ("len", "byte")
REDUCTIONS = ("sum", "mean", "nansum", "item", "cumsum")
EXP_CALLS = ("exp", "exp2")


def _is_logprob(expr: ast.AST) -> bool:
    """``expr`` reads a log-probability or an NLL (``lp_np``, ``scored_nll``, ``log_softmax(...)``)."""
    for n in astmemo.walk(expr):
        if isinstance(n, ast.Name) and LOGPROB_PARTS & set(n.id.lower().split("_")):
            return True
        if isinstance(n, ast.Call) and _call_name(n) in LOGPROB_CALLS:
            return True
    return False


def _per_token_byte_len(expr: ast.AST, targets: set[str]) -> bool:
    """``expr`` is the byte length of each realized target: a byte/length table indexed by the target
    (``piece_lens[tgt]``, ``base_bytes_lut[y]``) or ``len`` of something computed from it."""
    for n in astmemo.walk(expr):
        if isinstance(n, ast.Subscript) and any(w in _root_name(n).lower() for w in BYTE_LEN_WORDS) \
                and _value_names(n.slice) & targets:
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "len" and n.args \
                and {x.id for x in astmemo.walk(n.args[0]) if isinstance(x, ast.Name)} & targets:
            return True
    return False


def _reduced(expr: ast.AST) -> bool:
    """A sum/mean over tokens: a total byte count divides a total loss (ordinary bpb), not one token's."""
    return any(_call_name(c) in REDUCTIONS for c in _calls(expr))


def _divisions(fn: ast.AST) -> Iterator[tuple[ast.AST, ast.AST, ast.AST]]:
    """(node, numerator, denominator) of every division in ``fn``'s own scope (``a / b``, ``np.divide(a, b)``)."""
    for n in _own_nodes(fn):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
            yield n, n.left, n.right
        elif isinstance(n, ast.Call) and _call_name(n) in ("divide", "true_divide", "div") and len(n.args) == 2:
            yield n, n.args[0], n.args[1]


def _exponentials(fn: ast.AST) -> Iterator[tuple[ast.AST, ast.AST]]:
    """(node, exponent) of every exponentiation in ``fn``: ``exp(x)``, ``x.exp()``, ``2 ** x``."""
    for n in _own_nodes(fn):
        if isinstance(n, ast.Call) and _call_name(n) in EXP_CALLS:
            if n.args:
                yield n, n.args[0]
            elif isinstance(n.func, ast.Attribute):
                yield n, n.func.value
        elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and isinstance(n.left, (ast.Constant, ast.Attribute)):
            yield n, n.right


def find_spread_token_logprob(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for fn in _functions(tree):
        exps = list(_exponentials(fn))
        if not exps:
            continue
        targets = _taint(fn, {})
        for div, num, den in _divisions(fn):
            if not (_depends_on(num, fn, _is_logprob) and _depends_on(
                    den, fn, lambda e: not _reduced(e) and _per_token_byte_len(e, targets), stop=_reduced)):
                continue
            used = next((node for node, arg in exps if _depends_on(arg, fn, lambda e: any(
                x is div for x in astmemo.walk(e)))), None)
            if used is None:
                continue
            parents = [p for p in _own_nodes(fn) if isinstance(p, ast.BinOp) and isinstance(p.op, (ast.Add, ast.Sub))
                       and any(x is used for x in astmemo.walk(p))]
            how = f"mixed into a probability at line {used.lineno}" if parents else \
                f"exponentiated at line {used.lineno}"
            out.append((div, f"{astmemo.unparse(div)[:60]!r} spreads the realized token's log-probability evenly over "
                             f"its bytes, {how}: a per-byte probability of the realized byte only, not a normalized "
                             f"distribution over the next byte"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-005


def find_val_in_training(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for c in _calls(tree):
        name = _call_name(c)
        if any(w in name.lower() for w in ("loader", "stream", "dataset")) and not name.lower().startswith("val"):
            for arg in c.args + [k.value for k in c.keywords]:
                text = astmemo.unparse(arg)
                if "val_files" in text or "fineweb_val" in text:
                    out.append((c, f"training data source {name}(…) reads validation data ({text})"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-006


def find_network_imports(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for node in astmemo.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            if name.split(".")[0] in NETWORK_MODULES:
                out.append((node, f"imports {name}"))
    for c in _calls(tree):
        if astmemo.unparse(c.func) in ("torch.hub.load", "torch.hub.download_url_to_file", "hf_hub_download"):
            out.append((c, f"calls {astmemo.unparse(c.func)}"))
    return out


# ----------------------------------------------------------------------------- GA-STATIC-007


def find_unused_env(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    from .analyze import env_vars

    variables = [v for v in env_vars(tree) if v.in_hparams and v.attr]
    if not variables:
        return []
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and "hyperparam" in n.name.lower()]
    used: set[str] = set()
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            used.add(node.attr)
        elif isinstance(node, ast.Call) and _call_name(node) in ("getattr", "hasattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant):
            used.add(str(node.args[1].value))
    for cls in classes:  # class attributes used by later class attributes (val_files from data_path)
        for stmt in cls.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                used |= {n.id for n in astmemo.walk(stmt.value) if isinstance(n, ast.Name)}
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
              "condition 2 (normalized distribution)", "score the target from a full distribution over the vocabulary "
              "fixed before the target is known (key tables on context only, renormalize the mixture)",
              find_target_keyed_table),
    CheckSpec("GA-STATIC-005", "validation data read during training", True,
              "no validation data during training", "train only on fineweb_train_* shards", find_val_in_training),
    CheckSpec("GA-STATIC-006", "network imports", False, "no network access", "remove the network code",
              find_network_imports),
    CheckSpec("GA-STATIC-007", "env hyperparameters defined but never used", False, "reproducibility",
              "remove the unused variables or wire them in", find_unused_env),
    CheckSpec("GA-STATIC-008", "token log-probability spread over its bytes", True,
              "condition 2 (normalized distribution)", "mix a full next-byte (or next-token) distribution fixed before "
              "the target is known (marginalize the model's token distribution over byte prefixes), not the realized "
              "token's log-probability divided by its byte length", find_spread_token_logprob),
    CheckSpec("GA-STATIC-009", "prediction gated on the realized token", True,
              "condition 2 (normalized distribution)", "decide whether (and which) hint applies at a position from "
              "the context alone, before the token there is known", find_target_gated_prediction),
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
            snippet = astmemo.unparse(node).splitlines()[0][:160] if isinstance(node, (ast.stmt, ast.expr)) else None
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


HELPER_SKIP = frozenset({"GA-STATIC-007"})  # whether an env variable is used is a fact across files


def helper_results(tree: ast.Module, path: str, off_note: str | None) -> list[CheckResult]:
    """The checks on a local module the script imports; ``off_note`` says why its findings do not
    count (every import of it sits in a branch the submitted run switches off)."""
    results = [r for r in run_all(tree, path) if r.check_id not in HELPER_SKIP]
    if off_note is None:
        return results
    out = []
    for r in results:
        if r.status is Status.FAIL:
            for e in r.evidence:
                e.message += f" — {off_note}"
            r = CheckResult(r.check_id, r.title, Status.WARN, f"only in code the submitted run does not load "
                            f"({off_note}): {r.evidence[0].message}", severity=Severity.WARNING, rule=r.rule,
                            remediation=r.remediation, evidence=r.evidence, data={**r.data, "off_in_submitted_run": True})
        out.append(r)
    return out


def merge(results: list[CheckResult], extra: list[CheckResult]) -> list[CheckResult]:
    """One result per check over the script and its helper modules (evidence in file order)."""
    by_id = {r.check_id: r for r in extra if r.evidence or r.status is Status.ERROR}
    out = []
    for r in results:
        more = by_id.pop(r.check_id, None)
        if more is None:
            out.append(r)
            continue
        if more.status is Status.ERROR or r.status is Status.ERROR:
            out.append(r if r.status is Status.ERROR else more)
            continue
        evidence = list(r.evidence) + list(more.evidence)
        lead = r if (r.status is Status.FAIL or more.status is not Status.FAIL) and r.evidence else more
        first = lead.evidence[0]
        status = Status.FAIL if Status.FAIL in (r.status, more.status) else Status.WARN
        out.append(CheckResult(r.check_id, r.title, status,
                               f"{len(evidence)} finding(s): {first.message} ({first.file} line {first.line})",
                               severity=lead.severity, rule=r.rule, remediation=lead.remediation, evidence=evidence,
                               data={**r.data, **more.data} if status is Status.WARN else dict(lead.data)))
    return out + list(by_id.values())


# ----------------------------------------------------------------------------- the submitted configuration


def _flag_of(expr: ast.AST, flags: dict[str, bool], aliases: dict[str, str]) -> bool | None:
    """The value of an ``if`` test made of flags (``args.slot_enabled``, an alias, not/and/or), else None."""
    if isinstance(expr, ast.Attribute) and expr.attr in flags:
        return flags[expr.attr]
    if isinstance(expr, ast.Name) and expr.id in aliases:
        return flags[aliases[expr.id]]
    if isinstance(expr, ast.Call) and _call_name(expr) == "getattr" and len(expr.args) >= 2 and \
            isinstance(expr.args[1], ast.Constant) and expr.args[1].value in flags:
        return flags[expr.args[1].value]
    if isinstance(expr, ast.Call) and _call_name(expr) == "bool" and expr.args:
        return _flag_of(expr.args[0], flags, aliases)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        inner = _flag_of(expr.operand, flags, aliases)
        return None if inner is None else not inner
    if isinstance(expr, ast.BoolOp):
        vals = [_flag_of(v, flags, aliases) for v in expr.values]
        if isinstance(expr.op, ast.And):
            return False if False in vals else (True if all(v is True for v in vals) else None)
        return True if True in vals else (False if all(v is False for v in vals) else None)
    return None


def _aliases(fn: ast.AST, flags: dict[str, bool]) -> dict[str, str]:
    """Local names bound to a flag (``use_slot = getattr(args, 'slot_enabled', False)``)."""
    out: dict[str, str] = {}
    for n in astmemo.walk(fn):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            v = n.value
            attr = v.attr if isinstance(v, ast.Attribute) else (
                v.args[1].value if isinstance(v, ast.Call) and _call_name(v) == "getattr" and len(v.args) >= 2
                and isinstance(v.args[1], ast.Constant) else None)
            if attr in flags:
                out[n.targets[0].id] = attr
    return out


def off_branch(tree: ast.Module, line: int, flags: dict[str, bool]) -> ast.If | None:
    """The ``if`` whose flags are off in the audited configuration and that holds ``line``, if any."""
    holders = [n for n in astmemo.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    fn = min((f for f in holders if f.lineno <= line <= (f.end_lineno or f.lineno)),
             key=lambda f: (f.end_lineno or f.lineno) - f.lineno, default=tree)
    aliases = _aliases(fn, flags)
    for node in astmemo.walk(fn):
        if not isinstance(node, ast.If) or not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        value = _flag_of(node.test, flags, aliases)
        if value is None:
            continue
        in_body = node.body and node.body[0].lineno <= line <= max(s.end_lineno or s.lineno for s in node.body)
        if (in_body and value is False) or (not in_body and node.orelse and value is True):
            return node
    return None


def configured(results: list[CheckResult], tree: ast.Module, flags: dict[str, bool], variables: list,
               submitted: dict[str, tuple[str, str]]) -> list[CheckResult]:
    """Leak findings inside branches the submitted run switches off become warnings, saying so.

    The code is still reported (it would leak with the flag on), but it is not what produced the
    score: a merged record's unused SLOT path does not fail it.
    """
    by_attr = {v.attr: v for v in variables if v.attr}
    out = []
    for r in results:
        if r.status is not Status.FAIL or not r.evidence:
            out.append(r)
            continue
        offs = [off_branch(tree, e.line or 0, flags) for e in r.evidence]
        if any(o is None for o in offs):
            out.append(r)
            continue
        notes = []
        for e, node in zip(r.evidence, offs):
            test = astmemo.unparse(node.test)[:60]
            fn_aliases = _aliases(next((f for f in astmemo.walk(tree) if isinstance(f, ast.FunctionDef)
                                        and f.lineno <= node.lineno <= (f.end_lineno or f.lineno)), tree), flags)
            names = [a for a in flags if a in test] + [fn_aliases[n.id] for n in astmemo.walk(node.test)
                                                       if isinstance(n, ast.Name) and n.id in fn_aliases]
            why = ", ".join(f"{by_attr[a].name}={'1' if flags[a] else '0'} "
                            f"({submitted[by_attr[a].name][1] if by_attr[a].name in submitted else 'the default'})"
                            for a in names if a in by_attr)
            e.message += f" — inside `if {test}` (line {node.lineno}), off in the submitted run: {why or 'flag off'}"
            notes.append(why)
        out.append(CheckResult(r.check_id, r.title, Status.WARN,
                               f"only in a branch the submitted run switches off ({notes[0]}): {r.evidence[0].message}",
                               severity=Severity.WARNING, rule=r.rule, remediation=r.remediation, evidence=r.evidence,
                               data={**r.data, "off_in_submitted_run": True}))
    return out
