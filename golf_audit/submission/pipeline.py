"""The pipeline test: the script's whole entry point again on a flipped stream.

A scoring function can be causal on its own while the submission is not: the model was
trained on the validation tokens before the scoring call (pre-eval TTT), calibrated on them
(GPTQ on validation batches), or adapted by one scoring pass and then scored again (a second
pass). Only a run of the entire entry point sees that. The child re-executes the script as
``__main__`` on a validation shard with one token changed (training data and seeds unchanged)
and returns the per-target NLLs of every scoring call, under the scored-set rule each call got
on the baseline. A target scored *before* the changed token that moves, in any call, is a leak
into an already-scored position: the test fails and names the call and where the entry point
made it.

A target scored after the changed one *in time* (documents evaluated out of stream order by a
score-first TTT, within one call) may depend on it; see ``_moved``.

Costly (one whole entry run per flip), so it runs with few flips placed late in the stream (most
earlier positions to watch), after two unflipped runs (the null control: a nondeterministic
entry point is ``error``, never ``fail``).
"""

from __future__ import annotations

import ast
import time
from typing import Any

import numpy as np
import torch

from ..findings import Status
from . import fakedata
from .runner import ChildFailed, ChildProcess

QUANTILES = (0.15, 0.5, 0.8, 0.97)  # an early flip too: training that reads the first validation batches


def _key(entry: dict[str, Any]) -> tuple[str, int]:
    return entry["name"], int(entry["ordinal"])


def _flip_positions(calls: list[dict[str, Any]], tokens: torch.Tensor, count: int) -> list[int]:
    reported = [c for c in calls if c.get("counts")]
    scored = np.flatnonzero(np.asarray(reported[-1]["counts"]) > 0) if reported else np.arange(tokens.numel() - 1)
    picks = []
    for q in QUANTILES[:count]:
        i = int(scored[min(int(q * scored.size), scored.size - 1)])
        while i + 1 < tokens.numel() and int(tokens[i + 1]) < fakedata.FIRST_NORMAL:
            i += 1  # never replace a document's BOS: that would move document boundaries
        if i + 1 < tokens.numel() and i not in picks:
            picks.append(i)
    return picks


