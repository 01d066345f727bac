"""Static (ast) reading of a submission script: what the child needs to run its eval.

Everything here works on source text and never executes it:
  * the environment variables its ``Hyperparameters`` class reads, with their defaults;
  * the tiny configuration to put in those variables;
  * the script's own ``GPT(...)`` construction in ``main()`` plus the simple assignments it
    depends on, as code the child can execute;
  * the ``eval_val*`` functions and a by-name binding of each argument to an expression.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

# Tiny model: small enough to run dozens of evals per second on one core (vocab 256 makes
# SLOT steps 3-4x cheaper than 1024), big enough that
# attention, GQA, partial RoPE and U-Net skips are all exercised.
TINY_VALUES: dict[str, str] = {
    "VOCAB_SIZE": "256", "NUM_LAYERS": "2", "MODEL_DIM": "64", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "MLP_MULT": "2",
    "TRAIN_SEQ_LEN": "64", "EVAL_SEQ_LEN": "64", "EVAL_STRIDE": "16", "ROPE_DIMS": "8",
    "BIGRAM_VOCAB_SIZE": "64", "BIGRAM_DIM": "16", "VE_DIM": "16", "VE_LAYERS": "1", "XSA_LAST_N": "2",
    "VAL_BATCH_SIZE": "512", "MTP_NUM_HEADS": "0", "SLOT_STEPS": "4", "TTT_EPOCHS": "1",
    "TTT_CHUNK_TOKENS": "512", "TTT_CHUNK_SIZE": "512", "TTT_BATCH_SEQS": "8", "NUM_LOOPS": "1",
    "TRAIN_BATCH_TOKENS": "512", "ITERATIONS": "1", "WARMUP_STEPS": "0", "VAL_LOSS_EVERY": "0",
}
# Eval features are switched on so the audit reaches the code the submission claims.
EVAL_FLAG_WORDS = ("SLOT", "TTT", "NGRAM", "CACHE")
CUDA_ONLY_WORDS = ("FUSED", "TRITON", "CUDA_GRAPH", "FA3")

SUBMISSION_NAMES = ("GPT",)
MODEL_PARAMS = ("model", "base_model", "eval_model", "gpt", "net", "m")
TOKEN_PARAMS = ("val_tokens", "tokens", "val_data", "val_ids")
LUT_PARAMS = {"base_bytes": "__ga_luts__[0]", "leading_space": "__ga_luts__[1]", "boundary": "__ga_luts__[2]"}
FIXED_PARAMS = {"rank": "0", "world_size": "1", "local_rank": "0", "grad_accum_steps": "1",
                "device": "__ga_device__", "master_process": "True", "distributed": "False"}


class AnalysisError(ValueError):
    """The script does not have the structure the audit needs (reported as an error verdict)."""


@dataclass
class EnvVar:
    name: str  # environment variable, e.g. "NUM_LAYERS"
    attr: str  # Hyperparameters attribute, e.g. "num_layers"
    default: str  # default as written in the source
    line: int


@dataclass
class EvalTarget:
    """One thing the child can call: a module-level eval function or an extracted inline block."""

    name: str
    line: int
    bindings: dict[str, str]  # parameter -> expression evaluated in the child's namespace
    prelude: str = ""  # statements (from main) that define names the bindings need
    define: str = ""  # source to exec first (inline blocks become functions)
    stride_exprs: list[str] = field(default_factory=list)  # candidate strides for scored-set inference
    error: str = ""  # why it cannot be called (reported as an error verdict)
    adapter: bool = False  # run through an adapter file's evaluate() instead


def env_vars(tree: ast.Module) -> list[EnvVar]:
    """Environment variables read inside ``class Hyperparameters`` (os.environ.get / getenv / [])."""
    out: list[EnvVar] = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and "hyperparam" in n.name.lower()):
        for stmt in cls.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            value = getattr(stmt, "value", None)
            if not targets or value is None or not isinstance(targets[0], ast.Name):
                continue
            for node in ast.walk(value):
                name, default = _env_read(node)
                if name:
                    out.append(EnvVar(name, targets[0].id, default, stmt.lineno))
                    break
    return out


def _env_read(node: ast.AST) -> tuple[str | None, str]:
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        f = ast.unparse(node.func)
        if f in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
            default = ast.unparse(node.args[1]) if len(node.args) > 1 else "None"
            return node.args[0].value, default
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value, "<required>"
    return None, ""


def tiny_env(variables: list[EnvVar], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the child: tiny shapes, eval features on, CUDA-only paths off."""
    env: dict[str, str] = {}
    for var in variables:
        upper = var.name.upper()
        if upper in TINY_VALUES:
            env[var.name] = TINY_VALUES[upper]
        elif upper.endswith("_ENABLED") and any(w in upper for w in CUDA_ONLY_WORDS):
            env[var.name] = "0"
        elif upper.endswith("_ENABLED") and any(w in upper for w in EVAL_FLAG_WORDS):
            env[var.name] = "1"
    env.update(overrides or {})
    return env


