"""``ttt``: chunked test-time training on the validation stream (DOMAIN.md §3).

The stream's targets are cut into chunks of ``chunk`` tokens; each sliding window belongs to
the chunk holding its first scored target. For chunk c (in order), on a deep copy of the model:

  order=score_first (legal):  score chunk c's windows under no-grad, then train on chunk c;
                              chunk c is only ever trained on after every target in it was
                              scored (the last chunk is not trained on: nothing is left to score).
  order=train_first (leaky):  train on chunk c, then score it: targets help predict themselves.

Training: SGD with momentum over ``epochs`` passes of the chunk cut into ``seq_len`` sequences,
lr cosine across chunks (``lr`` at chunk 0), the first ``freeze_blocks`` blocks frozen, grads
clipped to ``grad_clip`` and, under torch.distributed, averaged across ranks.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, register, split_stream
from .common import (TAILS, batched, check_choice, check_positive, dist_info, frozen_copy, iter_scored_logits, model_device,
                     rank_share, resolve_geometry, sliding_windows)
from .memo import memoized, tensor_key
from .sliding import add_scored_batch


def clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


@dataclass
class TTTSettings:
    order: str = "score_first"  # score_first (legal) | train_first (adapts on a chunk before scoring it)
    chunk: int = 32_768  # tokens per chunk
    lr: float = 0.002  # SGD lr at the first chunk; cosine decay across chunks
    momentum: float = 0.9  # SGD momentum
    epochs: int = 3  # passes over each chunk
    freeze_blocks: int = 0  # the first N transformer blocks stay frozen
    grad_clip: float = 1.0  # global grad-norm clip (0 disables)
    batch: int = 32  # windows per scoring pass, and sequences per training step
    seq_len: int = 0  # window / training sequence length; 0 = the model's EVAL_SEQ_LEN
    stride: int = 0  # sliding stride; 0 = the model's EVAL_STRIDE
    tail: str = "once"  # once | records
    seed: int = 0  # torch seed set before adapting (the algorithm itself draws nothing)

    def __post_init__(self) -> None:
        check_choice("order", self.order, ("score_first", "train_first"))
        check_choice("tail", self.tail, TAILS)
        check_positive(chunk=self.chunk, batch=self.batch, epochs=self.epochs)


def trainable_parameters(model: torch.nn.Module, freeze_blocks: int) -> list[torch.nn.Parameter]:
    """Every parameter except those of the first ``freeze_blocks`` blocks."""
    frozen = set()
    for block in list(getattr(model, "blocks", []))[:freeze_blocks]:
        frozen.update(id(p) for p in block.parameters())
    return [p for p in model.parameters() if id(p) not in frozen]


def train_on_span(model: torch.nn.Module, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                  inputs: torch.Tensor, targets: torch.Tensor, lo: int, hi: int, *,
                  seq_len: int, batch: int, epochs: int, grad_clip: float) -> None:
    """SGD on targets [lo, hi): sequences of ``seq_len`` in stream order, this rank's share of each batch."""
    device = model_device(model)
    starts = list(range(lo, hi, seq_len))
    _, world = dist_info()
    model.train()
    for _ in range(epochs):
        for group in batched(starts, batch):
            mine = rank_share(group)
            opt.zero_grad(set_to_none=True)
            if mine:
                T = min(seq_len, hi - mine[0])
                x = torch.zeros(len(mine), T, dtype=torch.long)
                y = torch.full((len(mine), T), -100, dtype=torch.long)  # -100: padding, ignored
                for k, a in enumerate(mine):
                    b = min(a + seq_len, hi)
                    x[k, : b - a] = inputs[a:b]
                    y[k, : b - a] = targets[a:b]
                logits = model.forward_logits(x.to(device)).float()
                n_valid = sum(min(a + seq_len, hi) - a for a in group)
                # Sum over this rank's tokens / tokens of the whole group: the all-reduce below
                # then yields the group's mean, exactly as on one rank.
                loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1).to(device),
                                       ignore_index=-100, reduction="sum") / n_valid
                loss.backward()
            if world > 1:
                for p in params:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    torch.distributed.all_reduce(p.grad)
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
    model.eval()


@register
class TTT(Evaluator):
    name = "ttt"
    Settings = TTTSettings
    summary = "chunked test-time training (score_first legal, train_first leaky)"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        inputs, tgt = split_stream(tokens, targets)
        n = tgt.numel()
        seq_len, _ = resolve_geometry(model, s.seq_len, s.stride)
        windows = sliding_windows(model, n, s.seq_len, s.stride, s.tail)
        n_chunks = max(1, math.ceil(n / s.chunk))
        by_chunk: list[list] = [[] for _ in range(n_chunks)]
        for w in windows:
            by_chunk[w.score_from // s.chunk].append(w)

        torch.manual_seed(s.seed)
        adapted = frozen_copy(model)
        params = trainable_parameters(adapted, s.freeze_blocks)
        for p in adapted.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        prefix: tuple = ("ttt", self.describe(), seq_len, n)
        for c in range(n_chunks):
            lo, hi = c * s.chunk, min((c + 1) * s.chunk, n)
            mine = rank_share(by_chunk[c])
            # Everything chunk c reads: its windows and its training span. With the chunks
            # before it in the key, a repeated prefix of the run is reused exactly (memo.py).
            a, b = min([lo] + [w.start for w in mine]), max([hi] + [w.end for w in mine])
            prefix = (prefix, c, tensor_key(inputs[a:b]), tensor_key(tgt[a:b]))

            def run_chunk(c: int = c, lo: int = lo, hi: int = hi, mine: list = mine) -> tuple[list, dict, dict]:
                for g in opt.param_groups:
                    g["lr"] = s.lr * 0.5 * (1.0 + math.cos(math.pi * c / n_chunks))
                if s.order == "train_first":
                    self._train(adapted, opt, params, inputs, tgt, lo, hi, seq_len)
                batches = list(iter_scored_logits(adapted, inputs, mine, s.batch, pad_to=seq_len))
                if s.order == "score_first" and c < n_chunks - 1:
                    self._train(adapted, opt, params, inputs, tgt, lo, hi, seq_len)
                return batches, clone_state(adapted.state_dict()), copy.deepcopy(opt.state_dict())

            batches, model_state, opt_state = memoized(model, lambda p=prefix: p, run_chunk)
            # Continue from the state this prefix produced (a no-op copy when just computed).
            adapted.load_state_dict(model_state)
            opt.load_state_dict(copy.deepcopy(opt_state))
            for sb in batches:
                add_scored_batch(acc, sb)
        return acc.finish(evaluator=self.describe(), windows=len(windows), chunks=n_chunks)

    def _train(self, model, opt, params, inputs, tgt, lo, hi, seq_len) -> None:
        s = self.settings
        train_on_span(model, opt, params, inputs, tgt, lo, hi, seq_len=seq_len, batch=s.batch,
                      epochs=s.epochs, grad_clip=s.grad_clip)
