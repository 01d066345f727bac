"""The cross-document flip test (GA-DOC): does document k's score depend on document k-1?

A future-token flip test cannot see a dependence on *earlier* tokens, and there is none to see
in a plain language model: every position may read the whole past. An evaluator that claims
document isolation (BOS-split varlen attention, per-document TTT, a BOS-masked previous-token
smear) promises more: the scores of document k depend only on document k. The test changes the
last tokens of document k-1 (never the BOS that starts document k) and requires every score of
document k, from its BOS position on, to stay bit-identical, except scores given *after*
document k-1 was scored (when the source says when it scored what): a score-first TTT may
adapt on a scored document, and that is adaptation, not state crossing the boundary. Document k-1's own next-token
target after the change (the position predicting document k's BOS) must move: that positive
control proves the change reached the evaluator.

Works on any ``NllSource`` (reference evaluators and a submission's replayed scoring call
alike); a source that can trace per-module activations (``trace_document``) lets the failure
name where the dependence entered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

FLIPPED_TAIL = 3  # tokens changed at the end of document k-1
DOCS_TESTED = 2


@dataclass
class DocPair:
    """One tested boundary: document k starts at stream index ``bos``."""

    bos: int  # stream index of document k's BOS
    flipped: list[int]  # stream indices changed (the end of document k-1)
    targets: int  # scored targets of document k
    moved: int  # of them, how many moved beyond the tolerance
    max_abs_delta: float
    first_moved: int | None  # target index
    control_moved: bool  # the target predicting document k's BOS moved


@dataclass
class DocFlipResult:
    status: str  # "pass" | "fail" | "error" | "not-applicable"
    summary: str
    pairs: list[DocPair] = field(default_factory=list)
    mechanism: str = ""  # where the dependence entered, when the source could trace it


def documents(tokens: torch.Tensor, bos_id: int) -> list[tuple[int, int]]:
    """(start, end) stream indices of each BOS-led document (end exclusive)."""
    t = tokens.reshape(-1)
    starts = (t == bos_id).nonzero(as_tuple=True)[0].tolist()
    return [(s, starts[i + 1] if i + 1 < len(starts) else t.numel()) for i, s in enumerate(starts)]


def pick_boundaries(docs: list[tuple[int, int]], scored: np.ndarray, count: int = DOCS_TESTED,
                    order: np.ndarray | None = None) -> list[int]:
    """BOS indices of documents k (k >= 1) whose predecessor is long enough and that are scored.

    With ``order`` (scoring times), document k must have scores given no later than its
    predecessor's end: only those can show state crossing the boundary rather than adaptation.
    """
    good = []
    for k in range(1, len(docs)):
        prev_start, prev_end = docs[k - 1]
        start, end = docs[k]
        span = np.arange(start, min(end, scored.size))
        live = scored[span]
        if order is not None and order[start - 1] >= 0:
            live &= order[span] <= order[start - 1]
        if prev_end - prev_start > FLIPPED_TAIL + 4 and end - start > 4 and live.any():
            good.append(start)
    if len(good) <= count:
        return good
    idx = np.linspace(0, len(good) - 1, count).round().astype(int)
    return [good[i] for i in idx]


def doc_flip_test(source: Any, tokens: torch.Tensor, bos_id: int, first_normal: int, vocab: int, tolerance: float,
                  seed: int = 0, trace: Callable[[torch.Tensor, torch.Tensor, Sequence[int]], str] | None = None
                  ) -> DocFlipResult:
    """Run the test on ``source`` (``run(tokens) -> Scored``); ``trace`` names the mechanism on a failure."""
    tokens = tokens.reshape(-1).long()
    docs = documents(tokens, bos_id)
    if len(docs) < 2:
        return DocFlipResult("error", "the audit stream holds fewer than two documents")
    base = source.run(tokens)
    scored = base.count > 0
    times = getattr(source, "scoring_times", None)
    order = times(base.nll.size) if times is not None else None
    order = None if order is None else np.asarray(order)
    boundaries = pick_boundaries(docs, scored, order=order)
    if not boundaries:
        why = " scored no later than its predecessor" if order is not None else ""
        return DocFlipResult("error", f"no document boundary with a scored document after it{why}: every document "
                             "is scored after the one before it, so a dependence cannot be told from adaptation")
    rng = np.random.default_rng(seed + 29)
    pairs = []
    failing: tuple[torch.Tensor, list[int]] | None = None
    ends = {s: e for s, e in docs}
    streams = []
    for bos in boundaries:
        flipped = tokens.clone()
        idx = list(range(bos - FLIPPED_TAIL, bos))
        for i in idx:
            new = int(rng.integers(first_normal, vocab))
            flipped[i] = new if new != int(tokens[i]) else first_normal + (new - first_normal + 1) % (vocab - first_normal)
        streams.append((bos, idx, flipped))
    # a source that can run several streams at once (two children) does; the results are the same
    many = getattr(source, "run_many", None)
    afters = many([f for _, _, f in streams]) if many is not None else [source.run(f) for _, _, f in streams]
    recheck = getattr(source, "recheck", None)  # a result from a second child: its change needs the first's word

    def compare(bos: int, after: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        end = min(ends[bos], base.nll.size)
        t = np.arange(bos, end)  # targets of document k: from its BOS position on
        t = t[scored[t] & (after.count[t] > 0)]
        if order is not None and order[bos - 1] >= 0:
            # scored after document k-1's end was: adaptation on scored tokens may carry it (score-first TTT)
            t = t[order[t] <= order[bos - 1]]
        delta = np.abs(np.nan_to_num(after.nll[t]) - np.nan_to_num(base.nll[t]))
        return t, delta, t[delta > tolerance]

    for (bos, idx, flipped), after in zip(streams, afters):
        t, delta, moved = compare(bos, after)
        if moved.size and recheck is not None and recheck(after):
            after = source.confirm(flipped)
            t, delta, moved = compare(bos, after)
        control = bos - 1
        control_moved = bool(scored[control] and abs(after.nll[control] - base.nll[control]) > tolerance)
        pairs.append(DocPair(bos, idx, int(t.size), int(moved.size), float(delta.max(initial=0.0)),
                             int(moved[0]) if moved.size else None, control_moved))
        if moved.size and failing is None:
            failing = (flipped, t.tolist())
    leaked = [p for p in pairs if p.moved]
    blind = [p for p in pairs if not p.control_moved]
    if leaked:
        p = leaked[0]
        mechanism = trace(tokens, failing[0], failing[1]) if (trace is not None and failing is not None) else ""
        where = f"; {mechanism}" if mechanism else ""
        return DocFlipResult("fail", f"changing the last {FLIPPED_TAIL} tokens of the document before stream index "
                             f"{p.bos} moved {p.moved}/{p.targets} scores of the next document (first at target "
                             f"{p.first_moved}, max |ΔNLL| {p.max_abs_delta:.3g}): state crosses the document "
                             f"boundary ({len(leaked)}/{len(pairs)} boundaries){where}", pairs, mechanism)
    if len(blind) == len(pairs):
        return DocFlipResult("error", "the positive control failed: changing the end of a document never moved the "
                             "score that reads it, so the change did not reach the evaluator", pairs)
    return DocFlipResult("pass", f"{len(pairs)} document boundaries: changing the end of document k-1 left every "
                         f"score of document k unchanged ({sum(p.targets for p in pairs)} targets)", pairs)