def find_function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def module_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (defs, classes, imports, assignments) plus builtins."""
    names = set(dir(builtins))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def loaded_names(node: ast.AST) -> set[str]:
    """Names read by an expression or statement, minus those bound inside it (comprehensions, lambdas)."""
    bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for n in ast.walk(node):
        if isinstance(n, ast.arg):
            bound.add(n.arg)
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


class MainScope:
    """Simple assignments in ``main()`` in source order, to resolve the names a call needs."""

    def __init__(self, tree: ast.Module, source: str) -> None:
        self.source = source
        self.globals = module_names(tree)
        self.main = find_function(tree, "main")
        self.assigns: list[ast.stmt] = []
        if self.main is not None:
            for stmt in ast.walk(self.main):
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt is not self.main:
                    self.assigns.append(stmt)
        self.assigns.sort(key=lambda s: s.lineno)

    def _defining(self, name: str, before: int) -> ast.stmt | None:
        found = None
        for stmt in self.assigns:
            if stmt.lineno >= before:
                break
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                found = stmt
        return found

    def can_resolve(self, name: str, before: int) -> bool:
        return name in self.globals or self._defining(name, before) is not None

    def prelude(self, names: set[str], before: int) -> str:
        """Source of the assignments (transitively) needed to define ``names``; AnalysisError if one is unknown."""
        needed: dict[int, ast.stmt] = {}
        todo = sorted(names)
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen or name in self.globals:
                continue
            seen.add(name)
            stmt = self._defining(name, before)
            if stmt is None:
                raise AnalysisError(f"cannot resolve {name!r} (not a simple assignment in main before line {before})")
            needed[id(stmt)] = stmt
            todo.extend(loaded_names(stmt.value) if stmt.value is not None else ())
            before = min(before, stmt.lineno)
        ordered = sorted(needed.values(), key=lambda s: s.lineno)
        return "\n".join(ast.unparse(s) for s in ordered)


def model_build(tree: ast.Module, source: str) -> tuple[str, int]:
    """Code that assigns the script's own model to ``__ga_model__`` (and ``args``), and its line."""
    scope = MainScope(tree, source)
    if scope.main is None:
        raise AnalysisError("no main() function: cannot find the script's GPT(...) construction")
    calls = [n for n in ast.walk(scope.main) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id in SUBMISSION_NAMES]
    if not calls:
        # Another class name: a module-level class constructed into a *model* variable of main().
        classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        for stmt in scope.assigns:
            names = [t.id for t in getattr(stmt, "targets", [getattr(stmt, "target", None)]) if isinstance(t, ast.Name)]
            inner = stmt.value
            while isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):  # X(...).to(device).bfloat16()
                inner = inner.func.value
            if any("model" in n.lower() for n in names) and isinstance(inner, ast.Call) \
                    and isinstance(inner.func, ast.Name) and inner.func.id in classes:
                calls.append(inner)
    if not calls:
        raise AnalysisError("main() never builds a model (no GPT(...) call): write an adapter file for this script")
    call = min(calls, key=lambda c: c.lineno)
    prelude = scope.prelude(loaded_names(call) | {"args"} & _names_assigned(scope), call.lineno)
    return f"{prelude}\n__ga_model__ = {ast.unparse(call)}\n", call.lineno


