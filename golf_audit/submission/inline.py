"""Eval blocks written inline in ``main()``, extracted by ast into callable functions.

Some submissions put their SLOT/TTT eval straight into ``main()`` under a flag, e.g.
``if args.slot_enabled: ...``. Candidates are found automatically: an ``if`` whose test reads
an eval flag (``*slot*``/``*ttt*``/``*ngram*`` …, ``*_enabled``) and whose body builds an
optimizer over validation data. ``--inline 'if args.slot_enabled'`` picks one by its test text.

The block becomes ``def __ga_inline_N(<free names>): <block>; return (loss, bpb)``: free
names are bound like eval-function parameters (model, val tokens, LUTs, args, or simple
assignments earlier in ``main``), and the returned pair is the last names assigned in the
block that look like a loss and a bpb.
"""

from __future__ import annotations

import ast

from .analyze import AnalysisError, EvalTarget, MainScope, bind_parameters, env_vars, hyperparameter_object

EVAL_FLAG_WORDS = ("slot", "ttt", "ngram", "cache", "eval")
OPTIMIZER_NAMES = ("SGD", "Adam", "AdamW", "Muon", "RMSprop", "Adagrad", "LBFGS")


def _flag_test(node: ast.If) -> bool:
    text = ast.unparse(node.test).lower()
    return any(w in text for w in EVAL_FLAG_WORDS)


def _builds_optimizer_over_val(block: list[ast.stmt]) -> bool:
    mod = ast.Module(body=block, type_ignores=[])
    optimizer = any(isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] in OPTIMIZER_NAMES
                    for n in ast.walk(mod))
    val = any(isinstance(n, ast.Name) and "val" in n.id.lower() for n in ast.walk(mod))
    return optimizer and val


def candidates(tree: ast.Module) -> list[ast.If]:
    """Flag-guarded ``if`` blocks of main() that optimize over validation tensors."""
    scope = MainScope(tree, "")
    if scope.main is None:
        return []
    return [n for n in ast.walk(scope.main) if isinstance(n, ast.If) and _flag_test(n)
            and _builds_optimizer_over_val(n.body)]


def _select(tree: ast.Module, selector: str | None) -> list[ast.If]:
    if selector is None:
        return candidates(tree)
    want = " ".join(selector.strip().rstrip(":").split())
    want = want[3:] if want.startswith("if ") else want
    scope = MainScope(tree, "")
    found = [n for n in ast.walk(scope.main) if isinstance(n, ast.If)
             and " ".join(ast.unparse(n.test).split()) == want] if scope.main else []
    if not found:
        raise AnalysisError(f"no 'if {want}:' block in main()")
    return found


def _return_names(block: list[ast.stmt]) -> tuple[str, str]:
    stores = [n for n in ast.walk(ast.Module(body=block, type_ignores=[]))
              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    assigned = [n.id for n in sorted(stores, key=lambda n: (n.lineno, n.col_offset))]  # source order
    loss = [n for n in assigned if "loss" in n.lower() and "bpb" not in n.lower()]
    bpb = [n for n in assigned if "bpb" in n.lower()]
    if not loss or not bpb:
        raise AnalysisError("the block assigns no loss/bpb pair to return")
    return loss[-1], bpb[-1]


def _free_names(block: list[ast.stmt], globals_: set[str]) -> list[str]:
    mod = ast.Module(body=block, type_ignores=[])
    stored = {n.id for n in ast.walk(mod) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    stored |= {n.arg for n in ast.walk(mod) if isinstance(n, ast.arg)}
    loads = []
    for n in ast.walk(mod):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in globals_ and n.id not in loads:
            loads.append(n.id)
    # A name read before the block assigns it is still free; approximate by "never stored".
    return [n for n in loads if n not in stored]


def inline_targets(tree: ast.Module, source: str, selector: str | None = None) -> list[EvalTarget]:
    """Each selected block as an EvalTarget whose ``define`` holds the extracted function."""
    scope = MainScope(tree, source)
    args_name = hyperparameter_object(tree)
    hparams = {v.attr for v in env_vars(tree)}
    out = []
    for k, node in enumerate(_select(tree, selector)):
        name = f"__ga_inline_{k}"
        label = f"main:{node.lineno} if {ast.unparse(node.test)}"
        try:
            loss, bpb = _return_names(node.body)
            free = _free_names(node.body, scope.globals)
            bindings, prelude = bind_parameters([(f, False) for f in free], scope, args_name, node.lineno, hparams)
        except AnalysisError as exc:
            out.append(EvalTarget(label, node.lineno, {}, error=str(exc)))
            continue
        body = ast.Module(body=node.body + [ast.parse(f"return ({loss}, {bpb})").body[0]], type_ignores=[])
        define = f"def {name}({', '.join(free)}):\n" + "\n".join("    " + line for line in ast.unparse(body).splitlines())
        strides = [f"{args_name}.{h}" for h in sorted(hparams) if "stride" in h]
        strides += [b for p, b in bindings.items() if "stride" in p.lower()]
        target = EvalTarget(name, node.lineno, bindings, prelude, define, strides)
        out.append(target)
    return out
