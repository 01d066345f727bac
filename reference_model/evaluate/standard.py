"""``standard``: non-overlapping windows of ``seq_len`` (DOMAIN.md §3).

Every target is scored once; context restarts at each window boundary, so the first targets
of every window see little context (this is why the records moved to sliding windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, Window, register, split_stream
from .common import TAILS, check_choice, check_positive, rank_share, resolve_geometry
from .sliding import score_windows


@dataclass
class StandardSettings:
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN
    batch: int = 32  # windows per forward pass
    tail: str = "once"  # once|records; non-overlapping windows never re-score, so both agree

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        check_positive(batch=self.batch)


@register
class Standard(Evaluator):
    name = "standard"
    Settings = StandardSettings
    summary = "non-overlapping windows of seq_len, each target scored once"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        inputs, tgt = split_stream(tokens, targets)
        seq_len, _ = resolve_geometry(model, s.seq_len, 1)
        n = tgt.numel()
        windows = [Window(a, min(a + seq_len, n), a) for a in range(0, n, seq_len)]
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        score_windows(acc, model, rank_share(windows), s.batch)
        return acc.finish(evaluator=self.describe(), windows=len(windows))