def _names_assigned(scope: MainScope) -> set[str]:
    return {n.id for s in scope.assigns for t in (s.targets if isinstance(s, ast.Assign) else [s.target])
            for n in ast.walk(t) if isinstance(n, ast.Name)}


def hyperparameter_object(tree: ast.Module) -> str:
    """Name main() gives the Hyperparameters instance (``args`` in the seed)."""
    main = find_function(tree, "main")
    for stmt in ast.walk(main) if main else ():
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name) \
                and "hyperparam" in stmt.value.func.id.lower() and isinstance(stmt.targets[0], ast.Name):
            return stmt.targets[0].id
    return "args"


def bind_parameters(params: list[tuple[str, bool]], scope: MainScope, args_name: str, before: int,
                    hparams: set[str]) -> tuple[dict[str, str], str]:
    """Bind each (name, has_default) parameter to an expression; returns (bindings, prelude)."""
    bindings: dict[str, str] = {}
    from_main: set[str] = set()
    for name, has_default in params:
        low = name.lower()
        if low in MODEL_PARAMS or low.endswith("_model"):
            bindings[name] = "__ga_model__"
        elif low in TOKEN_PARAMS or low == "val_tokens":
            bindings[name] = "__ga_tokens__"
        elif any(key in low for key in LUT_PARAMS):
            bindings[name] = next(v for k, v in LUT_PARAMS.items() if k in low)
        elif low in FIXED_PARAMS:
            bindings[name] = FIXED_PARAMS[low]
        elif low in ("args", "h", "hp", "hparams", "hyperparameters", args_name):
            bindings[name] = args_name
        elif low == "logits_fn":
            bindings[name] = "getattr(__ga_model__, 'forward_logits', __ga_model__)"
        elif low in ("log_fn", "log0", "log", "logger", "print_fn"):
            bindings[name] = "__ga_log__"
        elif low in ("stride", "eval_stride") and "eval_stride" in hparams:
            bindings[name] = f"{args_name}.eval_stride"
        elif low in ("seq_len", "eval_seq_len") and not has_default and "eval_seq_len" in hparams:
            bindings[name] = f"{args_name}.eval_seq_len"
        elif has_default:
            continue
        elif name in hparams:
            bindings[name] = f"{args_name}.{name}"
        elif scope.can_resolve(name, before):
            bindings[name] = name
            from_main.add(name)
        else:
            raise AnalysisError(f"cannot bind parameter {name!r}")
    needs_args = any(args_name in v for v in bindings.values())
    prelude = scope.prelude(from_main | ({args_name} if needs_args else set()), before) if (from_main or needs_args) else ""
    return bindings, prelude


def eval_targets(tree: ast.Module, source: str, names: list[str] | None = None) -> list[EvalTarget]:
    """The module-level ``eval_val*`` functions (or those named), each with its argument bindings."""
    scope = MainScope(tree, source)
    args_name = hyperparameter_object(tree)
    hparams = {v.attr for v in env_vars(tree)}
    before = scope.main.end_lineno + 1 if scope.main is not None and scope.main.end_lineno else 10**9
    out = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        if (names is None and not fn.name.startswith("eval_val")) or (names is not None and fn.name not in names):
            continue
        a = fn.args
        positional = a.posonlyargs + a.args
        defaults_from = len(positional) - len(a.defaults)
        params = [(p.arg, i >= defaults_from) for i, p in enumerate(positional)]
        params += [(p.arg, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
        try:
            bindings, prelude = bind_parameters(params, scope, args_name, before, hparams)
        except AnalysisError as exc:
            out.append(EvalTarget(fn.name, fn.lineno, {}, error=str(exc)))
            continue
        strides = [bindings[p] for p in bindings if "stride" in p.lower()]
        strides += [f"{args_name}.{h}" for h in sorted(hparams) if "stride" in h]
        out.append(EvalTarget(fn.name, fn.lineno, bindings, prelude, stride_exprs=strides))
    return out
