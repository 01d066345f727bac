"""Pieces every window-based evaluator shares: geometry, batching, hidden states, the head.

The head is applied only to the positions an evaluator needs (``gather``), never to whole
windows: that is where the time goes on a small model (vocab x positions), and it is what
lets SLOT be fast. It is a per-row product, so the logits of a row are the ones the seed's
full-window head gives. All evaluators go through ``head_logits`` so that, for example, SLOT
with zero steps reproduces sliding-window NLLs (on CPU; see ``head_logits`` for CUDA).

Windows are always padded to ``seq_len`` as the seed pads them: the padding never reaches
an earlier position (causal attention), but the padded length sets the RoPE base once it
exceeds 1024 (``model.rope_inv_freq``), so a short last batch must not be shorter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .base import Window, enumerate_windows
from .memo import memoized, tensor_key

TAILS = ("once", "records")


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"setting {name}={value!r} must be one of {', '.join(choices)}")


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"setting {name}={value} must be > 0")


def resolve_geometry(model: torch.nn.Module, seq_len: int, stride: int) -> tuple[int, int]:
    """0 means "as the model was configured": EVAL_SEQ_LEN / EVAL_STRIDE (2048 / 64 in the seed)."""
    hp = getattr(model, "hp", None)
    seq_len = seq_len or (hp.eval_seq_len if hp is not None else 2048)
    stride = stride or (hp.eval_stride if hp is not None else 64)
    if not 0 < stride <= seq_len:
        raise ValueError(f"need 0 < stride <= seq_len, got stride={stride} seq_len={seq_len}")
    return seq_len, stride


def sliding_windows(model: torch.nn.Module, num_targets: int, seq_len: int, stride: int, tail: str) -> list[Window]:
    check_choice("tail", tail, TAILS)
    seq_len, stride = resolve_geometry(model, seq_len, stride)
    return enumerate_windows(num_targets, seq_len, stride, tail)


def dist_info() -> tuple[int, int]:
    """(rank, world_size); (0, 1) outside torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


SPLITS = ("contiguous", "strided")


def rank_share(items: Sequence, split: str = "contiguous") -> Sequence:
    """This rank's share of ``items``.

    contiguous: ``items[n*r//W : n*(r+1)//W]``, the seed's split for standard and sliding;
    strided: ``items[r::W]``, the seed's split of SLOT windows.
    """
    check_choice("split", split, SPLITS)
    rank, world = dist_info()
    if split == "strided":
        return items[rank::world]
    n = len(items)
    return items[n * rank // world : n * (rank + 1) // world]


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass
class WindowBatch:
    """Window inputs padded to one length, plus the flat list of positions an evaluator needs.

    ``rows``/``cols`` index the (B, T) grid; ``targets_idx`` are the stream target indices of
    those positions (``window.start + col``).
    """

    x: torch.Tensor  # (B, T) input ids, zero-padded past each window's end
    rows: torch.Tensor  # (P,) window index within the batch
    cols: torch.Tensor  # (P,) position within the window
    targets_idx: torch.Tensor  # (P,) target index in the stream
    window_start: torch.Tensor  # (P,) stream index where the position's window starts


def make_batch(inputs: torch.Tensor, windows: Sequence[Window], spans: Sequence[tuple[int, int]],
               pad_to: int = 0) -> WindowBatch:
    """Pad ``windows`` into a (B, max(pad_to, longest window)) batch; ``spans[k]`` = (lo, hi)
    window-relative positions wanted."""
    T = max(pad_to, max(w.length for w in windows))
    x = torch.zeros(len(windows), T, dtype=torch.long)
    rows, cols = [], []
    for k, (w, (lo, hi)) in enumerate(zip(windows, spans)):
        x[k, : w.length] = inputs[w.start : w.end]
        rows.append(torch.full((hi - lo,), k, dtype=torch.long))
        cols.append(torch.arange(lo, hi, dtype=torch.long))
    rows_t, cols_t = torch.cat(rows), torch.cat(cols)
    starts = torch.tensor([w.start for w in windows], dtype=torch.long)
    return WindowBatch(x, rows_t, cols_t, starts[rows_t] + cols_t, starts[rows_t])


def scored_spans(windows: Sequence[Window]) -> list[tuple[int, int]]:
    return [(w.score_from - w.start, w.length) for w in windows]


@torch.no_grad()
def hidden_states(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Final hidden states (B, T, d) under no-grad, cast to fp32 (bf16 autocast on CUDA, as the records)."""
    device = model_device(model)
    x = x.to(device)
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return model.forward_hidden(x).float()
    return model.forward_hidden(x).float()


def output_weight(model: torch.nn.Module) -> torch.Tensor:
    """The head matrix (V, d) as detached fp32 (the "fp32 head" of the seed's SLOT)."""
    return model.output_weight().detach().float()


def softcap(model: torch.nn.Module) -> float:
    hp = getattr(model, "hp", None)
    return float(hp.logit_softcap) if hp is not None else 0.0


def apply_softcap(z: torch.Tensor, cap: float) -> torch.Tensor:
    return cap * torch.tanh(z / cap) if cap > 0 else z


def head_logits(model: torch.nn.Module, h: torch.Tensor, fp32: bool = False) -> torch.Tensor:
    """Softcapped logits for flat hidden states (P, d) -> (P, V), returned as fp32.

    On CPU everything is fp32. On CUDA the seed runs the head of its standard and sliding
    evals under bf16 autocast (bf16 product, bf16 tanh), which this reproduces unless
    ``fp32`` (SLOT's head is fp32 in the seed).
    """
    if h.is_cuda and not fp32:
        W = model.output_weight().detach().to(torch.bfloat16)
        return apply_softcap(F.linear(h.to(torch.bfloat16), W), softcap(model)).float()
    return apply_softcap(F.linear(h, output_weight(model)), softcap(model))


@dataclass
class ScoredBatch:
    """One batch of windows at its scored positions: logits and where they belong."""

    targets_idx: torch.Tensor  # (P,) target index in the stream
    window_start: torch.Tensor  # (P,) start of the window that scores it
    logits: torch.Tensor  # (P, V) fp32


def iter_scored_logits(model: torch.nn.Module, inputs: torch.Tensor, windows: Sequence[Window],
                       batch: int, pad_to: int = 0) -> Iterator[ScoredBatch]:
    """For each batch of windows (padded to ``pad_to``): the logits at the scored positions only."""
    for group in batched(windows, batch):
        wb = make_batch(inputs, group, scored_spans(group), pad_to)

        def compute(wb: WindowBatch = wb) -> torch.Tensor:
            h = hidden_states(model, wb.x)
            return head_logits(model, h[wb.rows.to(h.device), wb.cols.to(h.device)])

        # The logits depend only on the model, the padded inputs and the positions (memo.py).
        logits = memoized(model, lambda wb=wb: ("scored_logits", tensor_key(wb.x), tensor_key(wb.rows), tensor_key(wb.cols)),
                          compute)
        yield ScoredBatch(wb.targets_idx, wb.window_start, logits)


def nll_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets.to(logits.device), reduction="none")


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode: adaptive evaluators train this, never the caller's model."""
    return copy.deepcopy(model).eval()
