"""Per-token NLL capture from a script's own eval function (runs inside the child).

A submission's eval computes its score through ``F.cross_entropy``. While it runs, every
call made without grad (the scoring pass; SLOT/TTT optimisation steps need grad) is recorded
per token, with the call site. Each captured row is mapped back to the audit stream by
matching its targets, so windows of any enumeration, padded tail windows and suffix-only rows
all land on the right target indices.

Which captured positions the function *scored* is inferred, not assumed: the scored-set rule
(every captured token, the records' sliding rule for a stride, or "first scoring only") and the
call site are chosen as the first combination whose rebuilt val_loss and val_bpb equal the
function's own return values. No combination reproducing them means the capture is refused.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

REL_TOL = 1e-6  # float32 NLLs summed in another order: far below any difference between rules


@dataclass
class Call:
    site: str  # "file:line" of the caller
    targets: np.ndarray  # (rows, L) int64
    nll: np.ndarray  # (rows, L) float64 (float32 values)
    logits: torch.Tensor | None = None  # (rows * L, V) the scored logits, kept for distribution rows


@dataclass
class Row:
    site: str
    offset: int  # target index of the row's first entry
    nll: np.ndarray  # matched entries only (padding dropped)
    call: int = -1  # index of the Call it came from
    row: int = -1  # row index inside that call

    def logprobs(self, calls: list[Call], j: int) -> np.ndarray | None:
        """Log-probability row that scored entry ``j`` (None when the call kept no logits)."""
        if self.call < 0 or calls[self.call].logits is None:
            return None
        width = calls[self.call].targets.shape[1]
        logits = calls[self.call].logits[self.row * width + j]
        return torch.log_softmax(logits.double(), dim=-1).numpy()


class CrossEntropyCapture:
    """Context manager: records no-grad ``F.cross_entropy`` calls token by token."""

    def __init__(self, row_len: int) -> None:
        self.row_len = row_len
        self.calls: list[Call] = []
        self._orig: Callable[..., torch.Tensor] | None = None

    def __enter__(self) -> "CrossEntropyCapture":
        self._orig = F.cross_entropy
        orig = self._orig

        def cross_entropy(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            if torch.is_grad_enabled() or target.dtype.is_floating_point:
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

    def __exit__(self, *exc: Any) -> None:
        F.cross_entropy = self._orig  # type: ignore[assignment]

    def _record(self, site: str, inputs: torch.Tensor, target: torch.Tensor, nll: torch.Tensor, ignore_index: int) -> None:
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
        if inputs.dim() == 2 and inputs.shape[0] == t.size:
            logits = inputs.detach().float().cpu()
        self.calls.append(Call(site, t.reshape(-1, width), v.reshape(-1, width), logits))


def match_rows(calls: list[Call], stream_targets: np.ndarray, key: int = 4) -> tuple[list[Row], int]:
    """Place each captured row on the stream; returns (rows, number of unmatched rows).

    A row matches at offset o when its entries equal the stream's targets from o on; entries
    past the stream's end are padding (tail windows). A row matching nowhere, or at two
    places, is unmatched.
    """
    n = stream_targets.size
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(n - key + 1):
        index.setdefault(tuple(stream_targets[i:i + key].tolist()), []).append(i)
    rows: list[Row] = []
    unmatched = 0
    for ci, call in enumerate(calls):
        for ri, (tgt, nll) in enumerate(zip(call.targets, call.nll)):
            length = tgt.size
            if length >= key:
                candidates = index.get(tuple(tgt[:key].tolist()), [])
            else:
                candidates = [i for i in range(n - length + 1) if np.array_equal(stream_targets[i:i + length], tgt)]
            fits = []
            for o in candidates:
                avail = min(length, n - o)
                eq = stream_targets[o:o + avail] == tgt[:avail]
                m = avail if eq.all() else int(np.argmin(eq))
                if m == length or (m == avail and o + m == n):
                    fits.append((o, m))
            if len(fits) != 1:
                unmatched += 1
                continue
            o, m = fits[0]
            rows.append(Row(call.site, o, nll[:m], ci, ri))
    return rows, unmatched


@dataclass
class Rule:
    """Which entries of each captured row count as scored."""

    kind: str  # "all" | "sliding" | "first"
    stride: int = 0
    site: str = ""  # "" = every call site

    def describe(self) -> str:
        where = f" at {self.site}" if self.site else ""
        return (f"sliding (stride {self.stride})" if self.kind == "sliding" else
                {"all": "every captured token", "first": "first scoring of each target"}[self.kind]) + where


def apply_rule(rule: Rule, rows: list[Row], num_targets: int, scored_by: dict[int, tuple[Row, int]] | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """(nll, count, scorings) where scorings lists (first target index, nll values) in order.

    ``scored_by``, when given, is filled with target index -> (row, entry) of its last scoring.
    """
    nll = np.full(num_targets, np.nan)
    count = np.zeros(num_targets, dtype=np.int64)
    scorings = []
    covered = 0
    for row in rows:
        if rule.site and row.site != rule.site:
            continue
        m = row.nll.size
        if rule.kind == "all":
            start = 0
        elif rule.kind == "sliding":
            start = 0 if row.offset == 0 else max(m - rule.stride, 0)
        else:
            start = min(max(covered - row.offset, 0), m)
        covered = max(covered, row.offset + m)
        vals = row.nll[start:]
        pos = np.arange(row.offset + start, row.offset + m)
        nll[pos] = vals
        np.add.at(count, pos, 1)
        scorings.append((row.offset + start, vals))
        if scored_by is not None:
            for j in range(start, m):
                scored_by[row.offset + j] = (row, j)
    return nll, count, scorings


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


def candidate_rules(rows: list[Row], strides: list[int]) -> list[Rule]:
    sites = sorted({r.site for r in rows})
    out = []
    for site in [""] + (sites if len(sites) > 1 else []):
        out.append(Rule("all", site=site))
        out.extend(Rule("sliding", s, site) for s in dict.fromkeys(strides) if s > 0)
        out.append(Rule("first", site=site))
    return out
