"""``sliding``: the challenge's sliding-window evaluation (DOMAIN.md §3).

A window starts at every multiple of ``stride``; each window scores only its last ``stride``
targets (the first window scores all of its own), so every scored target after the first
window sees at least ``seq_len - stride`` tokens of context. ``tail=records`` re-scores the
final targets exactly as the records do; ``tail=once`` scores each target exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, Window, register, split_stream
from .common import TAILS, check_choice, check_positive, iter_scored_logits, nll_from_logits, rank_share, sliding_windows


def score_windows(acc: ScoreAccumulator, model: torch.nn.Module, windows: Sequence[Window], batch: int) -> None:
    """Score ``windows`` with ``model`` into ``acc`` (no adaptation); the common inner loop."""
    for tpos, logits in iter_scored_logits(model, acc.inputs, windows, batch):
        nll = nll_from_logits(logits, acc.targets[tpos])
        acc.add(tpos, nll, lambda idx, lg=logits: torch.log_softmax(lg[idx], dim=-1))


@dataclass
class SlidingSettings:
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN (2048 in the seed)
    stride: int = 0  # step between window starts; 0 = the model's EVAL_STRIDE (64 in the seed)
    batch: int = 32  # windows per forward pass
    tail: str = "once"  # once: every target scored once; records: re-score the tail as the records do

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
        windows = sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        score_windows(acc, model, rank_share(windows), s.batch)
        return acc.finish(evaluator=self.describe(), windows=len(windows))