def pipeline_test(child: ChildProcess, calls: list[dict[str, Any]], tokens: torch.Tensor, vocab: int, seed: int,
                  tolerance: float, flips: int, tree: ast.Module, scoring: list[str],
                  static_outside: list[str] | None = None) -> Any:
    """A ``FunctionVerdict`` (kind "pipeline") for the whole entry point."""
    from .audit import FunctionVerdict

    started = time.perf_counter()
    verdict = FunctionVerdict("pipeline (whole entry point)", 0, Status.ERROR, "", kind="pipeline")
    why = [c["name"] for c in calls[:-1] if c.get("adapted")]
    consumers = _consumers(tree, scoring)
    reasons = ([f"{', '.join(dict.fromkeys(why))} adapted its model in place before a later scoring call"] if why else [])
    reasons += [f"validation data reaches {c}" for c in consumers]
    reasons += [f"static finding outside the scoring functions: {s}" for s in static_outside or []]
    verdict.notes.append("run because " + "; ".join(reasons) if reasons else "run on request")
    try:
        first = child.request({"op": "pipeline", "tokens": tokens.tolist()})["calls"]
        second = child.request({"op": "pipeline", "tokens": tokens.tolist()})["calls"]
    except ChildFailed as exc:
        verdict.summary, verdict.child_tail = f"the entry point failed when run again: {exc}", exc.tail
        verdict.seconds = time.perf_counter() - started
        return verdict
    base = {_key(e): e for e in first if e.get("nll") is not None}
    if not base:
        verdict.summary = "no scoring call of the entry run could be captured again"
        verdict.seconds = time.perf_counter() - started
        return verdict
    for e in second:
        b = base.get(_key(e))
        if b is not None and e.get("nll") is not None:
            moved = _moved(np.asarray(b["nll"]), np.asarray(b["count"]), np.asarray(e["nll"]), np.asarray(e["count"]),
                           len(b["nll"]), tolerance)
            if moved.size:
                verdict.summary = (f"nondeterministic: two unflipped runs of the entry point differ in {e['name']} "
                                   f"(call {e['ordinal'] + 1}) at {moved.size} targets")
                verdict.seconds = time.perf_counter() - started
                return verdict
    lines = {(c["name"], c["ordinal"]): c.get("call_line") for c in calls}
    rng = np.random.default_rng(seed + 17)
    leaks: list[dict[str, Any]] = []
    positions = _flip_positions(calls, tokens, flips)
    for flip in positions:
        flipped = tokens.clone()
        true = int(tokens[flip + 1])
        wrong = int(rng.integers(fakedata.FIRST_NORMAL, vocab))
        flipped[flip + 1] = wrong if wrong != true else fakedata.FIRST_NORMAL + (true - fakedata.FIRST_NORMAL + 1) % 7
        try:
            after = {_key(e): e for e in child.request({"op": "pipeline", "tokens": flipped.tolist()})["calls"]}
        except ChildFailed as exc:
            verdict.summary, verdict.child_tail = f"the entry point failed on a flipped stream: {exc}", exc.tail
            verdict.seconds = time.perf_counter() - started
            return verdict
        for key, b in base.items():
            a = after.get(key)
            if a is None or a.get("nll") is None:
                continue
            moved = _moved(np.asarray(b["nll"]), np.asarray(b["count"]), np.asarray(a["nll"]), np.asarray(a["count"]),
                           flip, tolerance, np.asarray(b["times"]) if b.get("times") else None)
            if moved.size:
                delta = float(np.nan_to_num(np.asarray(a["nll"])[moved] - np.asarray(b["nll"])[moved]).max(initial=0.0))
                leaks.append({"call": key, "flip": flip, "moved": int(moved.size), "position": int(moved[0]),
                              "delta": delta, "call_line": lines.get(key)})
    verdict.seconds = time.perf_counter() - started
    verdict.capture = {"flips": len(positions), "flip_positions": positions, "calls": len(base)}
    if leaks:
        first_leak = leaks[0]
        name, ordinal = first_leak["call"]
        where = f" (called at line {first_leak['call_line']})" if first_leak.get("call_line") else ""
        verdict.status = Status.FAIL
        verdict.channels = ["context"]
        verdict.summary = (f"changing stream token {first_leak['flip'] + 1} moved {first_leak['moved']} earlier-scored "
                           f"target(s) of {name} call {ordinal + 1}{where}, e.g. target {first_leak['position']}: "
                           f"the model that scores them was adapted on, or calibrated with, tokens scored later "
                           f"({len({l['flip'] for l in leaks})}/{len(positions)} flips leaked)")
        verdict.positive_control = {"leaks": leaks[:8]}
    else:
        verdict.status = Status.PASS
        verdict.summary = (f"causal: {len(positions)} flips of the whole entry point left every earlier score of its "
                           f"{len(base)} scoring call(s) unchanged")
    return verdict


def _moved(b_nll: np.ndarray, b_count: np.ndarray, a_nll: np.ndarray, a_count: np.ndarray, upto: int,
           tol: float, times: np.ndarray | None = None) -> np.ndarray:
    """Targets before ``upto`` whose score moved; with ``times``, only those scored no later than it.

    Within one scoring call, a target scored after the flipped one (a document evaluated later
    by a score-first TTT) may depend on it; a call that re-scores earlier targets with a model an
    earlier call adapted is judged by its own order, so that dependence is still a leak.
    """
    b, a = b_nll[:upto], a_nll[:upto]
    bs, as_ = b_count[:upto] > 0, a_count[:upto] > 0
    both = bs & as_
    moved = (both & (np.abs(np.nan_to_num(a) - np.nan_to_num(b)) > tol)) | (bs != as_)
    if times is not None and 0 <= upto < times.size and times[upto] >= 0:
        moved &= times[:upto] <= times[upto]
    return np.flatnonzero(moved)


def _consumers(tree: ast.Module, scoring: list[str]) -> list[str]:
    from .analyze import val_consumers

    return [f"{c.callee} (line {c.line})" for c in val_consumers(tree, scoring)]
