"""Per-token NLL capture from a script's own eval function (runs inside the child).

A submission's eval computes its score through ``F.cross_entropy`` (or its fused form,
``logsumexp(logits) - logits.gather(target)``). While a scoring function
runs, every call is recorded per token with its call site and whether grad was on (score-first
TTT scores inside the forward it then trains on). Each captured row is mapped back to the audit
stream by matching its targets, so windows of any enumeration, padded windows (a constant tail)
and suffix-only rows all land on the right target indices.

Which captured positions the function *scored* is inferred, not assumed: the scored-set rule
(every captured token, the records' sliding rule for a stride, the first or the last scoring
of each target, and last of all the final pass over each target: multi-epoch TTT that keeps
only the last epoch's losses), the call site and the grad filter are chosen as the first
combination whose rebuilt val_loss (and val_bpb) equals the function's own return values. No combination
reproducing the loss means the capture is refused.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

REL_TOL = 1e-6  # float32 NLLs summed in another order: far below any difference between rules
MAX_KEPT_LOGITS = 1 << 22  # logits kept per call for distribution rows (floats)


@dataclass
class Call:
    site: str  # "file:line" of the caller
    targets: np.ndarray  # (rows, L) int64 (-1 where ignore_index)
    nll: np.ndarray  # (rows, L) float64 (float32 values)
    logits: torch.Tensor | None = None  # (rows * L, V) the scored logits, kept for distribution rows
    grad: bool = False  # computed with grad enabled


@dataclass
class Row:
    site: str
    offset: int  # target index of the row's first entry
    nll: np.ndarray  # matched entries only (padding dropped)
    call: int = -1  # index of the Call it came from
    row: int = -1  # flat index (into the call's targets) of the row's first entry
    grad: bool = False

    def logprobs(self, calls: list[Call], j: int) -> np.ndarray | None:
        """Log-probability row that scored entry ``j`` (None when the call kept no logits)."""
        if self.call < 0 or calls[self.call].logits is None:
            return None
        # ``row`` is the flat index of the row's first entry inside its call
        logits = calls[self.call].logits[self.row + j]
        return torch.log_softmax(logits.double(), dim=-1).numpy()


class CrossEntropyCapture:
    """Context manager: records ``F.cross_entropy`` calls token by token.

    With ``producers`` (source files of the script and its helper modules), it also records every
    function of those files that returns a float tensor shaped like one of its integer-tensor
    arguments (``mix_and_score(logits, x, y) -> nll[y.shape]``, a tilt applied to the per-token
    loss): scores computed by hand around the cross entropy are captured where they are made.
    """

    def __init__(self, row_len: int, producers: set[str] | None = None) -> None:
        self.row_len = row_len
        self.calls: list[Call] = []
        self._orig: Callable[..., torch.Tensor] | None = None
        self.producers = producers or set()
        self._prev_profile: Any = None
        self._starts: dict[int, int] = {}  # producer frame -> number of calls recorded when it began

    def __enter__(self) -> "CrossEntropyCapture":
        self._orig = F.cross_entropy
        orig = self._orig
        self._lse_orig, self._gather_orig = torch.logsumexp, torch.Tensor.gather
        lse_of: dict[int, torch.Tensor] = {}
        capture = self

        def logsumexp(input: torch.Tensor, dim: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
            out = capture._lse_orig(input, dim, *args, **kwargs)
            if input.dim() == 2 and dim in (-1, 1) and not args and not kwargs.get("keepdim"):
                lse_of.clear()  # only the latest one: the scoring pattern reads it right away
                lse_of[id(input)] = out
            return out

        def gather(self_t: torch.Tensor, dim: int, index: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            out = capture._gather_orig(self_t, dim, index, *args, **kwargs)
            lse = lse_of.get(id(self_t))
            if lse is not None and dim in (1, -1) and index.dim() == 2 and index.shape[1] == 1 \
                    and not index.dtype.is_floating_point:
                # the "fused CE": nll = logsumexp(logits) - logits[target]
                frame = sys._getframe(1)
                capture._record(f"{frame.f_code.co_filename}:{frame.f_lineno}", self_t, index.reshape(-1),
                                lse - out.reshape(-1), -100)
                lse_of.clear()
            return out

        torch.logsumexp = logsumexp  # type: ignore[assignment]
        torch.Tensor.gather = gather  # type: ignore[method-assign]
        if self.producers:
            self._prev_profile = sys.getprofile()
            sys.setprofile(self._profile)

        def cross_entropy(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if target.dtype.is_floating_point or args:
                return orig(input, target, *args, **kwargs)
            reduction = kwargs.pop("reduction", "mean")
            per_token = orig(input, target, *args, reduction="none", **kwargs)
            frame = sys._getframe(1)
            self._record(f"{frame.f_code.co_filename}:{frame.f_lineno}", input, target, per_token,
                         kwargs.get("ignore_index", -100))
            if reduction == "none":
                return per_token
            kept = per_token[target != kwargs.get("ignore_index", -100)]
            return kept.sum() if reduction == "sum" else kept.mean()

        F.cross_entropy = cross_entropy
        return self

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if frame.f_code.co_filename not in self.producers:
            return
        if event == "call":
            self._starts[id(frame)] = len(self.calls)
            return
        if event != "return":
            return
        start = self._starts.pop(id(frame), len(self.calls))
        out = arg[0] if isinstance(arg, tuple) and arg else arg
        if not isinstance(out, torch.Tensor) or not out.dtype.is_floating_point or out.dim() == 0:
            return
        values = out.detach().reshape(-1).float().double().cpu().numpy()
        if any(c.nll.size == values.size and np.array_equal(c.nll.reshape(-1), values) for c in self.calls[start:]):
            return  # a forward returning its own cross entropy: that scoring is recorded already
        code = frame.f_code
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        shaped = [name for name in names if _int_like(frame.f_locals.get(name), out.shape)]
        if not shaped:
            return
        # (logits, x, y) or (ptl, target_ids, hint_ids): the argument named as the targets wins,
        # else the first one shaped like the output
        name = next((n for n in shaped if TARGET_NAME.search(n)), shaped[0])
        t = frame.f_locals[name]
        target = t.reshape(-1, t.shape[-1]) if t.dim() >= 2 else t.reshape(1, -1)
        # a hand-made score keeps no row: its output is the score itself, not logits over the vocabulary
        # (a width-1 "row" would sum to 1 whatever was scored)
        self._record(f"{code.co_filename}:{code.co_name}", out.detach().reshape(-1, 1),
                     target, out.detach().reshape(target.shape), -100, keep_logits=False)

    def __exit__(self, *exc: Any) -> None:
        if self.producers:
            sys.setprofile(self._prev_profile)
        F.cross_entropy = self._orig  # type: ignore[assignment]
        torch.logsumexp = self._lse_orig  # type: ignore[assignment]
        torch.Tensor.gather = self._gather_orig  # type: ignore[method-assign]

    def _record(self, site: str, inputs: torch.Tensor, target: torch.Tensor, nll: torch.Tensor, ignore_index: int,
                keep_logits: bool = True) -> None:
        t = target.detach().reshape(-1).long().cpu().numpy()
        v = nll.detach().reshape(-1).float().double().cpu().numpy()
        if target.dim() >= 2:
            width = target.shape[-1]
        elif self.row_len and t.size % self.row_len == 0:
            width = self.row_len
        else:
            width = max(t.size, 1)
        t = np.where(t == ignore_index, -1, t)
        logits = None
        if keep_logits and inputs.dim() == 2 and inputs.shape[0] == t.size and inputs.numel() <= MAX_KEPT_LOGITS:
            logits = inputs.detach().float().cpu()
        self.calls.append(Call(site, t.reshape(-1, width), v.reshape(-1, width), logits, torch.is_grad_enabled()))


TARGET_NAME = re.compile(r"^(y|ys|y_.*|.*_y|tgt.*|.*target.*|labels?)$", re.I)


def _int_like(t: Any, shape: torch.Size) -> bool:
    """An integer (token id) tensor of ``shape``."""
    return isinstance(t, torch.Tensor) and not t.dtype.is_floating_point and t.dtype != torch.bool and t.shape == shape


def match_rows(calls: list[Call], stream_targets: np.ndarray, key: int = 4) -> tuple[list[Row], int]:
    """Place each captured row on the stream; returns (rows, number of unmatched entries' runs).

    A call's targets are read as one sequence and cut into maximal runs that are contiguous in
    the stream: a flattened batch (``F.cross_entropy`` on ``[B*T]`` targets), windows of any
    length, padded windows (entries that match nowhere: a constant pad, ignore_index) and rows
    running past the stream's end all come out as the rows they are. A run is placed by its
    first ``key`` targets (unique in the audit stream) and extended while it keeps matching.
    """
    n = stream_targets.size
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(n - key + 1):
        index.setdefault(tuple(stream_targets[i:i + key].tolist()), []).append(i)
    rows: list[Row] = []
    unmatched = 0
    for ci, call in enumerate(calls):
        width = call.targets.shape[1]
        for ri, (tgt, nll) in enumerate(zip(call.targets, call.nll)):
            pos, lost = 0, False
            while pos < tgt.size:
                if tgt[pos] < 0:
                    pos += 1
                    continue
                cand = index.get(tuple(tgt[pos:pos + key].tolist()), []) if pos + key <= tgt.size else []
                if len(cand) != 1:
                    lost = lost or (pos + key <= tgt.size and not _is_pad(tgt, pos))
                    pos += 1
                    continue
                o = cand[0]
                m = key
                while pos + m < tgt.size and o + m < n and tgt[pos + m] == stream_targets[o + m]:
                    m += 1
                rows.append(Row(call.site, o, nll[pos:pos + m], ci, ri * width + pos, call.grad))
                pos += m
            unmatched += int(lost)
    return rows, unmatched


def _is_pad(tgt: np.ndarray, pos: int) -> bool:
    """Entries from ``pos`` on are one repeated value (a padded window's tail)."""
    return bool(np.all(tgt[pos:] == tgt[pos]))


@dataclass
class Rule:
    """Which entries of each captured row count as scored."""

    kind: str  # "all" | "sliding" | "tail" | "first" | "last" | "final"
    stride: int = 0
    site: str = ""  # "" = every call site
    grad: str = "no-grad"  # "no-grad": rows computed without grad only; "any": every row

    def describe(self) -> str:
        where = f" at {self.site}" if self.site else ""
        which = "" if self.grad == "no-grad" else " (grad-enabled forwards included)"
        return (f"sliding (stride {self.stride})" if self.kind == "sliding" else
                f"last {self.stride} of every window" if self.kind == "tail" else
                {"all": "every captured token", "first": "first scoring of each target",
                 "last": "last scoring of each target",
                 "final": "each target's scoring in the final pass over it"}[self.kind]) + where + which


def apply_rule(rule: Rule, rows: list[Row], num_targets: int, scored_by: dict[int, tuple[Row, int]] | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """(nll, count, scorings) where scorings lists (first target index, nll values) in capture order.

    ``scored_by``, when given, is filled with target index -> (row, entry) of its scoring.
    """
    nll = np.full(num_targets, np.nan)
    count = np.zeros(num_targets, dtype=np.int64)
    kept = [r for r in rows if (not rule.site or r.site == rule.site) and (rule.grad == "any" or not r.grad)]
    seen = np.zeros(num_targets, dtype=bool)
    order = range(len(kept) - 1, -1, -1) if rule.kind in ("last", "final") else range(len(kept))
    fresh = _pass_masks(kept, num_targets) if rule.kind == "final" else []
    by_row: dict[int, np.ndarray] = {}
    for k in order:
        row = kept[k]
        m = row.nll.size
        pos = np.arange(row.offset, row.offset + m)
        if rule.kind == "all":
            mask = np.ones(m, dtype=bool)
        elif rule.kind in ("sliding", "tail"):
            mask = np.zeros(m, dtype=bool)
            mask[0 if (row.offset == 0 and rule.kind == "sliding") else max(m - rule.stride, 0):] = True
        elif rule.kind == "final":  # the latest pass's scoring of each target
            mask = fresh[k] & ~seen[pos]
            seen[pos] |= fresh[k]
        else:
            mask = ~seen[pos]
            seen[pos] = True
        by_row[k] = mask
    scorings = []
    for k, row in enumerate(kept):
        mask = by_row[k]
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        for part in np.split(idx, breaks):
            vals = row.nll[part]
            pos = row.offset + part
            nll[pos] = vals
            np.add.at(count, pos, 1)
            scorings.append((int(pos[0]), vals))
            if scored_by is not None:
                for j in part:
                    scored_by[row.offset + int(j)] = (row, int(j))
    return nll, count, scorings


def _pass_masks(rows: list[Row], num_targets: int) -> list[np.ndarray]:
    """Per row (capture order), the entries it scores when the rows are read as passes over the stream.

    A row that extends the latest earlier row overlapping it forward (same start or later, new
    positions past that row's end: the next window of a sliding or chunked pass) scores only its
    new positions; the overlap is context it re-reads. Any other row (nothing overlapping it
    before, or one that goes back or adds no new position: a new epoch, a second pass) scores
    every entry. Each target is then scored once per pass over it.
    """
    latest = np.full(num_targets, -1, dtype=np.int64)  # the last row that covered each target
    out = []
    for k, row in enumerate(rows):
        a, m = row.offset, row.nll.size
        b = a + m
        mask = np.ones(m, dtype=bool)
        prev = int(latest[a:b].max()) if m else -1
        if prev >= 0:
            pa, pb = rows[prev].offset, rows[prev].offset + rows[prev].nll.size
            if pa <= a < pb < b:
                mask[:pb - a] = False
        latest[a:b] = k
        out.append(mask)
    return out


def totals(scorings: list[tuple[int, np.ndarray]], inputs: np.ndarray, targets: np.ndarray,
           luts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float, int, int]:
    """(nll_sum, tokens, bytes) over every scoring, duplicates included, as the records count."""
    base, space, boundary = luts
    nll_sum, tokens, nbytes = 0.0, 0, 0
    for start, vals in scorings:
        pos = np.arange(start, start + vals.size)
        nll_sum += float(vals.sum())
        tokens += int(vals.size)
        y, prev = targets[pos], inputs[pos]
        nbytes += int((base[y] + (space[y] & ~boundary[prev])).sum())
    return nll_sum, tokens, nbytes


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b), 1e-12)


def row_strides(rows: list[Row]) -> list[int]:
    """Strides the rows themselves suggest: the common gaps between consecutive row offsets."""
    gaps: dict[int, int] = {}
    for a, b in zip(rows, rows[1:]):
        d = b.offset - a.offset
        if d > 0:
            gaps[d] = gaps.get(d, 0) + 1
    return [d for d, _ in sorted(gaps.items(), key=lambda kv: -kv[1])[:3]]


def candidate_rules(rows: list[Row], strides: list[int]) -> list[Rule]:
    sites = sorted({r.site for r in rows})
    grads = ["no-grad"] + (["any"] if any(r.grad for r in rows) else [])
    out = []
    strides = list(dict.fromkeys([s for s in strides if s > 0] + row_strides(rows)))
    for grad in grads:
        for site in [""] + (sites if len(sites) > 1 else []):
            out.append(Rule("all", site=site, grad=grad))
            out.extend(Rule("sliding", s, site, grad) for s in strides)
            out.extend(Rule("tail", s, site, grad) for s in strides)
            out.append(Rule("first", site=site, grad=grad))
            out.append(Rule("last", site=site, grad=grad))
    # Last resort, after every rule above: only the final pass over each target counts (multi-epoch
    # per-document TTT that keeps the last epoch's losses). Earlier rules win where they reproduce.
    out.extend(Rule("final", site=site, grad=grad) for grad in grads
               for site in [""] + (sites if len(sites) > 1 else []))
    return out


@dataclass
class ScoredSet:
    """The scored set of one eval run, as inferred (or as a fixed rule dictates)."""

    rule: Rule
    nll: np.ndarray
    count: np.ndarray
    scorings: list[tuple[int, np.ndarray]]
    scored_by: dict[int, tuple[Row, int]]
    nll_sum: float
    tokens: int
    nbytes: int
    bpb_matches: bool
    unmatched: int = 0

    def times(self) -> np.ndarray:
        """When each target was scored: the index of the captured call that scored it (-1: never)."""
        out = np.full(self.nll.size, -1, dtype=np.int64)
        for target, (row, _j) in self.scored_by.items():
            out[target] = row.call
        return out

    @property
    def rebuilt_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def rebuilt_bpb(self) -> float:
        return self.nll_sum / np.log(2.0) / self.nbytes if self.nbytes else float("nan")


def infer(rows: list[Row], returned: tuple[float | None, float | None], num_targets: int, inputs: np.ndarray,
          targets: np.ndarray, luts: tuple[np.ndarray, np.ndarray, np.ndarray], strides: list[int],
          rule: Rule | None = None) -> tuple[ScoredSet | None, str]:
    """The first rule whose rebuilt val_loss (and val_bpb) equals what the function returned.

    A rule that reproduces the loss but not the bpb is accepted when nothing reproduces both:
    the capture is proven by the loss, and the script's byte accounting differs from the
    canonical one (GA-BPB's concern, reported here as a note). ``(None, why)`` when nothing fits.
    """
    loss, bpb = returned
    if loss is None and bpb is None:
        return None, "the function returned no val_loss/val_bpb to check the capture against"
    candidates = [rule] if rule is not None else candidate_rules(rows, strides)
    loss_only: ScoredSet | None = None
    for cand in candidates:
        scored_by: dict[int, tuple[Row, int]] = {}
        nll, count, scorings = apply_rule(cand, rows, num_targets, scored_by)
        if not scorings:
            continue
        nll_sum, ntok, nbytes = totals(scorings, inputs, targets, luts)
        found = ScoredSet(cand, nll, count, scorings, scored_by, nll_sum, ntok, nbytes, True)
        loss_ok = loss is None or close(loss, found.rebuilt_loss)
        bpb_ok = bpb is None or close(bpb, found.rebuilt_bpb)
        found.bpb_matches = bpb_ok
        if loss_ok and bpb_ok:
            return found, ""
        if loss_ok and loss is not None and loss_only is None:
            loss_only = found
    if loss_only is not None:
        return loss_only, ""
    what = f"the fixed rule {rule.describe()}" if rule is not None else f"any of {len(candidates)} scored-set rules"
    return None, f"captured NLLs do not reproduce the function's val_loss={loss} val_bpb={bpb} under {what}"
