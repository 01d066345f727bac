"""``sliding``: the challenge's sliding-window evaluation (DOMAIN.md §3).

A window starts at every multiple of ``stride``; each window scores only its last ``stride``
targets (the first window scores all of its own), so every scored target after the first
window sees at least ``seq_len - stride`` tokens of context. As the seed: windows are padded
to ``seq_len``, batched ``batch`` at a time, and split across ranks contiguously.

``tail=records`` (default) is the seed's enumeration: windows continue to the end of the
stream, so tail windows re-score the final targets (counted twice in the totals, as the
records count them). ``tail=once`` is our exact variant: each target scored exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, Window, register, split_stream
from .common import (TAILS, ScoredBatch, check_choice, check_positive, iter_scored_logits, nll_from_logits, rank_share,
                     resolve_geometry, sliding_windows)


def add_scored_batch(acc: ScoreAccumulator, sb: ScoredBatch) -> None:
    """Score one batch's logits against ``acc``'s targets."""
    nll = nll_from_logits(sb.logits, acc.targets[sb.targets_idx])
    acc.add(sb.targets_idx, nll, lambda idx, lg=sb.logits: torch.log_softmax(lg[idx], dim=-1), window_start=sb.window_start)


def score_windows(acc: ScoreAccumulator, model: torch.nn.Module, windows: Sequence[Window], batch: int,
                  pad_to: int = 0) -> None:
    """Score ``windows`` with ``model`` into ``acc`` (no adaptation); the common inner loop."""
    for sb in iter_scored_logits(model, acc.inputs, windows, batch, pad_to):
        add_scored_batch(acc, sb)


@dataclass
class SlidingSettings:
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN (2048 in the seed)
    stride: int = 0  # step between window starts; 0 = the model's EVAL_STRIDE (64 in the seed)
    batch: int = 32  # windows per forward pass (the seed's batch_seqs)
    tail: str = "records"  # records: the seed's enumeration (re-scores the tail) | once: every target scored once

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        check_positive(batch=self.batch)


@register
class Sliding(Evaluator):
    name = "sliding"
    Settings = SlidingSettings
    summary = "sliding windows; each window scores its last `stride` targets"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        inputs, tgt = split_stream(tokens, targets)
        seq_len, stride = resolve_geometry(model, s.seq_len, s.stride)
        windows = sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        if s.tail == "records":
            acc.count_once(tgt.numel(), seq_len, stride)
        score_windows(acc, model, rank_share(windows), s.batch, pad_to=seq_len)
        return acc.finish(evaluator=self.describe(), windows=len(windows))
