"""Known-leaky controls, modelled on what real PRs did; the causality audit must catch each.

ngram_target:  a hashed n-gram cache mixed into the model's distribution. The cache entry is
               keyed by (context, token) and the cache is updated with the current target
               *before* that target is scored, so the distribution used to score y_t depends
               on y_t itself (rows still sum to 1: only the dependence is wrong).
two_pass:      score the stream, adapt the model on all of it, rescore; the second pass is
               reported, so every target was predicted by a model that had trained on it and
               on everything after it.
unnormalized:  a constant ``boost`` added to every probability after the softmax, without
               renormalizing: each row sums to 1 + V * boost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, register, split_stream
from .common import TAILS, check_choice, check_positive, frozen_copy, iter_scored_logits, rank_share, resolve_geometry, sliding_windows
from .sliding import score_windows
from .ttt import train_on_span, trainable_parameters

# ----------------------------------------------------------------------------- ngram_target


@dataclass
class NgramTargetSettings:
    order: int = 3  # n of the n-gram: the key is the previous order-1 tokens and the candidate token
    buckets: int = 1 << 16  # hash table size
    weight: float = 0.3  # mixing weight of the cache distribution
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN
    stride: int = 0  # sliding stride; 0 = the model's EVAL_STRIDE
    batch: int = 32  # windows per forward pass
    tail: str = "once"  # once | records

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        check_positive(batch=self.batch)


def context_hashes(inputs: np.ndarray, order: int, buckets: int) -> np.ndarray:
    """Bucket base of the (order-1)-token context ending at each input position."""
    h = np.zeros(inputs.size, dtype=np.int64)
    for back in range(order - 1):
        prev = np.concatenate([np.full(back, -1, dtype=np.int64), inputs[: inputs.size - back].astype(np.int64)])
        h = (h * 1_000_003 + (prev + 2) * 2_654_435_761) % (1 << 61)
    return h % buckets


@register
class NgramTarget(Evaluator):
    name = "ngram_target"
    Settings = NgramTargetSettings
    summary = "LEAKY: hashed n-gram cache keyed by the target, updated before scoring it"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        check_positive(order=s.order, buckets=s.buckets)
        inputs, tgt = split_stream(tokens, targets)
        seq_len, _ = resolve_geometry(model, s.seq_len, s.stride)
        windows = rank_share(sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail))
        wanted = set(int(p) for p in logprob_positions)
        # Model log-probs of each scoring (duplicates kept), plus full rows where asked.
        scorings: list[tuple[int, float]] = []
        model_rows: dict[int, np.ndarray] = {}
        for sb in iter_scored_logits(model, inputs, windows, s.batch, pad_to=seq_len):
            tpos, logp = sb.targets_idx, torch.log_softmax(sb.logits, dim=-1)
            picked = logp.gather(1, tgt[tpos].to(logp.device)[:, None]).squeeze(1).double().cpu().numpy()
            scorings.extend(zip(tpos.tolist(), picked.tolist()))
            for k, p in enumerate(tpos.tolist()):
                if p in wanted:
                    model_rows[p] = logp[k].double().cpu().numpy()
        V = int(model.output_weight().size(0))
        base = context_hashes(inputs.numpy(), s.order, s.buckets)
        y = tgt.numpy().astype(np.int64)
        table = np.zeros(s.buckets, dtype=np.float64)
        span = np.arange(V, dtype=np.int64)
        inserted = -1
        acc = ScoreAccumulator(inputs, tgt, luts, ())
        pos_out, nll_out = [], []
        for p, model_lp in sorted(scorings, key=lambda e: e[0]):
            while inserted < p:  # the leak: the cache already holds the n-gram being scored
                inserted += 1
                table[(base[inserted] + y[inserted]) % s.buckets] += 1.0
            counts = table[(base[p] + span) % s.buckets]
            total = counts.sum()
            q = counts / total if total > 0 else np.zeros(V)
            prob = (1 - s.weight) * np.exp(model_lp) + s.weight * q[y[p]] if total > 0 else np.exp(model_lp)
            pos_out.append(p)
            nll_out.append(-np.log(prob))
            if p in wanted:
                mix = (1 - s.weight) * np.exp(model_rows[p]) + s.weight * q if total > 0 else np.exp(model_rows[p])
                acc.logprobs[p] = np.log(mix)
        acc.add(torch.tensor(pos_out, dtype=torch.long), torch.tensor(nll_out, dtype=torch.float64))
        return acc.finish(evaluator=self.describe(), windows=len(windows))


# ----------------------------------------------------------------------------- two_pass


@dataclass
class TwoPassSettings:
    lr: float = 0.005  # SGD lr of the adaptation between the passes
    momentum: float = 0.9  # SGD momentum
    epochs: int = 1  # passes over the whole stream
    grad_clip: float = 1.0  # global grad-norm clip (0 disables)
    seq_len: int = 0  # window / training sequence length; 0 = the model's EVAL_SEQ_LEN
    stride: int = 0  # sliding stride; 0 = the model's EVAL_STRIDE
    batch: int = 32  # windows per forward pass, sequences per training step
    tail: str = "once"  # once | records
    seed: int = 0  # torch seed set before adapting

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        check_positive(batch=self.batch)


@register
class TwoPass(Evaluator):
    name = "two_pass"
    Settings = TwoPassSettings
    summary = "LEAKY: score, adapt on the whole stream, rescore (second pass reported)"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        inputs, tgt = split_stream(tokens, targets)
        seq_len, _ = resolve_geometry(model, s.seq_len, s.stride)
        windows = rank_share(sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail))
        first = ScoreAccumulator(inputs, tgt, luts, ())
        score_windows(first, model, windows, s.batch, pad_to=seq_len)
        first_pass = first.finish()
        torch.manual_seed(s.seed)
        adapted = frozen_copy(model)
        params = trainable_parameters(adapted, 0)
        opt = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum)
        train_on_span(adapted, opt, params, inputs, tgt, 0, tgt.numel(), seq_len=seq_len, batch=s.batch,
                      epochs=s.epochs, grad_clip=s.grad_clip)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        score_windows(acc, adapted, windows, s.batch, pad_to=seq_len)
        return acc.finish(evaluator=self.describe(), windows=len(windows),
                          first_pass_val_bpb=first_pass.val_bpb, first_pass_val_loss=first_pass.val_loss)


# ----------------------------------------------------------------------------- unnormalized


@dataclass
class UnnormalizedSettings:
    boost: float = 0.01  # added to every probability after the softmax (rows sum to 1 + V * boost)
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN
    stride: int = 0  # sliding stride; 0 = the model's EVAL_STRIDE
    batch: int = 32  # windows per forward pass
    tail: str = "once"  # once | records

    def __post_init__(self) -> None:
        check_choice("tail", self.tail, TAILS)
        check_positive(batch=self.batch)


@register
class Unnormalized(Evaluator):
    name = "unnormalized"
    Settings = UnnormalizedSettings
    summary = "LEAKY: probabilities boosted after the softmax, never renormalized"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        if s.boost < 0:
            raise ValueError(f"setting boost={s.boost} must be >= 0")
        inputs, tgt = split_stream(tokens, targets)
        seq_len, _ = resolve_geometry(model, s.seq_len, s.stride)
        windows = sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        for sb in iter_scored_logits(model, inputs, rank_share(windows), s.batch, pad_to=seq_len):
            # The scored "log-probability" is log(p + boost): deliberately not a distribution.
            boosted = torch.log(torch.softmax(sb.logits.double(), dim=-1) + s.boost)
            nll = -boosted.gather(1, tgt[sb.targets_idx].to(boosted.device)[:, None]).squeeze(1)
            acc.add(sb.targets_idx, nll, lambda idx, b=boosted: b[idx], window_start=sb.window_start)
        return acc.finish(evaluator=self.describe(), windows=len(windows))

