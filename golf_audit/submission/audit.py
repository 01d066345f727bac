"""Audit a submission's own script: static checks, then flip tests on each of its eval functions.

Pipeline: load the source statically (wrappers peeled, ``exec(open(...).read())`` followed);
read it with ast (env vars, model build, eval functions, inline eval blocks); run the static
leak-pattern checks; start one sandboxed child; for each eval function, accept the NLL capture
only after its self-checks (rebuilt bpb equals the function's, every row matched, a positive
control flip moves later positions of its window), then run the causality engine's flip tests.

The script's verdict: ``fail`` if any dynamic test or any static leak pattern failed; else
``error`` if any eval function could not be audited (never read as pass); else ``pass``.
The report says which evidence decided.
"""

from __future__ import annotations

import ast
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..causality import DEFAULT_TOLERANCE
from ..errors import BadInput, CannotConclude
from ..findings import CheckResult, Status, worst
from . import analyze
from .adapter import AdapterFile, load_adapter
from .plan import make_plan, plan_elsewhere
from .runner import DEFAULT_MEMORY_BYTES, ChildFailed, ChildProcess

if TYPE_CHECKING:  # torch loads when a script is run, not when its source is only read (static checks)
    import torch

    from ..causality import CausalityResult
    from .script_source import ScriptSource

# Long enough for 3 batches of 32 sliding windows (stride 16, seq 64) and 3 TTT chunks of 512.
DEFAULT_STREAM_TOKENS = 1537
ROW_LEN = int(analyze.TINY_VALUES["EVAL_SEQ_LEN"])


@dataclass
class FunctionVerdict:
    """The dynamic verdict on one eval function (or inline block) of the script."""

    name: str
    line: int
    status: Status
    summary: str
    kind: str = "function"  # "function" | "inline"
    channels: list[str] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)  # scored-set rule, rebuilt vs returned bpb
    positive_control: dict[str, Any] = field(default_factory=dict)
    causality: CausalityResult | None = None
    child_tail: str = ""  # last stderr lines of the child when it failed
    seconds: float = 0.0


@dataclass
class SubmissionAudit:
    path: str
    status: Status
    summary: str
    decided_by: str  # "dynamic", "static", "dynamic+static", "error"
    functions: list[FunctionVerdict]
    static: list[CheckResult]
    layers: int = 0  # self-extracting layers peeled
    followed: list[str] = field(default_factory=list)  # files reached through exec(open(...).read())
    env: dict[str, str] = field(default_factory=dict)  # tiny configuration given to the script
    stream_tokens: int = 0
    tolerance: float = DEFAULT_TOLERANCE
    seconds: float = 0.0
    isolation: str = ""  # the sandbox level the child ran under ("" when no child was started)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # ChildProcess.attempts()


def display_name(target: analyze.EvalTarget) -> str:
    """How the report names an eval target: the function, or where the inline block sits."""
    if target.adapter:
        return "adapter evaluate()"
    return f"inline block main:{target.line}" if target.define or target.name.startswith("main:") else target.name


def resolve_script(path: str | Path) -> Path:
    """A script path, or a records folder holding ``train_gpt.py``."""
    path = Path(path)
    if path.is_dir():
        path = path / "train_gpt.py"
    if not path.is_file():
        raise BadInput(f"{path}: no such script")
    return path


def load_effective(path: Path) -> tuple[str, int, list[str], tuple[int, int] | None]:
    """(source to run, wrapper layers, files followed, min_python) without executing anything."""
    from ..source import load_source

    loaded = load_source(path)
    text, followed = loaded.effective, []
    for _ in range(4):  # exec(open("x.py").read()) chains
        if loaded.min_python is not None:
            break
        target = _exec_open_target(text)
        if target is None:
            break
        nxt = (path.parent / target).resolve()
        if not nxt.is_file():
            raise BadInput(f"{path}: exec(open({target!r}).read()) names a file that does not exist")
        loaded = load_source(nxt)
        text = loaded.effective
        followed.append(str(nxt))
    return text, loaded.layers, followed, loaded.min_python


def _exec_open_target(text: str) -> str | None:
    """The literal file name of a top-level ``exec(open(NAME).read())`` in a script that defines nothing."""
    tree = ast.parse(text)
    if any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exec" and node.args:
            inner = node.args[0]
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "read":
                opener = inner.func.value
                if isinstance(opener, ast.Call) and getattr(opener.func, "id", None) == "open" and opener.args \
                        and isinstance(opener.args[0], ast.Constant) and isinstance(opener.args[0].value, str):
                    return opener.args[0].value
    return None


