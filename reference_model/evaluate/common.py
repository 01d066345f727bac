"""Pieces every window-based evaluator shares: geometry, batching, hidden states, the head.

The head is applied only to the positions an evaluator needs (``gather``), never to whole
windows: that is where the time goes on a small model (vocab x positions), and it is what
lets SLOT be fast. All evaluators go through ``head_logits`` so that, for example, SLOT with
zero steps reproduces sliding-window NLLs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .base import Window, enumerate_windows

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


def rank_share(items: Sequence) -> Sequence:
    """This rank's contiguous share of ``items`` (the records split windows the same way)."""
    rank, world = dist_info()
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


def make_batch(inputs: torch.Tensor, windows: Sequence[Window], spans: Sequence[tuple[int, int]]) -> WindowBatch:
    """Pad ``windows`` into a batch; ``spans[k]`` = (lo, hi) window-relative positions wanted."""
    T = max(w.length for w in windows)
    x = torch.zeros(len(windows), T, dtype=torch.long)
    rows, cols = [], []
    for k, (w, (lo, hi)) in enumerate(zip(windows, spans)):
        x[k, : w.length] = inputs[w.start : w.end]
        rows.append(torch.full((hi - lo,), k, dtype=torch.long))
        cols.append(torch.arange(lo, hi, dtype=torch.long))
    rows_t, cols_t = torch.cat(rows), torch.cat(cols)
    starts = torch.tensor([w.start for w in windows], dtype=torch.long)
    return WindowBatch(x, rows_t, cols_t, starts[rows_t] + cols_t)


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


def head_logits(model: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Softcapped fp32 logits for flat hidden states (P, d) -> (P, V)."""
    return apply_softcap(F.linear(h, output_weight(model)), softcap(model))


def iter_scored_logits(model: torch.nn.Module, inputs: torch.Tensor, windows: Sequence[Window],
                       batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """For each batch of windows: (target indices (P,), logits (P, V)) at the scored positions only."""
    for group in batched(windows, batch):
        wb = make_batch(inputs, group, scored_spans(group))
        h = hidden_states(model, wb.x)
        yield wb.targets_idx, head_logits(model, h[wb.rows.to(h.device), wb.cols.to(h.device)])


def nll_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets.to(logits.device), reduction="none")


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode: adaptive evaluators train this, never the caller's model."""
    return copy.deepcopy(model).eval()
