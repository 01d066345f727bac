"""GA-COVER-001: the reported score covers every validation target exactly once.

Dynamic evidence: the scored set of the script's reported (last) scoring call, as the capture
inferred it from the function's own returned metrics (``capture.infer``): how many times each
target of the audit stream was scored. Gaps (targets never scored) mean a subset was reported;
duplicates outside the stream's last window mean targets were scored twice. The records'
stride-64 sliding loops re-score the final positions from every window that ends at the last
token: those duplicates are counted and reported, and are not a violation (no ruling treats
them as one).

Static evidence (it decides when no scoring call could be captured, and a world of one rank
cannot show a per-rank share): validation windows drawn at random (an RNG picks the offsets of
a shard read for the ``val`` split), a fixed bytes-per-token constant as the bpb denominator (a
sampled score turned into bpb without counting the bytes of what was scored), and a scoring
function fed a per-position buffer that a rank-split scorer filled with its own share, with no
gather in between (on 8 GPUs the number covers one eighth of the validation set).
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from ..findings import CheckResult, Evidence, Severity, Status
from .. import astmemo

CHECK_ID = "GA-COVER-001"
TITLE = "Reported score covers every validation target exactly once"
RULE = "the score is over the full validation set, each token once"
REMEDIATION = "Score every target of the validation stream exactly once (all ranks' shares summed), with its own byte count."
TAIL = 64  # re-scored final positions of a sliding loop lie within the last window
EDGE = 64  # an unscored run at a stream end no longer than one eval window of the audit
RNG_CALLS = ("randint", "randperm", "choice", "permutation", "shuffle", "sample", "randrange", "integers", "random")
SHARD_READS = ("memmap", "fromfile", "load_data_shard", "np.load", "frombuffer")


def _static_findings(tree: ast.Module, script: str) -> list[Evidence]:
    out: list[Evidence] = []
    fns = {n.name: n for n in astmemo.walk(tree) if isinstance(n, ast.FunctionDef)}
    samplers = {}
    for name, fn in fns.items():
        rng = [c for c in astmemo.walk(fn) if isinstance(c, ast.Call) and astmemo.unparse(c.func).split(".")[-1] in RNG_CALLS
               and any(w in astmemo.unparse(c.func) for w in ("torch.", "np.", "random", "rng", "numpy"))]
        reads = any(isinstance(c, ast.Call) and any(r in astmemo.unparse(c.func) for r in SHARD_READS)
                    for c in astmemo.walk(fn))
        if rng and reads:
            samplers[name] = rng[0]
    for c in astmemo.walk(tree):
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in samplers:
            args = list(c.args) + [k.value for k in c.keywords]
            if any(isinstance(a, ast.Constant) and isinstance(a.value, str) and "val" in a.value.lower() for a in args) \
                    or any("val" in astmemo.unparse(a).lower() for a in args):
                rng = samplers[c.func.id]
                out.append(Evidence(f"{c.func.id}(…) reads validation windows at random offsets "
                                    f"({astmemo.unparse(rng.func)} at line {rng.lineno}): the score is a random sample",
                                    file=script, line=c.lineno, snippet=astmemo.unparse(c)[:160]))
    out += _rank_share(tree, script)
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, float):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any("bytes_per_token" in n.lower() or n.upper() in ("BPT", "BYTES_PER_TOK") for n in names):
                out.append(Evidence(f"{names[0]} = {node.value.value}: a fixed bytes-per-token denominator, not the "
                                    f"byte count of the scored tokens", file=script, line=node.lineno,
                                    snippet=astmemo.unparse(node)[:160]))
    return out


COLLECTIVES = ("all_reduce", "all_gather", "all_gather_object", "gather", "gather_object", "reduce",
               "all_gather_into_tensor")


def _rank_split(fn: ast.AST) -> bool:
    """The function takes its share of windows/positions by rank (``windows[rank::world]``, ``s = n*rank//w``)."""
    for n in astmemo.walk(fn):
        if isinstance(n, (ast.Subscript, ast.BinOp)):
            names = {x.id if isinstance(x, ast.Name) else x.attr for x in astmemo.walk(n)
                     if isinstance(x, (ast.Name, ast.Attribute))}
            if "rank" in names and "world_size" in names:
                return True
    return False


def _collects(fn: ast.AST) -> bool:
    return any(isinstance(c, ast.Call) and astmemo.unparse(c.func).split(".")[-1] in COLLECTIVES for c in astmemo.walk(fn))


def _rank_share(tree: ast.Module, script: str) -> list[Evidence]:
    """A scoring function fed a per-position buffer that a rank-split scorer filled, with no gather in
    between: on 8 GPUs the reported number covers one rank's share of the validation set."""
    from .analyze import scoring_functions

    defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    scorers = {f.name for f in scoring_functions(tree)}
    out = []
    for holder in defs.values():
        filled: dict[str, str] = {}  # buffer name -> the rank-split scorer that fills it
        gathered: set[str] = set()
        for c in sorted((c for c in astmemo.walk(holder) if isinstance(c, ast.Call)), key=lambda c: (c.lineno, c.col_offset)):
            name = astmemo.unparse(c.func).split(".")[-1]
            args = [a for a in c.args] + [k.value for k in c.keywords]
            if name in COLLECTIVES:
                gathered |= {x.id for a in args for x in astmemo.walk(a) if isinstance(x, ast.Name)}
            elif name in scorers and name in defs and _rank_split(defs[name]):
                for k in c.keywords:  # an output buffer handed to the rank-split scorer
                    if isinstance(k.value, ast.Name) and ("store" in (k.arg or "") or "out" in (k.arg or "")):
                        filled[k.value.id] = name
            elif name in scorers and name in defs and not _collects(defs[name]):
                for a in args:
                    if isinstance(a, ast.Name) and a.id in filled and a.id not in gathered:
                        out.append(Evidence(f"{name}(…) scores {a.id}, which {filled[a.id]} fills with this rank's "
                                            f"windows only (it splits them by rank), and nothing gathers the other "
                                            f"ranks' share: the reported score covers 1/world_size of the "
                                            f"validation set", file=script, line=c.lineno, snippet=astmemo.unparse(c)[:160]))
    return out


def coverage_check(script: str, reported: dict[str, Any] | None, tree: ast.Module, scoring: list[str]) -> CheckResult:
    """GA-COVER-001 from the reported call's scored set (``counts``) and the static patterns."""
    static = _static_findings(tree, script)
    data: dict[str, Any] = {"decided_by": "static"}
    if reported is None or reported.get("counts") is None:
        if static:
            return _result(Status.FAIL, f"{len(static)} static finding(s): {static[0].message}", static, data)
        why = "no scoring call was captured" if reported is None else f"the capture of {reported['name']} was refused"
        return _result(Status.ERROR, f"cannot conclude: {why}, and no static pattern decides", static, data)
    counts = np.asarray(reported["counts"])
    n = counts.size
    gaps = np.flatnonzero(counts == 0)
    # Gaps at the stream's ends smaller than one window: the eval stops at its last full window (or
    # never scores the first window's context). At the real stream's length that is at most one
    # window of tens of millions of targets: reported, not a violation.
    edge = np.zeros(n, dtype=bool)
    if gaps.size:
        head = int(np.argmax(counts > 0)) if (counts > 0).any() else n
        tail = int(np.argmax(counts[::-1] > 0)) if (counts > 0).any() else n
        if 0 < head <= EDGE:
            edge[:head] = True
        if 0 < tail <= EDGE:
            edge[n - tail:] = True
    edge_gaps = gaps[edge[gaps]]
    gaps = gaps[~edge[gaps]]
    dups = np.flatnonzero(counts > 1)
    tail = dups[dups >= n - TAIL]
    inner = dups[dups < n - TAIL]
    name = f"{reported['name']} (call {reported['ordinal'] + 1}, line {reported.get('call_line')})"
    data.update(decided_by="dynamic+static" if static else "dynamic", targets=int(n), scored=int((counts > 0).sum()),
                gaps=int(gaps.size), duplicates=int(dups.size), tail_duplicates=int(tail.size),
                max_count=int(counts.max(initial=0)), function=reported["name"], rule=reported.get("rule"))
    evidence = list(static)
    if gaps.size:
        evidence.append(Evidence(f"{name}: {gaps.size} of {n} targets never scored (first at target {int(gaps[0])})",
                                 file=script, value=int(gaps.size), threshold=0, unit="targets"))
    if inner.size:
        evidence.append(Evidence(f"{name}: {inner.size} targets scored more than once before the last window "
                                 f"(up to {int(counts.max())} times, first at target {int(inner[0])})", file=script,
                                 value=int(inner.size), threshold=0, unit="targets"))
    if edge_gaps.size:
        evidence.append(Evidence(f"{name}: {edge_gaps.size} targets at the stream's ends never scored (at most one "
                                 f"window: the eval stops at its last full window or skips the first window's "
                                 f"context)", file=script, value=int(edge_gaps.size), unit="targets"))
        data["edge_gaps"] = int(edge_gaps.size)
    if tail.size:
        evidence.append(Evidence(f"{name}: {tail.size} of the final {TAIL} targets re-scored by the sliding windows that "
                                 f"end at the last token (up to {int(counts[tail].max())} times): a sliding-window "
                                 f"tail, not a coverage violation", file=script, value=int(tail.size), unit="targets"))
    if gaps.size or inner.size or static:
        what = [f"{gaps.size}/{n} targets never scored"] if gaps.size else []
        what += [f"{inner.size} targets re-scored"] if inner.size else []
        what += [static[0].message] if static else []
        return _result(Status.FAIL, "; ".join(what), evidence, data)
    note = f" ({tail.size} tail targets re-scored by the sliding windows, as in the records)" if tail.size else ""
    if edge_gaps.size:
        return _result(Status.WARN, f"{name} scores every target once except {edge_gaps.size} at the stream's ends "
                       f"(less than one window){note}", evidence, data)
    return _result(Status.PASS, f"{name} scores all {n} targets of the stream exactly once{note}", evidence, data)


def _result(status: Status, summary: str, evidence: list[Evidence], data: dict[str, Any]) -> CheckResult:
    return CheckResult(CHECK_ID, TITLE, status, summary, severity=Severity.CRITICAL, rule=RULE,
                       remediation=REMEDIATION if status is Status.FAIL else "", evidence=evidence, data=data)
