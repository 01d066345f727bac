"""``slot``: the seed PR's SLOT and its variants (DOMAIN.md §3), one evaluator with settings.

For each batch of ``batch`` sliding windows (padded to ``seq_len``), with the model frozen:

    H      = forward_hidden(x) under no-grad, cast to fp32             (B, T, d)
    delta  = zeros (B, 1, d)  [delta=window]  or (1, 1, d) [delta=batch]   fp32
    bias   = zeros (B, 1, V)  [delta=window]  or (1, 1, V) [delta=batch]   fp32 (logit_bias=true)
    logits = c * tanh(((H + delta) W^T + bias) / c)                      (fp32 head W, softcap c)
    loss   = mean NLL over the mask positions of the whole batch
    AdamW(betas, eps, wd) on (delta, bias), ``steps`` steps, the lr of step i (i = 0..steps-1)
           lr_min + (lr - lr_min) (1 + cos(pi i / steps)) / 2   (the seed's: it never reaches lr_min)
    then the scored positions are scored with the optimized delta/bias; the total adds each
    window's NLLs summed in fp32, in float64 (the seed's accumulation).

The defaults are the seed's (mask=scored, delta=window, 16 steps, lr 0.008 -> 0.0008, AdamW
(0.9, 0.999), eps 1e-5, wd 1e-8, 32 windows per batch, tail=records).

mask=scored (the seed): the mask *is* the scored positions, so each target helps fit the
parameters that then score it: not causal. mask=context: positions [0, s) of the window, all
already scored by earlier windows; causal with a per-window delta, not with delta=batch
(one delta shared by consecutive windows lets a window's context carry targets that an
earlier window of the same batch scores).

Speed (impl=fast, the default). Only masked and scored positions ever reach the head, and
because (H + delta) W^T = H W^T + delta W^T, the (P, V) product H W^T is computed once per
batch; each step then costs one (G, d) x (d, V) product plus elementwise work on the masked
rows, with the gradient written out by hand (softmax - onehot, through tanh, summed per
group). The final scoring uses the seed's form ((H + delta) W^T + bias) row by row.
impl=reference is the seed's way: full-window logits and autograd every step with
torch.optim.AdamW, kept for the equivalence test (<= 1e-6 bpb) and the benchmark.

Distributed: rank r takes the windows ``[r::world_size]`` (strided, the seed's split) and
batches them itself, so batch composition depends on the world size, and with it the result
(the loss is a mean over the batch and AdamW's eps is not scale-free): compare SLOT numbers
at equal world size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ..metric import ByteLUTs
from .base import Evaluator, ScoreAccumulator, Scored, Window, register, split_stream
from .common import (TAILS, apply_softcap, batched, check_choice, check_positive, hidden_states, make_batch, model_device,
                     output_weight, rank_share, resolve_geometry, scored_spans, sliding_windows, softcap)
from .memo import memoized, tensor_key


@dataclass
class SlotSettings:
    mask: str = "scored"  # scored (the seed: fit on the positions it scores) | context (positions [0, s))
    delta: str = "window"  # window: one delta/bias per window | batch: one shared by the whole batch
    logit_bias: bool = True  # also fit a per-vocab logit bias
    steps: int = 16  # AdamW steps per batch
    lr: float = 0.008  # peak lr (first step)
    lr_min: float = 0.0008  # final lr; cosine from lr to lr_min over the steps (lr_min=lr: constant)
    betas: tuple = (0.9, 0.999)  # AdamW betas (torch default, as the seed)
    eps: float = 1e-5  # AdamW eps
    wd: float = 1e-8  # AdamW weight decay
    batch: int = 32  # windows per SLOT batch (SLOT_BATCH_SEQS)
    stride: int = 0  # sliding stride; 0 = the model's EVAL_STRIDE (64 in the seed)
    seq_len: int = 0  # window length; 0 = the model's EVAL_SEQ_LEN (2048 in the seed)
    tail: str = "records"  # records: the seed's windows (re-score the tail) | once: every target scored once
    seed: int = 0  # unused by the algorithm (no randomness); kept for a uniform interface
    impl: str = "fast"  # fast | reference (full-window autograd, for tests and the benchmark)

    def __post_init__(self) -> None:
        check_choice("mask", self.mask, ("scored", "context"))
        check_choice("delta", self.delta, ("window", "batch"))
        check_choice("tail", self.tail, TAILS)
        check_choice("impl", self.impl, ("fast", "reference"))
        check_positive(batch=self.batch)
        if self.steps < 0 or len(self.betas) != 2:
            raise ValueError(f"slot needs steps >= 0 and betas=(b1,b2), got steps={self.steps} betas={self.betas}")


def cosine_lr(step: int, steps: int, lr: float, lr_min: float) -> float:
    """The seed's schedule: ``lr`` at step 0, then a cosine towards ``lr_min`` reached at step
    ``steps``, which is never run (the last step, ``steps - 1``, is still above lr_min)."""
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * step / steps))


class AdamW:
    """torch.optim.AdamW's update, written out for a handful of small tensors.

    Same arithmetic as torch's single-tensor path (decoupled decay, bias-corrected moments,
    eps added after the corrected sqrt); without the optimizer machinery, whose per-step and
    first-use overheads dominate SLOT's tiny per-batch problems. The reference path uses
    torch.optim.AdamW itself, and the tests hold the two together.
    """

    def __init__(self, params: list[torch.Tensor], *, betas: tuple, eps: float, wd: float) -> None:
        self.params, self.eps, self.wd = params, eps, wd
        self.b1, self.b2 = float(betas[0]), float(betas[1])
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        self.t += 1
        bc1 = 1 - self.b1 ** self.t
        bc2_sqrt = math.sqrt(1 - self.b2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            p.mul_(1 - lr * self.wd)
            m.lerp_(g, 1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / bc1)


def mask_spans(windows: Sequence[Window], mask: str) -> list[tuple[int, int]]:
    """Window-relative (lo, hi) of the positions the SLOT loss averages over."""
    if mask == "scored":
        return [(w.score_from - w.start, w.length) for w in windows]
    return [(0, w.score_from - w.start) for w in windows]


@register
class Slot(Evaluator):
    name = "slot"
    Settings = SlotSettings
    summary = "SLOT: per-window hidden delta + logit bias fitted by AdamW at eval time"

    def score(self, model: torch.nn.Module, tokens: torch.Tensor, luts: ByteLUTs, *,
              targets: torch.Tensor | None = None, logprob_positions: Sequence[int] = ()) -> Scored:
        s = self.settings
        inputs, tgt = split_stream(tokens, targets)
        seq_len, stride = resolve_geometry(model, s.seq_len, s.stride)
        windows = sliding_windows(model, tgt.numel(), s.seq_len, s.stride, s.tail)
        acc = ScoreAccumulator(inputs, tgt, luts, logprob_positions)
        if s.tail == "records":
            acc.count_once(tgt.numel(), seq_len, stride)
        run = self._batch_fast if s.impl == "fast" else self._batch_reference
        for group in batched(rank_share(windows, "strided"), s.batch):
            lo, hi = min(w.start for w in group), max(w.end for w in group)
            # A batch reads only its own windows' inputs and targets (see memo.py).
            key = lambda: ("slot", self.describe(), seq_len, tuple((w.start, w.end, w.score_from) for w in group),  # noqa: E731
                           tensor_key(inputs[lo:hi]), tensor_key(tgt[lo:hi]))
            out = memoized(model, key, lambda: run(model, acc, group, seq_len))
            add_by_window(acc, out, group)
        return acc.finish(evaluator=self.describe(), windows=len(windows))

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        s = self.settings
        return torch.optim.AdamW(params, lr=s.lr, betas=tuple(s.betas), eps=s.eps, weight_decay=s.wd)

    def _set_lr(self, opt: torch.optim.Optimizer, step: int) -> None:
        s = self.settings
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, s.steps, s.lr, s.lr_min)

    # ------------------------------------------------------------------ fast path

    def _batch_fast(self, model: torch.nn.Module, acc: ScoreAccumulator, windows: Sequence[Window], seq_len: int) -> "SlotBatch":
        s = self.settings
        device = model_device(model)
        W = output_weight(model)  # (V, d)
        cap = softcap(model)
        wb = make_batch(acc.inputs, windows, scored_spans(windows), pad_to=seq_len)
        H = hidden_states(model, wb.x)  # (B, T, d)
        G = len(windows) if s.delta == "window" else 1
        delta = torch.zeros(G, W.size(1), device=device)
        bias = torch.zeros(G, W.size(0), device=device) if s.logit_bias else None
        if s.steps > 0:
            self._fit(H, W, cap, acc, windows, delta, bias)
        rows, cols = wb.rows.to(device), wb.cols.to(device)
        groups = rows if G > 1 else torch.zeros_like(rows)
        z = F.linear(H[rows, cols] + delta[groups], W)  # the seed's (H + delta) W^T, row by row
        logits = apply_softcap(z + bias[groups] if bias is not None else z, cap)
        nll = F.cross_entropy(logits, acc.targets[wb.targets_idx].to(device), reduction="none")
        return SlotBatch(wb.targets_idx, wb.window_start, nll, logits)

    def _fit(self, H: torch.Tensor, W: torch.Tensor, cap: float, acc: ScoreAccumulator, windows: Sequence[Window],
             delta: torch.Tensor, bias: torch.Tensor | None) -> None:
        """The AdamW steps on (delta, bias), computing head logits only on the mask.

        Windows are bucketed by mask length (usually: the first window, the regular ones, a
        short tail), so each bucket is a dense (b, L, V) block: the per-window shift is
        broadcast rather than gathered row by row, and per-window gradient sums are plain
        sums over L. ``H W^T / c`` is computed once; each step adds ``shift / c``.
        """
        s = self.settings
        device = H.device
        scale = 1.0 / cap if cap > 0 else 1.0
        targets = acc.targets.to(device)
        by_len: dict[int, list[int]] = {}
        for k, (lo, hi) in enumerate(mask_spans(windows, s.mask)):
            if hi > lo:
                by_len.setdefault(hi - lo, []).append(k)
        if not by_len:
            return  # nothing to fit on (e.g. context mask on the first window alone)
        buckets = []
        for L, ks in by_len.items():
            k_t = torch.tensor(ks, device=device)
            lo = torch.tensor([mask_spans([windows[k]], s.mask)[0][0] for k in ks], device=device)
            cols = lo[:, None] + torch.arange(L, device=device)[None, :]  # (b, L)
            base = F.linear(H[k_t[:, None], cols], W).mul_(scale)  # (b, L, V): H W^T / c, fixed
            starts = torch.tensor([windows[k].start for k in ks], device=device)
            y = targets[starts[:, None] + cols]
            b_i, l_i = torch.meshgrid(torch.arange(len(ks), device=device), torch.arange(L, device=device), indexing="ij")
            groups = k_t if delta.size(0) > 1 else torch.zeros_like(k_t)
            buckets.append((base, (b_i.reshape(-1), l_i.reshape(-1), y.reshape(-1)), groups))
        n_mask = sum(b[0].shape[0] * b[0].shape[1] for b in buckets)
        opt = AdamW([delta] + ([bias] if bias is not None else []), betas=tuple(s.betas), eps=s.eps, wd=s.wd)
        for step in range(s.steps):
            sh = F.linear(delta, W)  # (G, V): delta W^T (+ bias), divided by c below
            if bias is not None:
                sh = sh + bias
            sh.mul_(scale)
            grad_shift = torch.zeros_like(sh)
            for base, onehot_idx, groups in buckets:
                z = base + sh[groups][:, None, :]
                if cap > 0:
                    t = z.tanh_()
                    p = torch.mul(t, cap).exp_()  # |logits| <= cap: exp cannot overflow, no max-shift needed
                    p.div_(p.sum(dim=-1, keepdim=True))
                else:
                    p = torch.softmax(z, dim=-1)
                p[onehot_idx] -= 1.0  # softmax - onehot = d NLL / d logits
                if cap > 0:
                    p.addcmul_(p, t.mul_(t), value=-1.0)  # through the softcap: * (1 - t^2); 1/c cancels c
                grad_shift.index_add_(0, groups, p.sum(dim=1))
            grad_shift.div_(n_mask)  # the seed's loss is the mean over every masked position of the batch
            grads = [grad_shift @ W] + ([grad_shift] if bias is not None else [])
            opt.step(grads, cosine_lr(step, s.steps, s.lr, s.lr_min))

    # ------------------------------------------------------------- reference path

    def _batch_reference(self, model: torch.nn.Module, acc: ScoreAccumulator, windows: Sequence[Window], seq_len: int) -> "SlotBatch":
        """The seed's way: full-window logits every step, autograd, a (B, T) mask, torch's AdamW."""
        s = self.settings
        device = model_device(model)
        W = output_weight(model)
        cap = softcap(model)
        wb = make_batch(acc.inputs, windows, scored_spans(windows), pad_to=seq_len)
        B, T = wb.x.shape
        H = hidden_states(model, wb.x)  # (B, T, d)
        y = torch.zeros(B, T, dtype=torch.long)
        mask = torch.zeros(B, T)
        for k, (w, (lo, hi)) in enumerate(zip(windows, mask_spans(windows, s.mask))):
            y[k, : w.length] = acc.targets[w.start : w.end]
            mask[k, lo:hi] = 1.0
        y, mask = y.to(device), mask.to(device)
        G = B if s.delta == "window" else 1
        delta = torch.zeros(G, 1, W.size(1), device=device, requires_grad=True)
        bias = torch.zeros(G, 1, W.size(0), device=device, requires_grad=True) if s.logit_bias else None

        def logits_of() -> torch.Tensor:
            z = F.linear(H + delta, W)
            return apply_softcap(z + bias if bias is not None else z, cap)

        if s.steps > 0 and mask.sum() > 0:
            opt = self._optimizer([delta] + ([bias] if bias is not None else []))
            for step in range(s.steps):
                self._set_lr(opt, step)
                opt.zero_grad(set_to_none=True)
                nll = F.cross_entropy(logits_of().reshape(B * T, -1), y.reshape(-1), reduction="none").reshape(B, T)
                ((nll * mask).sum() / mask.sum()).backward()
                opt.step()
        with torch.no_grad():
            logits = logits_of()
        rows, cols = wb.rows.to(device), wb.cols.to(device)
        picked = logits[rows, cols]
        nll = F.cross_entropy(picked, y[rows, cols], reduction="none")
        return SlotBatch(wb.targets_idx, wb.window_start, nll, picked)


@dataclass
class SlotBatch:
    """A SLOT batch's result at its scored positions (window by window, in order)."""

    targets_idx: torch.Tensor  # (P,)
    window_start: torch.Tensor  # (P,)
    nll: torch.Tensor  # (P,) fp32
    logits: torch.Tensor  # (P, V) fp32, with the fitted delta and bias


def add_by_window(acc: ScoreAccumulator, out: SlotBatch, windows: Sequence[Window]) -> None:
    """Add a batch's scored NLLs with the seed's total: each window's NLLs summed in fp32, the
    window sums added in float64."""
    total, offset = 0.0, 0
    for w in windows:
        n = w.end - w.score_from
        total += float(out.nll[offset : offset + n].float().sum())
        offset += n
    acc.add(out.targets_idx, out.nll, lambda idx: torch.log_softmax(out.logits[idx], dim=-1),
            window_start=out.window_start, total=total)
