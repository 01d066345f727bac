"""Audit a submission's own script: static checks, then flip tests on what its own entry point runs.

Pipeline: load the source statically (wrappers peeled, ``exec(open(...).read())`` followed,
PEP 701 f-strings downgraded for this Python); read it with ast (env vars, scoring functions,
flag-guarded branches); run the static leak-pattern checks; start one sandboxed child that runs
the script's own entry point at a tiny configuration on synthetic data, recording every call of
a scoring function (``runtime``). For each scoring function, its last recorded call is replayed:
the NLL capture is accepted only after its self-checks (rebuilt val_loss equals the function's,
a positive-control flip moves later positions of its window), then the causality engine's flip
tests run on it. A *pipeline* test (the whole entry point again on a flipped stream) runs when
validation data reaches code outside the scoring functions, or a scoring call adapted its model
in place before a later one scored. Coverage (GA-COVER) and the cross-document test (GA-DOC) run
on the reported (last) scoring call.

The script's verdict is per concern (causal, normalized, coverage, doc); the causality verdict is
``fail`` if a causal or normalization test or a static leak pattern failed, else ``error`` if an
eval could not be audited (never read as pass), else ``pass``. The report says which evidence
decided, which scoring functions never ran (``not exercised``) and which flag branches of the
ones that ran never ran.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..causality import DEFAULT_TOLERANCE
from ..errors import BadInput, CannotConclude
from ..findings import CheckResult, Evidence, Status, worst
from . import analyze, fakedata, inline, static
from . import twin as twin_mod
from .adapter import AdapterFile, load_adapter
from ..source import parse_shared
from .runner import DEFAULT_MEMORY_BYTES, ChildFailed, ChildProcess

if TYPE_CHECKING:  # torch loads when a script is run, not when its source is only read (static checks)
    import torch

    from ..causality import CausalityResult
    from .script_source import ScriptSource

# 24 sequences of 64 + 1: three full batches of 8 sequences; documents of 96-320 tokens.
DEFAULT_STREAM_TOKENS = 24 * analyze.TINY_SEQ + 1
ROW_LEN = analyze.TINY_SEQ
MIN_FLIPS = 8  # fewer flips than this is not a flip test
DEFAULT_BUDGET_S = 30.0  # seconds of replays for all flip tests together (the entry run is extra)
TIME_TARGET_S = 50.0  # one script's whole audit on 2 cores: the replay budget shrinks to keep it
MIN_REPLAY_S = 8.0
TWIN_WAIT_S = 10.0  # the least the audit waits for the twin's entry run once the first child's is done
HARDCODED_ENTRY_S = 45.0  # the entry run of a script whose sizes are module constants (it runs at full size)
TWIN_ENTRY_LIMIT_S = 20.0  # a twin whose entry run lasts longer is stopped (twin.Setup); the first child then
# runs its later scoring calls on two threads
DOC_RESERVE_S = 3.0  # the least kept for the document test (GA-DOC), which runs after the flip tests
PIPELINE_FLIPS = 4
# A submission runs in float32 and its rows are rebuilt in float64 from float32 logits: one
# float32 ulp of one logit (6e-8 relative: up to ~6e-7 nats at |logit| ~ 10) moves a row by
# up to that much without any dependence on the flipped token (batch-dependent kernel choices
# do it). The distribution test on whole rows therefore ignores changes below 1e-6 nats; the
# flip tests on the scored NLLs keep the exact tolerance (earlier scores must not move at all).
ROW_FP32_TOLERANCE = 1e-6


def row_tolerance(tolerance: float) -> float:
    """The distribution test's tolerance for a float32 submission: never below float32 resolution."""
    return max(tolerance, ROW_FP32_TOLERANCE)


@dataclass
class FunctionVerdict:
    """The dynamic verdict on one scoring function of the script (or the pipeline, or an adapter)."""

    name: str
    line: int
    status: Status
    summary: str
    kind: str = "function"  # "function" | "pipeline" | "adapter"
    channels: list[str] = field(default_factory=list)
    capture: dict[str, Any] = field(default_factory=dict)  # scored-set rule, rebuilt vs returned metrics
    positive_control: dict[str, Any] = field(default_factory=dict)
    causality: CausalityResult | None = None
    child_tail: str = ""  # last stderr lines of the child when it failed
    seconds: float = 0.0
    call_line: int | None = None  # where the entry point called it
    calls: int = 0  # how many times the entry point called it
    not_exercised: list[str] = field(default_factory=list)  # flag branches inside it that never ran
    notes: list[str] = field(default_factory=list)
    reported: bool = False  # its call is the one whose score the script reports (the last scoring call)


@dataclass
class ConcernVerdict:
    """What the audit says on one compliance concern, and what decided it."""

    concern: str  # "causal" | "normalized" | "coverage" | "doc"
    status: Status
    summary: str
    decided_by: str  # "dynamic", "static", "dynamic+static", "none"
    evidence: list[Evidence] = field(default_factory=list)


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
    concerns: dict[str, ConcernVerdict] = field(default_factory=dict)
    compat: str = ""  # how the source was made to run here (PEP 701 downgrade, --python)
    entry: dict[str, Any] = field(default_factory=dict)  # the entry run: seconds, error, line
    checks: list[CheckResult] = field(default_factory=list)  # GA-COVER / GA-DOC results
    isolation: str = ""  # the sandbox level the child ran under ("" when no child was started)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # ChildProcess.attempts() of every child


@dataclass
class ScriptText:
    """The source to analyse and the source to run (they differ only after a syntax downgrade)."""

    path: Path
    analysis: str
    run: str
    layers: int
    followed: list[str]
    compat: str = ""


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


