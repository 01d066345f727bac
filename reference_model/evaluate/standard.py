"""``standard``: non-overlapping windows of ``seq_len`` (DOMAIN.md §3), the seed's ``eval_val``.

Every target is scored once; context restarts at each window boundary, so the first targets
of every window see little context (this is why the records moved to sliding windows).

As the seed: the windows are split across ranks contiguously and run ``batch`` at a time,
``batch`` defaulting to the seed's ``VAL_BATCH_SIZE // (world_size * grad_accum) // seq_len``
with grad_accum = 8 // world_size; and the total is the seed's: each batch's fp32 mean NLL
times its token count, summed in float64 (per-target NLLs are kept exactly as well). A
stream not cut to a multiple of ``seq_len`` ends in a shorter window; the seed's val stream
never has one (it is truncated first), so on it nothing differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, Window, register, split_stream
from .common import TAILS, check_choice, dist_info, iter_scored_logits, rank_share, resolve_geometry

SEED_GRAD_ACCUM_TOTAL = 8  # the seed's grad_accum_steps = 8 // world_size


def seed_batch_seqs(val_batch_size: int, seq_len: int, world: int = 1) -> int:
    """Sequences per rank and batch in the seed's eval_val (at least 1)."""
    accum = max(1, SEED_GRAD_ACCUM_TOTAL // world)
    return max(1, val_batch_size // (world * accum) // seq_len)


def seed_val_batch_seqs(model: torch.nn.Module, seq_len: int) -> int:
    """``seed_batch_seqs`` for this model's VAL_BATCH_SIZE and the current world size."""
    hp = getattr(model, "hp", None)
    _, world = dist_info()
    return seed_batch_seqs(hp.val_batch_size if hp is not None else 524_288, seq_len, world)


@dataclass
class StandardSettings:
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN
    batch: int = 0  # windows per forward pass; 0 = the seed's VAL_BATCH_SIZE rule (sets how the total is summed)
    tail: str = "records"  # once|records; non-overlapping windows never re-score, so both agree

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        if self.batch < 0:
            raise ValueError(f"setting batch={self.batch} must be >= 0")


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
        batch = s.batch or seed_val_batch_seqs(model, seq_len)
        for sb in iter_scored_logits(model, inputs, rank_share(windows), batch, pad_to=seq_len):
            y = tgt[sb.targets_idx].to(sb.logits.device)
            nll = F.cross_entropy(sb.logits, y, reduction="none")
            mean = F.cross_entropy(sb.logits, y, reduction="mean")  # the seed's per-batch loss, fp32
            acc.add(sb.targets_idx, nll, lambda idx, lg=sb.logits: torch.log_softmax(lg[idx], dim=-1),
                    window_start=sb.window_start, total=float(mean.double()) * y.numel())
        return acc.finish(evaluator=self.describe(), windows=len(windows))