def audit_stream(vocab_size: int, length: int, seed: int) -> torch.Tensor:
    """Random non-control tokens: every 4-gram is unique, so captured rows map back unambiguously."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(4, vocab_size, (length,), generator=gen, dtype=torch.int64)


def positive_control(source: ScriptSource, tokens: torch.Tensor, base, tolerance: float) -> dict[str, Any]:
    """Flip one token mid-stream: the later positions of its own row must move, or the capture is blind."""
    units = source.scoring_units(base.nll.size)
    scored = np.flatnonzero(base.count > 0)
    mid = scored[scored.size // 2:]
    flip = next((int(f) for f in mid if f + 1 < units.size and units[f + 1] == units[f] and base.count[f + 1] > 0), None)
    if flip is None:
        return {"passed": False, "reason": "no scored target with a scored successor in the same row"}
    flipped = tokens.clone()
    flipped[flip + 1] = 4 + (int(tokens[flip + 1]) - 4 + 1) % (source.vocab_size - 4)
    after = source.run(flipped)
    later = np.arange(flip + 1, units.size)
    later = later[(units[later] == units[flip]) & (base.count[later] > 0)]
    delta = np.abs(after.nll[later] - base.nll[later])
    moved = int(np.sum(delta > tolerance))
    return {"passed": moved > 0, "flip": flip, "later_positions": int(later.size), "moved": moved,
            "max_abs_delta": float(np.nanmax(delta)) if delta.size else 0.0,
            "reason": "" if moved else "flipping a token left every later position of its window unchanged"}


def audit_script(path: str | Path, *, functions: list[str] | None = None, inline_selector: str | None = None,
                 python: str | None = None, flips: int = 64, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE,
                 env: dict[str, str] | None = None, stream_tokens: int = DEFAULT_STREAM_TOKENS,
                 setup_timeout_s: float = 120.0, run_timeout_s: float = 60.0,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, adapter: str | Path | None = None,
                 progress: Callable[[str], None] | None = None, unsafe_no_sandbox: bool = False) -> SubmissionAudit:
    """Audit one script (or records folder); CannotConclude when it cannot even be read."""
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    script = resolve_script(path)
    text, layers, followed, min_python = load_effective(script)
    if min_python is not None and not python:
        raise CannotConclude(f"{script}: needs Python ≥ {min_python[0]}.{min_python[1]} to parse "
                             f"(this is {sys.version_info[0]}.{sys.version_info[1]})"
                             + "; pass --python PATH to an interpreter that can")
    if min_python is not None:
        try:
            the_plan = plan_elsewhere(python, text, str(script), functions, inline_selector, env)
        except RuntimeError as exc:
            raise CannotConclude(str(exc)) from None
    else:
        the_plan = make_plan(text, str(script), functions, inline_selector, env)
    adapter_file = load_adapter(adapter) if adapter is not None else None
    sandbox_run: dict[str, Any] = {"unsafe": unsafe_no_sandbox}  # _dynamic adds "child"
    if adapter_file is not None:
        the_plan.targets = [analyze.EvalTarget("adapter", 0, {}, adapter=True)]
        the_plan.build, the_plan.build_error = "", ""
        the_plan.tiny_env.update(adapter_file.env)
        the_plan.tiny_env.update(env or {})
    targets = the_plan.targets
    if functions and not any(t.name in functions for t in targets):
        raise BadInput(f"no eval function named {', '.join(functions)} in {script}")
    if not targets:
        verdicts = [FunctionVerdict("<none>", 0, Status.ERROR, "no eval_val* function and no inline eval block "
                                    "found: pass --inline or write an adapter")]
    elif the_plan.build_error:
        verdicts = [FunctionVerdict(t.name, t.line, Status.ERROR, f"cannot build the model: {the_plan.build_error}")
                    for t in targets]
    else:
        verdicts = _dynamic(script, text, the_plan.build, targets, the_plan.tiny_env, python, flips, seed, tolerance,
                            stream_tokens, setup_timeout_s, run_timeout_s, memory_bytes, say, adapter_file,
                            sandbox_run)
    static_results = the_plan.static
    child_env = the_plan.tiny_env
    audit = _combine(str(script), verdicts, static_results, layers, followed, child_env, stream_tokens, tolerance,
                     time.perf_counter() - started)
    if "child" in sandbox_run:  # closed by now: its attempts are complete
        audit.isolation, audit.attempts = sandbox_run["child"].isolation, sandbox_run["child"].attempts()
    return audit


def _dynamic(script: Path, text: str, build: str, targets: list[analyze.EvalTarget], child_env: dict[str, str],
             python: str | None, flips: int, seed: int, tolerance: float, stream_tokens: int, setup_timeout_s: float,
             run_timeout_s: float, memory_bytes: int, say: Callable[[str], None],
             adapter_file: AdapterFile | None = None, sandbox_run: dict[str, Any] | None = None) -> list[FunctionVerdict]:
    verdicts = [FunctionVerdict(display_name(t), t.line, Status.ERROR, f"cannot call it: {t.error}",
                                kind="inline" if t.define else "function") for t in targets if t.error]
    runnable = [t for t in targets if not t.error]
    if not runnable:
        return verdicts
    say(f"starting the sandboxed child for {script.name}")
    run = sandbox_run if sandbox_run is not None else {}
    with ChildProcess(text, python=python, timeout_s=run_timeout_s, memory_bytes=memory_bytes, extra_env=child_env,
                      support_files=_siblings(script), unsafe_no_sandbox=run.get("unsafe", False)) as child:
        run["child"] = child
        setup = {"script": str(child.script), "build": build, "seed": seed, "row_len": ROW_LEN,
                 "targets": [{"name": t.name, "bindings": t.bindings, "prelude": t.prelude, "define": t.define,
                              "stride_exprs": t.stride_exprs, "adapter": t.adapter} for t in runnable]}
        if adapter_file is not None:
            setup.update(adapter_source=adapter_file.source, adapter_path=adapter_file.path)
        try:
            ready = child.request(setup, timeout_s=setup_timeout_s)
        except ChildFailed as exc:
            return verdicts + [FunctionVerdict(display_name(t), t.line, Status.ERROR, f"the script could not be loaded: {exc}",
                                               child_tail=exc.tail) for t in runnable]
        tokens = audit_stream(int(ready["vocab_size"]), stream_tokens, seed)
        for t in runnable:
            say(f"auditing {t.name}")
            verdicts.append(_audit_target(child, t, int(ready["vocab_size"]), tokens, flips, seed, tolerance))
            if child.proc.poll() is not None:  # it died or was killed: the rest cannot run in it
                for rest in runnable[runnable.index(t) + 1:]:
                    verdicts.append(FunctionVerdict(display_name(rest), rest.line, Status.ERROR,
                                                    "not run: the child died on an earlier function"))
                break
    return verdicts


def _siblings(script: Path) -> dict[str, bytes]:
    """Local files the script loads (helper modules, exec'd files) travel with it, read-only."""
    from ..source import code_dependencies

    try:
        deps = code_dependencies(script)
    except Exception:  # noqa: BLE001 - missing helpers surface as the child's own error
        return {}
    files: dict[str, bytes] = {}
    for dep in deps:
        if dep.how == "entry" or not dep.path.is_file():
            continue
        try:
            rel = dep.path.resolve().relative_to(script.parent.resolve())
        except ValueError:
            continue
        if rel.as_posix() != "train_gpt.py":
            files[rel.as_posix()] = dep.path.read_bytes()
    return files


def _audit_target(child: ChildProcess, target: analyze.EvalTarget, vocab: int, tokens: torch.Tensor, flips: int,
                  seed: int, tolerance: float) -> FunctionVerdict:
    started = time.perf_counter()
    kind = "adapter" if target.adapter else "inline" if target.define else "function"
    from ..causality import audit_source
    from .script_source import ScriptSource

    source = ScriptSource(child, target.name, vocab, display_name(target))
    verdict = FunctionVerdict(display_name(target), target.line, Status.ERROR, "", kind=kind)
    try:
        base = source.run(tokens)
        verdict.capture = dict(base.info)
        control = positive_control(source, tokens, base, tolerance)
    except ChildFailed as exc:
        verdict.summary = f"capture refused: {exc}"
        verdict.child_tail = exc.tail
        verdict.seconds = time.perf_counter() - started
        return verdict
    verdict.positive_control = control
    if not control["passed"]:
        verdict.summary = f"capture refused: positive control failed ({control['reason']})"
        verdict.seconds = time.perf_counter() - started
        return verdict
    result = audit_source(source, tokens, flips=flips, seed=seed, tolerance=tolerance, workers=1)
    verdict.causality = result
    verdict.status = result.status
    verdict.channels = list(result.channels)
    verdict.summary = result.summary
    if result.status is Status.ERROR and child.proc.poll() is not None:
        verdict.child_tail = child.tail()
    verdict.seconds = time.perf_counter() - started
    return verdict


def _combine(path: str, verdicts: list[FunctionVerdict], static_results: list[CheckResult], layers: int,
             followed: list[str], env: dict[str, str], stream_tokens: int, tolerance: float,
             seconds: float) -> SubmissionAudit:
    dyn = worst([v.status for v in verdicts])
    static_fail = [r for r in static_results if r.status is Status.FAIL]
    dyn_fail = [v for v in verdicts if v.status is Status.FAIL]
    if dyn_fail or static_fail:
        status = Status.FAIL
        decided = "dynamic+static" if dyn_fail and static_fail else "dynamic" if dyn_fail else "static"
        parts = [f"{v.name}: {', '.join(v.channels) or 'causality'} leak" for v in dyn_fail]
        parts += [f"{r.check_id} {r.title}" for r in static_fail]
        summary = "not causal: " + "; ".join(parts)
    elif dyn is Status.ERROR or dyn is Status.NOT_RUN:
        status, decided = Status.ERROR, "error"
        bad = [v for v in verdicts if v.status is not Status.PASS]
        summary = "cannot conclude: " + "; ".join(f"{v.name}: {v.summary}" for v in bad)
    else:
        status, decided = Status.PASS, "dynamic+static"
        summary = (f"causal: {len(verdicts)} eval function(s) passed the flip tests and no static leak pattern "
                   f"was found")
    return SubmissionAudit(path, status, summary, decided, verdicts, static_results, layers, followed, env,
                           stream_tokens, tolerance, seconds)