def load_script(path: Path, python: str | None = None) -> ScriptText:
    """The script's effective source; newer syntax is downgraded (``pycompat``) unless ``python`` runs it."""
    from ..pycompat import DowngradeError, downgrade_source

    text, layers, followed, min_python = load_effective(path)
    if min_python is None:
        return ScriptText(path, text, text, layers, followed)
    try:
        lowered = downgrade_source(text)
        parse_shared(lowered)
    except (DowngradeError, SyntaxError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise CannotConclude(f"{path}: needs Python ≥ {min_python[0]}.{min_python[1]} and the f-string downgrade "
                             f"did not make it parse here{where}: {exc}; pass --python PATH to an interpreter "
                             f"≥ {min_python[0]}.{min_python[1]} that has torch") from None
    if python:
        return ScriptText(path, lowered, text, layers, followed,
                          f"needs Python ≥ {min_python[0]}.{min_python[1]}: run under --python {python}; "
                          "analysed through the PEP 701 downgrade")
    return ScriptText(path, lowered, lowered, layers, followed,
                      f"needs Python ≥ {min_python[0]}.{min_python[1]} (PEP 701 f-strings): downgraded to run "
                      f"on {sys.version_info[0]}.{sys.version_info[1]} (golf_audit.pycompat), line numbers kept")


def _exec_open_target(text: str) -> str | None:
    """The literal file name of a top-level ``exec(open(NAME).read())`` in a script that defines nothing."""
    try:
        tree = parse_shared(text)
    except SyntaxError:
        return None
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
    """BOS-led documents of random non-control tokens: every 4-gram unique, so rows map back."""
    import torch

    return torch.from_numpy(fakedata.documents(vocab_size, length, seed))


def positive_control(source: ScriptSource, tokens: torch.Tensor, base, tolerance: float) -> dict[str, Any]:
    """Flip one token mid-stream: the later positions of its own row must move, or the capture is blind."""
    units = source.scoring_units(base.nll.size)
    scored = np.flatnonzero(base.count > 0)
    mid = scored[scored.size // 2:]
    flip = next((int(f) for f in mid if f + 1 < units.size and units[f + 1] == units[f] and base.count[f + 1] > 0
                 and int(tokens[f + 1]) >= fakedata.FIRST_NORMAL), None)
    if flip is None:
        return {"passed": False, "reason": "no scored target with a scored successor in the same row"}
    flipped = tokens.clone()
    flipped[flip + 1] = fakedata.FIRST_NORMAL + (int(tokens[flip + 1]) - fakedata.FIRST_NORMAL + 1) % \
        (source.vocab_size - fakedata.FIRST_NORMAL)
    started = time.perf_counter()
    after = source.run(flipped)
    later = np.arange(flip + 1, units.size)
    later = later[(units[later] == units[flip]) & (base.count[later] > 0)]
    delta = np.abs(after.nll[later] - base.nll[later])
    moved = int(np.sum(delta > tolerance))
    return {"passed": moved > 0, "flip": flip, "later_positions": int(later.size), "moved": moved,
            "max_abs_delta": float(np.nanmax(delta)) if delta.size else 0.0, "seconds": time.perf_counter() - started,
            "reason": "" if moved else "flipping a token left every later position of its window unchanged"}


SUPPORT_SUFFIXES = (".py", ".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".json", ".npz", ".npy")
MAX_SUPPORT_BYTES = 4 * 1024 * 1024


def sibling_files(script: Path) -> dict[str, bytes]:
    """Local files the script loads (helper modules, exec'd files, C sources): they travel with it.

    The dependency scan's files, and every small code or metadata file of the script's folder (a
    helper module may load a C source by its own path, which the scan of the script cannot see).
    """
    from ..source import code_dependencies

    out = {p.name: p.read_bytes() for p in sorted(script.parent.iterdir())
           if p.is_file() and p.suffix in SUPPORT_SUFFIXES and p.name != script.name
           and not p.name.startswith("train") and p.stat().st_size <= MAX_SUPPORT_BYTES}
    try:
        deps = code_dependencies(script)
    except Exception:  # noqa: BLE001 - missing helpers surface as the child's own error
        return out
    for dep in deps:
        if dep.how == "entry" or not dep.path.is_file():
            continue
        try:
            rel = dep.path.resolve().relative_to(script.parent.resolve())
        except ValueError:
            continue
        if str(rel) != "train_gpt.py":
            out[str(rel)] = dep.path.read_bytes()
    return out


def open_child(script: Path, text: str, *, python: str | None, timeout_s: float, memory_bytes: int,
               env: dict[str, str], unsafe_no_sandbox: bool, opened: list[ChildProcess]) -> ChildProcess:
    """The sandboxed child for one run of the script, its folder's support files beside it.

    ``opened`` collects every child of an audit, for the isolation level and the attempts report.
    """
    child = ChildProcess(text, python=python, timeout_s=timeout_s, memory_bytes=memory_bytes, extra_env=env,
                         support_files=sibling_files(script), unsafe_no_sandbox=unsafe_no_sandbox)
    opened.append(child)
    return child


def _with_children(audit: SubmissionAudit, opened: list[ChildProcess]) -> SubmissionAudit:
    """Record the isolation level and everything the children tried (they are closed by now)."""
    if opened:
        audit.isolation = opened[0].isolation
        seen: set[str] = set()  # the twin child does what the first one does: one line per attempt
        audit.attempts = [a for child in opened for a in child.attempts()
                          if not (repr(a) in seen or seen.add(repr(a)))]
    return audit


@dataclass
class StaticView:
    """What is known of a script without running it: its source, the static findings, its configuration."""

    src: ScriptText
    tree: ast.Module
    static: list[CheckResult]
    variables: list[Any]
    submitted: dict[str, str]
    tiny: dict[str, str]


def static_view(script: Path, python: str | None = None, env: dict[str, str] | None = None,
                use_logs: bool = True) -> StaticView:
    """The static findings of a script, configured as the submitted run (its logs, README commands).

    One function for ``causality`` and ``report``, so both show the same static verdicts.
    CannotConclude when the source cannot be read or parsed.
    """
    from .. import astmemo

    src = load_script(script, python)
    try:
        tree = parse_shared(src.analysis)
    except SyntaxError as exc:
        raise CannotConclude(f"{script}: does not parse (line {exc.lineno}: {exc.msg})") from None
    with astmemo.scope():  # the checks walk the same subtrees many times; the tree is only read
        results = static.run_all(tree, script.name)
        variables = analyze.env_vars(tree)
        submitted = analyze.submitted_config(script.parent, variables) if use_logs else {}
        tiny = analyze.tiny_env(variables, submitted, env)
        flags = analyze.flag_values(variables, tiny)
        results = static.configured(results, tree, flags, variables, submitted)
        results = static.merge(results, _helper_static(script, tree, flags, variables, submitted))
    return StaticView(src, tree, results, variables, submitted, tiny)


def _helper_static(script: Path, tree: ast.Module, flags: dict[str, bool], variables: list[Any],
                   submitted: dict[str, tuple[str, str]]) -> list[CheckResult]:
    """The static checks on the local Python modules the script imports (an n-gram helper, a
    kernel module): a leak there is the submission's as much as one in ``train_gpt.py``."""
    from .. import astmemo
    from ..pycompat import DowngradeError, downgrade_source
    from ..source import code_dependencies

    out: list[CheckResult] = []
    for dep in code_dependencies(script):
        if dep.how != "import" or dep.path.suffix != ".py" or dep.path.resolve() == script.resolve():
            continue
        try:
            text = dep.path.read_text(encoding="utf-8", errors="replace")
            try:
                helper = parse_shared(text)
            except SyntaxError:
                helper = parse_shared(downgrade_source(text))
        except (OSError, SyntaxError, DowngradeError) as exc:
            out.append(CheckResult("GA-STATIC-HELPER", "helper module readable", Status.ERROR,
                                   f"{dep.path.name}: cannot be parsed ({exc}); its code was not checked"))
            continue
        with astmemo.scope():
            out.extend(static.helper_results(helper, dep.path.name, _imports_off(tree, dep.path.stem, flags)))
    return out


def _imports_off(tree: ast.Module, module: str, flags: dict[str, bool]) -> str | None:
    """Why the submitted run never imports ``module``: every import of it is in a switched-off branch."""
    lines = [n.lineno for n in ast.walk(tree)
             if (isinstance(n, ast.ImportFrom) and n.module == module)
             or (isinstance(n, ast.Import) and any(a.name == module for a in n.names))]
    offs = [static.off_branch(tree, line, flags) for line in lines]
    if not offs or any(o is None for o in offs):
        return None
    return "imported only inside " + ", ".join(f"`if {ast.unparse(o.test)[:50]}` (line {o.lineno})" for o in offs) \
        + ", off in the submitted run"


def audit_script(path: str | Path, *, functions: list[str] | None = None, inline_selector: str | None = None,
                 python: str | None = None, flips: int = 64, seed: int = 0, tolerance: float = DEFAULT_TOLERANCE,
                 env: dict[str, str] | None = None, stream_tokens: int = DEFAULT_STREAM_TOKENS,
                 setup_timeout_s: float = 240.0, run_timeout_s: float = 60.0,
                 memory_bytes: int = DEFAULT_MEMORY_BYTES, adapter: str | Path | None = None,
                 budget_s: float = DEFAULT_BUDGET_S, pipeline: str = "auto", use_logs: bool = True,
                 progress: Callable[[str], None] | None = None, unsafe_no_sandbox: bool = False) -> SubmissionAudit:
    """Audit one script (or records folder); CannotConclude when it cannot even be read.

    ``budget_s`` bounds the replays of the flip tests (flips per function shrink to fit, never
    below 8); ``pipeline`` is "auto" (when validation data reaches code outside the scoring
    functions, or a scoring call adapted its model before another scored), "on" or "off".
    ``inline_selector`` is kept for the CLI's ``--inline``: the audit runs the entry point itself,
    so inline eval blocks run in place and are covered by the pipeline test.
    """
    started = time.perf_counter()
    say = progress or (lambda _m: None)
    opened: list[ChildProcess] = []
    script = resolve_script(path)
    if script.stat().st_size == 0:
        return _combine(str(script), [FunctionVerdict("<script>", 0, Status.ERROR, "the script is empty (0 bytes): "
                        "there is no code to audit")], [], ScriptText(script, "", "", 0, []), {}, stream_tokens,
                        tolerance, time.perf_counter() - started)
    view = static_view(script, python, env, use_logs)
    src, tree, static_results, variables, submitted, tiny = (view.src, view.tree, view.static, view.variables,
                                                             view.submitted, view.tiny)
    if adapter is not None:
        adapter_file = load_adapter(adapter)
        tiny.update(adapter_file.env)
        tiny.update(env or {})
        verdicts = _adapter_audit(script, src, adapter_file, tiny, python, flips, seed, tolerance, stream_tokens,
                                  setup_timeout_s, run_timeout_s, memory_bytes, say, unsafe_no_sandbox, opened)
        return _with_children(_combine(str(script), verdicts, static_results, src, tiny, stream_tokens, tolerance,
                                       time.perf_counter() - started), opened)
    try:
        scoring = analyze.scoring_functions(tree, functions)
        blocks = [] if functions else inline.inline_blocks(tree, inline_selector, {f.name for f in scoring})
    except analyze.AnalysisError as exc:
        raise BadInput(f"{script}: {exc}") from None
    scoring += [analyze.ScoringFunction(b.label, b.line, b.line, "inline eval block") for b in blocks]
    if not scoring:
        from .cover import coverage_check

        verdicts = [FunctionVerdict("<none>", 0, Status.ERROR, "no scoring function found (no module-level function "
                    "scores tokens and computes a bpb): name one with --function, or write an --adapter")]
        return _combine(str(script), verdicts, static_results, src, tiny, stream_tokens, tolerance,
                        time.perf_counter() - started, [coverage_check(script.name, None, tree, [])])
    fixed = analyze.hardcoded_sizes(tree, variables)
    if fixed:  # it runs at its own full size: on a CPU it either fails soon or never ends
        say("the script fixes its sizes in module constants (" + ", ".join(f"{n} = {v}" for n, v, _ in fixed)
            + f"): its entry point gets {HARDCODED_ENTRY_S:.0f} s")
        setup_timeout_s = min(setup_timeout_s, HARDCODED_ENTRY_S)
    run = _DynamicRun(script, src, tree, scoring, tiny, python, flips, seed, tolerance, stream_tokens,
                      setup_timeout_s, run_timeout_s, memory_bytes, budget_s, pipeline, say,
                      _static_outside(static_results, scoring, script.name), blocks, unsafe=unsafe_no_sandbox, opened=opened,
                      variables=variables, audit_started=started)
    verdicts, checks, entry = run.execute()
    if fixed:
        _hint_fixed_sizes(verdicts, fixed)
    if entry.get("error") and "calls" in entry and not entry["calls"] and stream_tokens == DEFAULT_STREAM_TOKENS \
            and not fixed:
        # It failed before any scoring call: some scripts derive sizes that need longer sequences
        # (a sequence-length schedule from 128 up). Grow the configuration once.
        say(f"the entry point stopped before scoring ({entry['error']}): retrying at sequence length "
            f"{2 * analyze.TINY_SEQ}")
        tiny = analyze.tiny_env(variables, submitted, env, seq=2 * analyze.TINY_SEQ)
        run = _DynamicRun(script, src, tree, scoring, tiny, python, flips, seed, tolerance,
                          24 * 2 * analyze.TINY_SEQ + 1, setup_timeout_s, run_timeout_s, memory_bytes, budget_s,
                          pipeline, say, _static_outside(static_results, scoring, script.name), blocks, row_len=2 * analyze.TINY_SEQ,
                          unsafe=unsafe_no_sandbox, opened=opened, variables=variables, audit_started=started)
        retry = run.execute()
        if not (retry[2].get("error") and not retry[2].get("calls", 0)):
            verdicts, checks, entry = retry
            stream_tokens = 24 * 2 * analyze.TINY_SEQ + 1
            entry["grown"] = f"the first run stopped before scoring; run at sequence length {2 * analyze.TINY_SEQ}"
    static_results = _unreached(static_results, verdicts, scoring, entry)
    audit = _combine(str(script), verdicts, static_results, src, tiny, stream_tokens, tolerance,
                     time.perf_counter() - started, checks, entry)
    return _with_children(audit, opened)


def _hint_fixed_sizes(verdicts: list[FunctionVerdict], fixed: list[tuple[str, int, int]]) -> None:
    """Say why a script with hard-coded sizes could not be run small, and what to do."""
    where = ", ".join(f"{n} = {v} (line {line})" for n, v, line in fixed)
    hint = (f"; the script sets its sizes as module constants that no environment variable reaches ({where}), "
            "so it ran at full size: write an --adapter that builds its model small")
    for v in verdicts:
        if v.status is Status.ERROR and v.kind != "pipeline":
            v.summary += hint


def _unreached(results: list[CheckResult], verdicts: list[FunctionVerdict], scoring: list[analyze.ScoringFunction],
               entry: dict[str, Any]) -> list[CheckResult]:
    """Leak findings inside a scoring function the submitted run never calls become warnings."""
    if entry.get("error"):
        return results  # the run did not finish: "never called" is not known
    idle = {v.name for v in verdicts if v.status is Status.NOT_RUN}
    spans = {f.name: (f.line, f.end_line) for f in scoring if f.name in idle}
    out = []
    for r in results:
        inside = [next((n for n, (a, b) in spans.items() if a <= (e.line or 0) <= b), None) for e in r.evidence]
        if r.status is not Status.FAIL or not r.evidence or any(n is None for n in inside):
            out.append(r)
            continue
        for e, n in zip(r.evidence, inside):
            e.message += f" — in {n}, which the submitted run never calls"
        out.append(CheckResult(r.check_id, r.title, Status.WARN, f"only in code the submitted run never calls "
                               f"({inside[0]}): {r.evidence[0].message}", severity=r.severity, rule=r.rule,
                               remediation=r.remediation, evidence=r.evidence, data={**r.data, "unreached": True}))
    return out


class _DynamicRun:
    """One child: the entry run, then the flip tests, the pipeline test, GA-COVER and GA-DOC."""

    def __init__(self, script: Path, src: ScriptText, tree: ast.Module, scoring: list[analyze.ScoringFunction],
                 env: dict[str, str], python: str | None, flips: int, seed: int, tolerance: float,
                 stream_tokens: int, setup_timeout_s: float, run_timeout_s: float, memory_bytes: int,
                 budget_s: float, pipeline: str, say: Callable[[str], None], static_outside: list[str],
                 blocks: list[Any] | None = None, row_len: int = ROW_LEN, unsafe: bool = False,
                 opened: list[ChildProcess] | None = None, variables: list[Any] | None = None,
                 audit_started: float | None = None) -> None:
        self.audit_started = audit_started  # perf_counter() when the whole audit began (a retry's time counts)
        self.variables = variables if variables is not None else analyze.env_vars(tree)  # the static view's
        self.unsafe = unsafe
        self.opened = opened if opened is not None else []
        self.blocks = blocks or []
        self.row_len = row_len
        self.static_outside = static_outside  # static leak findings in code outside the scoring functions
        self.script, self.src, self.tree, self.scoring = script, src, tree, scoring
        self.env, self.python, self.flips, self.seed, self.tolerance = env, python, flips, seed, tolerance
        self.stream_tokens, self.setup_timeout_s, self.run_timeout_s = stream_tokens, setup_timeout_s, run_timeout_s
        self.memory_bytes, self.budget_s, self.pipeline_mode, self.say = memory_bytes, budget_s, pipeline, say
        self.vocab = analyze.default_vocab(self.variables)
        self.twin: ChildProcess | None = None  # the replays' second child, once its entry run matched
        self.twin_agrees: set[int] = set()  # call ids whose unflipped score the twin matched bit for bit

    def execute(self) -> tuple[list[FunctionVerdict], list[CheckResult], dict[str, Any]]:
        from . import cover, doccheck

        names = [f.name for f in self.scoring if f.why != "inline eval block"]
        tokens = audit_stream(self.vocab, self.stream_tokens, self.seed)
        self.say(f"running {self.script.name}'s own entry point in the sandboxed child")
        t_open = time.perf_counter()
        with open_child(self.script, self.src.run, python=self.python, timeout_s=self.run_timeout_s,
                        memory_bytes=self.memory_bytes, env=self.env, unsafe_no_sandbox=self.unsafe,
                        opened=self.opened) as child, self._twin_child() as twin:
            setup = {"script": str(child.script), "scoring": names, "seed": self.seed, "row_len": self.row_len,
                     "vocab": self.vocab, "tokens": tokens.tolist(),
                     "resume": analyze.resume_modes(self.variables, self.script.parent),
                     "inline": [dataclasses.asdict(b) for b in self.blocks]}
            if twin is not None:  # when the twin is stopped (twin.Setup), the first child takes both cores
                setup["thread_plan"] = [TWIN_ENTRY_LIMIT_S, 2]
            twin_setup = twin_mod.Setup(twin, setup, self.setup_timeout_s, TWIN_ENTRY_LIMIT_S) \
                if twin is not None else None
            try:
                ready = child.request(setup, timeout_s=self.setup_timeout_s)
            except ChildFailed as exc:  # coverage still says what can be said without a run
                return ([FunctionVerdict(f.name, f.line, Status.ERROR, f"the script could not be run: {exc}",
                                         child_tail=exc.tail) for f in self.scoring],
                        [cover.coverage_check(self.script.name, None, self.tree, names)], {"error": str(exc)})
            entry = {"seconds": ready.get("entry_seconds"), "error": None, "line": None,
                     "resumed": ready.get("resumed", ""), "calls": len(ready["calls"])}
            if ready.get("entry_error"):
                entry.update(error=ready["entry_error"]["error"], line=ready["entry_error"]["line"])
            calls = ready["calls"]
            # the twin's entry run went on beside this one: it is used when it made the same calls, and
            # waited for a little only (a twin far behind would cost more than it saves)
            if twin_setup is not None:
                self.twin = twin_setup.twin_if_same(ready, max(TWIN_WAIT_S, 0.5 * (time.perf_counter() - t_open)))
                if self.twin is None:
                    twin.close(graceful=False)
                if twin_setup.gave_up:
                    self.say(f"the twin child was stopped: an entry run over {TWIN_ENTRY_LIMIT_S:.0f} s is slowed by "
                             "a twin more than the twin saves; the first child goes on alone, its later scoring calls and "
                             "their replays on two threads")
            coverage = {k: set(v) for k, v in ready.get("coverage", {}).items()}
            verdicts = []
            chosen = self._choose(calls, entry)
            budget_left = self._replay_budget(t_open, float(entry["seconds"] or 0.0), calls)
            to_test = sum(1 for c in chosen.values() if isinstance(c, dict))
            branches = analyze.flag_branches(self.tree, names)
            for fn in self.scoring:
                pick = chosen.get(fn.name)
                if isinstance(pick, FunctionVerdict):
                    verdicts.append(pick)
                    continue
                self.say(f"flip tests on {fn.name} (call {pick['ordinal'] + 1} of {pick['total']}, line {pick['call_line']})")
                t_fn = time.perf_counter()
                v = self._flip_test(child, fn, pick, tokens, budget_left / max(1, to_test))
                budget_left, to_test = budget_left - (time.perf_counter() - t_fn), to_test - 1  # what one leaves, the next gets
                ran = coverage.get(fn.name, set())
                v.not_exercised = [f"line {b.line}: if {b.test}" for b in branches
                                   if b.function == fn.name and ran and not ran & set(range(b.body[0], b.body[1] + 1))]
                verdicts.append(v)
                if child.proc.poll() is not None:
                    break
            reported = _reported_call(calls)
            for v in verdicts:  # decisive only when the entry point ran to its end
                v.reported = reported is not None and not entry.get("error") and v.name == reported["name"] \
                    and v.kind == "function"
            checks: list[CheckResult] = []
            checks.append(cover.coverage_check(self.script.name, reported if reported and not reported["error"]
                                               else None, self.tree, names))
            if self._wants_pipeline(calls) and child.proc.poll() is None:
                verdicts.append(self._pipeline(child, calls, tokens, entry))
            if child.proc.poll() is None:
                checks.append(doccheck.doc_check(child, self.script.name, calls, tokens, self.tree, self.vocab,
                                                 self.tolerance, self.twin, self.twin_agrees))
            for c in (child, twin):  # both wind down at once
                if c is not None:
                    c.ask_exit()
            return verdicts, checks, entry

    def _twin_child(self) -> Any:
        """The second child for the replays (see ``twin``), or a context giving None."""
        if twin_mod.replay_workers() < 2:
            return contextlib.nullcontext(None)
        return open_child(self.script, self.src.run, python=self.python, timeout_s=self.run_timeout_s,
                          memory_bytes=self.memory_bytes, env=self.env, unsafe_no_sandbox=self.unsafe,
                          opened=self.opened)

    def _replay_budget(self, t_open: float, entry_seconds: float, calls: list[dict[str, Any]]) -> float:
        """Seconds of flip replays: ``budget_s``, less what keeps the whole audit near TIME_TARGET_S.

        What is left after the entry run is shared with the pipeline test (PIPELINE_FLIPS + 1
        entry runs, when it runs) and the document test (``_doc_reserve``); never below
        MIN_REPLAY_S (each flip test still runs at least MIN_FLIPS flips).
        """
        spent = time.perf_counter() - (self.audit_started or t_open)
        later = (PIPELINE_FLIPS + 1) * entry_seconds if self._wants_pipeline(calls) else 0.0
        left = TIME_TARGET_S - spent - later - self._doc_reserve(calls)
        return max(MIN_REPLAY_S, min(self.budget_s, left))

    def _doc_reserve(self, calls: list[dict[str, Any]]) -> float:
        """The document test's time, from the entry run's own time for each call it will replay:
        an unflipped run and DOCS_TESTED flipped streams per call, the streams shared with the twin
        when there is one; DOC_RESERVE_S at the least. Nothing where the script claims no
        document isolation (the test is then not applicable and runs nothing)."""
        from ..causality.docflip import DOCS_TESTED
        from . import doccheck

        if not doccheck.isolation_claims(self.tree):
            return 0.0
        runs = 1 + (-(-DOCS_TESTED // 2) if getattr(self, "twin", None) is not None else DOCS_TESTED)
        tested = doccheck.tested_calls(calls, self.tree)
        return max(DOC_RESERVE_S, sum(runs * float(c.get("seconds") or 0.0) for c in tested))

    def _choose(self, calls: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
        """Per scoring function: its last replayable call with a capture, or why there is none."""
        out: dict[str, Any] = {}
        for fn in self.scoring:
            mine = [c for c in calls if c["name"] == fn.name]
            good = [c for c in mine if c["replayable"] and c.get("rule") and not c["error"]]
            if good:
                out[fn.name] = {**good[-1], "total": len(mine)}
                continue
            if not mine:
                why = "not exercised: the script's entry point never called it"
                if entry.get("error"):
                    why += f" (the entry point stopped at line {entry['line']}: {entry['error']})"
                status = Status.ERROR if entry.get("error") else Status.NOT_RUN
                out[fn.name] = FunctionVerdict(fn.name, fn.line, status, why, calls=0)
                continue
            last = mine[-1]
            if last["error"]:
                why = f"it raised when the entry point called it (line {last['error_line']}): {last['error']}"
            elif not last["replayable"]:
                why = f"its arguments could not be copied for replays ({last['copy_error']}): write an --adapter"
            else:
                why = f"capture refused: {last['capture_error']}"
            out[fn.name] = FunctionVerdict(fn.name, fn.line, Status.ERROR, why, call_line=last["call_line"],
                                           calls=len(mine))
        return out

    def _flip_test(self, child: ChildProcess, fn: analyze.ScoringFunction, call: dict[str, Any],
                   tokens: torch.Tensor, budget: float) -> FunctionVerdict:
        from ..causality import audit_source
        from .script_source import ScriptSource

        started = time.perf_counter()
        source = ScriptSource(child, int(call["id"]), self.vocab, fn.name)
        verdict = FunctionVerdict(fn.name, fn.line, Status.ERROR, "", call_line=call["call_line"], calls=call["total"])
        twin_run = None
        try:
            t0 = time.perf_counter()
            base = source.run(tokens)
            per_run = time.perf_counter() - t0
            verdict.capture = dict(base.info)
            twin_run = self._start_twin_base(fn, call, tokens)  # beside the control run, on the other core
            control = positive_control(source, tokens, base, self.tolerance)
        except ChildFailed as exc:
            self._twin_source(twin_run, None, verdict)  # never leave the twin mid-request
            verdict.summary = f"the replay failed: {exc}"
            verdict.child_tail = exc.tail
            verdict.seconds = time.perf_counter() - started
            return verdict
        twins = self._twin_source(twin_run, base, verdict)
        verdict.positive_control = control
        if not control["passed"]:
            verdict.summary = f"capture refused: positive control failed ({control['reason']})"
            verdict.seconds = time.perf_counter() - started
            return verdict
        per_run = max(per_run, control.get("seconds", per_run), 1e-3)
        sources = [source] + twins
        source.prime(tokens, base)
        if twins:
            self.twin_agrees.add(int(call["id"]))
        left = budget - (time.perf_counter() - started)  # the capture check and the control runs count
        flips = max(MIN_FLIPS, min(self.flips, int(left * len(sources) / per_run) - 1))
        if flips < self.flips:
            verdict.notes.append(f"{flips} flips (of {self.flips} asked) to fit the time budget: {per_run:.2f} s per run")
        if not call.get("bpb_matches", True):
            verdict.notes.append("the capture reproduces the function's val_loss; its val_bpb differs from the canonical "
                                 "byte count (a byte-accounting question: GA-BPB)")
        from ..causality.engine import _run_chunk

        with twin_mod.ChildExecutor(sources, _run_chunk, row_tolerance(self.tolerance)) if len(sources) > 1 \
                else contextlib.nullcontext() as pool:
            result = audit_source(source, tokens, flips=flips, seed=self.seed, tolerance=self.tolerance, workers=1,
                                  row_tolerance=row_tolerance(self.tolerance), executor=pool)
        if pool is not None:
            verdict.notes.append("the twin child stopped during the flips: its share ran in the first child"
                                 if pool.lost_twin else "flips shared with the twin child (it scored the unflipped "
                                 "stream bit for bit alike; a change it saw is only counted as the first child "
                                 f"sees it: {pool.rechecked} chunk(s) run again there)")
        verdict.causality = result
        verdict.status = result.status
        verdict.channels = list(result.channels)
        verdict.summary = result.summary
        if result.status is Status.ERROR and child.proc.poll() is not None:
            verdict.child_tail = child.tail()
        verdict.seconds = time.perf_counter() - started
        return verdict

    def _start_twin_base(self, fn: analyze.ScoringFunction, call: dict[str, Any], tokens: torch.Tensor) -> Any:
        """The twin's replay of the same call on the unflipped stream, in the background (None: no twin)."""
        from .script_source import ScriptSource

        twin = self.twin
        if twin is None or twin.proc.poll() is not None:
            return None
        other = ScriptSource(twin, int(call["id"]), self.vocab, fn.name)
        return other, twin_mod.Background(lambda: other.run(tokens))

    def _twin_source(self, job: Any, base: Any, verdict: FunctionVerdict) -> list[Any]:
        """The twin's source, when it scored the unflipped stream bit for bit like the first child."""
        if job is None:
            return []
        other, run = job
        scored = run.result(self.run_timeout_s)
        if scored is None:
            self.twin = None  # hung or failed: not asked again
            return []
        if base is None:
            return []
        if twin_mod.same_scores(base, scored):
            return [other]
        verdict.notes.append("the twin child scored the unflipped stream differently: the flips ran in one child")
        return []

    def _wants_pipeline(self, calls: list[dict[str, Any]]) -> bool:
        if self.pipeline_mode != "auto":
            return self.pipeline_mode == "on"
        adapted_then_scored = any(c.get("adapted") for c in calls[:-1])
        return adapted_then_scored or bool(self.static_outside) or bool(
            analyze.val_consumers(self.tree, [f.name for f in self.scoring]))

    def _pipeline(self, child: ChildProcess, calls: list[dict[str, Any]], tokens: torch.Tensor,
                  entry: dict[str, Any]) -> FunctionVerdict:
        from .pipeline import pipeline_test

        self.say("pipeline test: the whole entry point on flipped streams")
        return pipeline_test(child, calls, tokens, self.vocab, self.seed, self.tolerance, PIPELINE_FLIPS, self.tree,
                             [f.name for f in self.scoring], self.static_outside)


def _static_outside(results: list[CheckResult], scoring: list[analyze.ScoringFunction], script: str) -> list[str]:
    """Causal leak findings (GA-STATIC-001/2/3/5) on lines outside every scoring function: the pipeline's job
    (a finding in a helper module is outside the script's scoring functions too)."""
    spans = [(f.line, f.end_line) for f in scoring]
    out = []
    for r in results:
        if r.status is Status.FAIL and STATIC_CONCERN.get(r.check_id) == "causal":
            out += [f"{r.check_id} {'' if e.file in (None, script) else e.file + ' '}line {e.line}" for e in r.evidence
                    if e.line and (e.file not in (None, script) or not any(a <= e.line <= b for a, b in spans))]
    return out


def _reported_call(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The scoring call whose score the script reports: the last one the entry point made."""
    return calls[-1] if calls else None


def _adapter_audit(script: Path, src: ScriptText, adapter_file: AdapterFile, env: dict[str, str], python: str | None,
                   flips: int, seed: int, tolerance: float, stream_tokens: int, setup_timeout_s: float,
                   run_timeout_s: float, memory_bytes: int, say: Callable[[str], None], unsafe_no_sandbox: bool,
                   opened: list[ChildProcess]) -> list[FunctionVerdict]:
    from ..causality import audit_source
    from .script_source import ScriptSource

    say(f"starting the sandboxed child for {script.name} with adapter {adapter_file.path}")
    with open_child(script, src.run, python=python, timeout_s=run_timeout_s, memory_bytes=memory_bytes, env=env,
                    unsafe_no_sandbox=unsafe_no_sandbox, opened=opened) as child:
        setup = {"script": str(child.script), "seed": seed, "row_len": ROW_LEN, "adapter_source": adapter_file.source,
                 "adapter_path": adapter_file.path}
        try:
            ready = child.request(setup, timeout_s=setup_timeout_s)
        except ChildFailed as exc:
            return [FunctionVerdict("adapter evaluate()", 0, Status.ERROR, f"the adapter could not be loaded: {exc}",
                                    kind="adapter", child_tail=exc.tail)]
        tokens = audit_stream(int(ready["vocab_size"]), stream_tokens, seed)
        started = time.perf_counter()
        source = ScriptSource(child, "adapter", int(ready["vocab_size"]), "adapter evaluate()")
        verdict = FunctionVerdict("adapter evaluate()", 0, Status.ERROR, "", kind="adapter")
        try:
            base = source.run(tokens)
            verdict.capture = dict(base.info)
            control = positive_control(source, tokens, base, tolerance)
        except ChildFailed as exc:
            verdict.summary, verdict.child_tail = f"capture refused: {exc}", exc.tail
            return [verdict]
        verdict.positive_control = control
        if not control["passed"]:
            verdict.summary = f"capture refused: positive control failed ({control['reason']})"
            return [verdict]
        result = audit_source(source, tokens, flips=flips, seed=seed, tolerance=tolerance, workers=1,
                              row_tolerance=row_tolerance(tolerance))
        verdict.causality, verdict.status, verdict.summary = result, result.status, result.summary
        verdict.channels = list(result.channels)
        verdict.seconds = time.perf_counter() - started
        return [verdict]


# How a report names a concern that failed (the headline of a failed script audit).
FAILED_AS = {"causal": "not causal", "normalized": "not normalized", "coverage": "incomplete coverage",
             "doc": "crosses document boundaries"}

# Static checks by concern: a leak pattern fails its concern even when no dynamic test reached it.
STATIC_CONCERN = {"GA-STATIC-001": "causal", "GA-STATIC-002": "causal", "GA-STATIC-003": "causal",
                  "GA-STATIC-004": "normalized", "GA-STATIC-005": "causal", "GA-STATIC-008": "normalized",
                  "GA-STATIC-009": "normalized"}


def _combine(path: str, verdicts: list[FunctionVerdict], static_results: list[CheckResult], src: ScriptText,
             env: dict[str, str], stream_tokens: int, tolerance: float, seconds: float,
             checks: list[CheckResult] | None = None, entry: dict[str, Any] | None = None) -> SubmissionAudit:
    checks = checks or []
    concerns = _concerns(path, verdicts, static_results, checks)
    causal, normalized = concerns["causal"], concerns["normalized"]
    if Status.FAIL in (causal.status, normalized.status):
        status = Status.FAIL
        decided = "+".join(sorted({c.decided_by for c in (causal, normalized) if c.status is Status.FAIL}))
        decided = "dynamic+static" if "dynamic+static" in decided else decided
        summary = "; ".join(f"{FAILED_AS[c.concern]}: {c.summary}" for c in (causal, normalized)
                            if c.status is Status.FAIL)
    elif Status.ERROR in (causal.status, normalized.status):
        status, decided = Status.ERROR, "error"
        bad = [v for v in verdicts if v.status is Status.ERROR]
        summary = "cannot conclude: " + "; ".join(f"{v.name}: {v.summary}" for v in bad)
    else:
        status, decided = Status.PASS, causal.decided_by
        ran = [v for v in verdicts if v.status is Status.PASS and v.kind != "pipeline"]
        summary = (f"causal: {len(ran)} scoring function(s) passed the flip tests"
                   + (", and the pipeline test" if any(v.kind == "pipeline" for v in verdicts) else "")
                   + "; no static leak pattern was found")
        aside = diagnostic_errors(verdicts)
        if aside:
            summary += f"; {NOT_AUDITED}: " + "; ".join(
                f"{v.name}: {v.summary}" for v in aside)
    return SubmissionAudit(path, status, summary, decided if status is not Status.ERROR else "error", verdicts,
                           static_results, src.layers, src.followed, env, stream_tokens, tolerance, seconds, concerns,
                           src.compat, entry or {}, checks)


NOT_AUDITED = "not audited (the reported score does not come from it)"  # how a diagnostic_errors() entry reads


def diagnostic_errors(verdicts: list[FunctionVerdict]) -> list[FunctionVerdict]:
    """The functions that could not be audited, when none of them decides the verdict.

    That is when the function the reported score comes from (the entry point's last scoring
    call, run to the end) passed: the others are diagnostics (a mid-training eval, a
    temperature search on training tokens, a loss with a regularizer added) whose numbers are
    not the claim. They are shown as not audited, never as passed. Empty otherwise.
    """
    errors = [v for v in verdicts if v.status is Status.ERROR]
    reported_passed = any(v.reported and v.status is Status.PASS for v in verdicts)
    return errors if reported_passed else []


def _sum_not_shown(v: FunctionVerdict) -> str:
    """Why a function's flip test cannot show that its scores are normalized ("" when it does)."""
    norm = v.causality.normalization if v.causality is not None else None
    if norm is None:
        return "no scoring row could be checked"
    if not norm.shown:
        return norm.unscored_text()
    return ""


def _concerns(path: str, verdicts: list[FunctionVerdict], static_results: list[CheckResult],
              checks: list[CheckResult]) -> dict[str, ConcernVerdict]:
    script = Path(path).name
    out: dict[str, ConcernVerdict] = {}
    dyn = [v for v in verdicts if v.status in (Status.PASS, Status.FAIL, Status.ERROR)]
    for concern in ("causal", "normalized"):
        stat = [r for r in static_results if STATIC_CONCERN.get(r.check_id) == concern and r.status is Status.FAIL]
        if concern == "causal":
            dfail = [v for v in dyn if v.status is Status.FAIL and (v.causality is None or
                     any(t != "normalization" for t in v.causality.failed_tests))]
        else:
            dfail = [v for v in dyn if v.causality is not None and "normalization" in v.causality.failed_tests]
        evidence = [Evidence(f"{v.name}: {v.summary}", file=script, line=v.line or None) for v in dfail]
        evidence += [Evidence(f"{r.check_id}: {e.message}", file=e.file, line=e.line, snippet=e.snippet)
                     for r in stat for e in r.evidence]
        if dfail or stat:
            by = "dynamic+static" if dfail and stat else "dynamic" if dfail else "static"
            what = [f"{v.name}" + (f" ({', '.join(v.channels)} channel)" if v.channels else "") for v in dfail]
            what += [f"{r.check_id} {r.title} (line {r.evidence[0].line})" for r in stat if r.evidence]
            out[concern] = ConcernVerdict(concern, Status.FAIL, "; ".join(what), by, evidence)
            continue
        errors = [v for v in verdicts if v.status is Status.ERROR]
        passed = [v for v in verdicts if v.status is Status.PASS]
        decisive = [v for v in passed if v.reported or v.kind == "pipeline"]
        if errors and diagnostic_errors(verdicts):
            out[concern] = ConcernVerdict(concern, Status.PASS, f"the reported score's function passed "
                                          f"({', '.join(v.name for v in decisive)}); not audited: " + "; ".join(
                                              f"{v.name}: {v.summary}" for v in errors), "dynamic+static",
                                          [Evidence(f"not audited: {v.name}: {v.summary}", file=script,
                                                    line=v.line or None) for v in errors])
        elif errors:
            out[concern] = ConcernVerdict(concern, Status.ERROR, "; ".join(f"{v.name}: {v.summary}" for v in errors),
                                          "none", [Evidence(f"{v.name}: {v.summary}", file=script, line=v.line or None)
                                                   for v in errors])
        elif passed:
            # the pipeline test reruns the whole entry point for its flips: Σp is the scoring functions' to show
            scoring = [v for v in passed if v.kind != "pipeline"] or passed
            reasons = {v.name: _sum_not_shown(v) for v in scoring} if concern == "normalized" else {}
            unshown = {name: why for name, why in reasons.items() if why}
            why = "; ".join(f"{name}: {reason}" for name, reason in unshown.items())
            if unshown and len(unshown) == len(scoring):
                out[concern] = ConcernVerdict(concern, Status.PASS, f"Σp = 1 could not be shown ({why}) and no "
                                              "static pattern was found (decided statically)", "static")
            elif unshown:
                out[concern] = ConcernVerdict(concern, Status.PASS, f"{len(passed) - len(unshown)} dynamic test(s) "
                                              f"passed; Σp = 1 not shown for {why}: no static pattern was found there",
                                              "dynamic+static")
            else:
                out[concern] = ConcernVerdict(concern, Status.PASS, f"{len(passed)} dynamic test(s) passed",
                                              "dynamic+static")
        else:
            out[concern] = ConcernVerdict(concern, Status.ERROR, "nothing could be run", "none")
    for check, concern in (("GA-COVER-001", "coverage"), ("GA-DOC-001", "doc")):
        found = [c for c in checks if c.check_id == check]
        if found:
            c = found[0]
            out[concern] = ConcernVerdict(concern, c.status, c.summary, str(c.data.get("decided_by", "dynamic")),
                                          list(c.evidence))
    return out
