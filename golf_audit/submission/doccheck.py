"""GA-DOC-001 on a submission script: the cross-document flip test on its reported scoring call.

Applies when the script claims or builds document isolation: attention split at BOS positions
(``cu_seqlens`` from BOS, varlen attention), documents found from BOS for per-document TTT or
scoring, or a previous-token smear with a BOS mask. A script that reads the stream as one long
text makes no such promise (every position may read the whole past): not applicable.
The test itself is ``causality.docflip``; on a failure the child traces which module first
sees document k-1's change at document k's positions.
"""

from __future__ import annotations

import ast
from typing import Any

import torch

from ..causality.docflip import doc_flip_test
from ..findings import CheckResult, Evidence, Severity, Status
from . import fakedata
from .runner import ChildFailed, ChildProcess
from .script_source import ScriptSource
from .twin import TwinSource

CHECK_ID = "GA-DOC-001"
TITLE = "Document k's scores do not depend on document k-1"
RULE = "per-document evaluation: no state crosses a document boundary"
REMEDIATION = ("Mask every cross-position mixing at BOS (attention segments, previous-token smear/shift, "
               "recurrent state) and reset per-document adaptation at each document start.")
MARKERS = {"cu_seqlens": "attention split into documents (cu_seqlens)", "varlen": "varlen (document-packed) attention",
           "_find_docs": "documents found from BOS", "doc_start": "document starts", "smear": "previous-token smear",
           "bos_mask": "BOS mask", "not_bos": "BOS mask"}


def _reach(tree: ast.Module, function: str, depth: int = 3) -> list[ast.AST]:
    """``function`` and the module-level functions it calls by name (``depth`` levels)."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    out, todo = [], [(function, 0)]
    seen: set[str] = set()
    while todo:
        name, d = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        out.append(defs[name])
        if d < depth:
            todo += [(c.func.id, d + 1) for c in ast.walk(defs[name]) if isinstance(c, ast.Call)
                     and isinstance(c.func, ast.Name)]
    return out


def isolation_claims(tree: ast.Module, function: str | None = None) -> list[tuple[int, str]]:
    """Lines where the script (or ``function`` and what it calls) builds document isolation."""
    has_bos = False
    found: dict[str, int] = {}
    roots = _reach(tree, function) if function else [tree]
    for node in (n for root in roots for n in ast.walk(root)):
        text = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else \
            node.name if isinstance(node, ast.FunctionDef) else ""
        if not text:
            continue
        low = text.lower()
        has_bos |= "bos" in low
        for key, what in MARKERS.items():
            if key in low and what not in found:
                found[what] = getattr(node, "lineno", 0)
    if not has_bos:
        return []
    return sorted(((line, what) for what, line in found.items()), key=lambda x: x[0])


def doc_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls GA-DOC tests: the reported (last) one, and the last one that did not adapt its model."""
    ok = [c for c in calls if not c["error"] and c.get("rule") and c.get("replayable")]
    picks = ok[-1:] + [c for c in reversed(ok) if not c.get("adapted")][:1]
    return list({c["id"]: c for c in picks}.values())


def tested_calls(calls: list[dict[str, Any]], tree: ast.Module) -> list[dict[str, Any]]:
    """Of ``doc_calls``, those whose function builds the isolation itself (or an inline block)."""
    return [c for c in doc_calls(calls) if isolation_claims(tree, c["name"].split(" ")[0])
            or c["name"].startswith("inline block")]


def doc_check(child: ChildProcess, script: str, calls: list[dict[str, Any]], tokens: torch.Tensor, tree: ast.Module,
              vocab: int, tolerance: float, twin: ChildProcess | None = None,
              twin_agrees: set[int] | None = None) -> CheckResult:
    """GA-DOC-001 over the scoring calls ``doc_calls`` picks (summaries from the child; the flipped
    streams shared with ``twin``, a second child that ran the same entry point, when given).

    ``twin_agrees``: the call ids whose unflipped score the twin matched in the flip tests: there
    it is not checked again.
    """
    claims = isolation_claims(tree)
    data: dict[str, Any] = {"decided_by": "dynamic"}
    if not claims:
        return _result(Status.NOT_APPLICABLE, "the script does not claim document isolation (no BOS-aware attention "
                       "split, per-document reset or BOS mask): it reads the validation stream as one text", [], data)
    picked = tested_calls(calls, tree)
    if not picked:
        if doc_calls(calls):
            return _result(Status.NOT_APPLICABLE, "the scoring functions that ran do not build document isolation "
                           "themselves (the BOS-aware code is elsewhere in the script)", [], data)
        return _result(Status.ERROR, "cannot conclude: no scoring call was captured", [], data)
    evidence = [Evidence(f"claims isolation: {what}", file=script, line=line) for line, what in claims[:4]]
    results = [(c, _one(child, script, c, tokens, vocab, tolerance, data, twin, int(c["id"]) in (twin_agrees or ())))
               for c in picked]
    statuses = [r.status for _, r in results]
    for c, r in results:
        evidence.extend(r.evidence)
    failed = [r for _, r in results if r.status is Status.FAIL]
    if failed:
        return _result(Status.FAIL, failed[0].summary, evidence, {**data, **failed[0].data})
    if Status.PASS in statuses:
        return _result(Status.PASS, "; ".join(r.summary for _, r in results if r.status is Status.PASS), evidence, data)
    return _result(Status.ERROR, "; ".join(r.summary for _, r in results), evidence, data)


def _one(child: ChildProcess, script: str, reported: dict[str, Any], tokens: torch.Tensor, vocab: int,
         tolerance: float, data: dict[str, Any], twin: ChildProcess | None = None,
         twin_agrees: bool = False) -> CheckResult:
    data = dict(data, function=reported["name"])
    evidence: list[Evidence] = []
    # the unflipped stream is scored afresh, right before the flipped ones: a base from before the
    # flip tests would compare across many replays
    primary = ScriptSource(child, int(reported["id"]), vocab, reported["name"])
    source = TwinSource(primary, ScriptSource(twin, int(reported["id"]), vocab, reported["name"])
                        if twin is not None and twin.proc.poll() is None else None,
                        verified=twin_agrees)

    def trace(base: torch.Tensor, flipped: torch.Tensor, positions: list[int]) -> str:
        try:
            answer = child.request({"op": "trace", "call": int(reported["id"]), "tokens": base.tolist(),
                                    "flipped": flipped.tolist(), "positions": positions})
        except ChildFailed:
            return ""
        return str(answer.get("mechanism", ""))

    try:
        result = doc_flip_test(source, tokens, fakedata.BOS_ID, fakedata.FIRST_NORMAL, vocab, tolerance, trace=trace)
    except ChildFailed as exc:
        return _result(Status.ERROR, f"cannot conclude: the replay failed: {exc}", evidence, data)
    data["boundaries"] = [p.__dict__ for p in result.pairs]
    status = {"pass": Status.PASS, "fail": Status.FAIL, "error": Status.ERROR}[result.status]
    name = f"{reported['name']} (call {reported['ordinal'] + 1}, line {reported.get('call_line')})"
    if result.mechanism:
        data["mechanism"] = result.mechanism
    evidence.append(Evidence(f"{name}: {result.summary}", file=script, line=reported.get("def_line")))
    return _result(status, f"{name}: {result.summary}", evidence, data)


def _result(status: Status, summary: str, evidence: list[Evidence], data: dict[str, Any]) -> CheckResult:
    return CheckResult(CHECK_ID, TITLE, status, summary, severity=Severity.CRITICAL, rule=RULE,
                       remediation=REMEDIATION if status is Status.FAIL else "", evidence=evidence, data=data)
