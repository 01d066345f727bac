"""The challenge's exact metric: bytes per target token and bits per byte (DOMAIN.md §2).

bytes(y | prev) = base_bytes[y] + (has_leading_space[y] and not is_boundary[prev])

Control, unknown and unused ids count 0 bytes and are boundaries; byte pieces count 1;
any other piece counts the UTF-8 length of its text with a leading "▁" stripped, and that
"▁" sets has_leading_space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from .bytecount import canonical_tables, load_tokenizer

__all__ = ["LN2", "BpbResult", "ByteLUTs", "bpb_from_sums", "build_luts", "load_tokenizer"]

LN2 = math.log(2.0)


@dataclass(frozen=True)
class ByteLUTs:
    base_bytes: torch.Tensor  # (V,) int64
    has_leading_space: torch.Tensor  # (V,) bool
    is_boundary: torch.Tensor  # (V,) bool

    @property
    def vocab_size(self) -> int:
        return int(self.base_bytes.numel())

    def to(self, device: torch.device | str) -> "ByteLUTs":
        return ByteLUTs(self.base_bytes.to(device), self.has_leading_space.to(device), self.is_boundary.to(device))

    def target_bytes(self, prev_ids: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        """Bytes each target token stands for, given the token before it (same shapes)."""
        dev = self.base_bytes.device
        prev_ids, target_ids = prev_ids.to(dev), target_ids.to(dev)
        space = self.has_leading_space[target_ids] & ~self.is_boundary[prev_ids]
        return self.base_bytes[target_ids] + space.to(torch.int64)


def build_luts(sp, vocab_size: int | None = None) -> ByteLUTs:
    """Byte LUTs from a SentencePiece processor (or a path to a .model file).

    ``vocab_size`` may exceed the tokenizer's size (a padded embedding); the extra ids are
    unused, count 0 bytes and are boundaries. The rule lives in ``bytecount`` (torch-free).
    """
    base, space, boundary = canonical_tables(sp, vocab_size)
    return ByteLUTs(torch.from_numpy(base), torch.from_numpy(space), torch.from_numpy(boundary))


@dataclass(frozen=True)
class BpbResult:
    nll_sum: float  # total NLL in nats (float64)
    tokens: int  # scored targets
    bytes: int  # bytes those targets stand for

    @property
    def val_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def val_bpb(self) -> float:
        return (self.nll_sum / LN2) / self.bytes if self.bytes else float("nan")


def bpb_from_sums(nll_sum: float, tokens: int, n_bytes: int) -> tuple[float, float]:
    """(val_loss nats/token, val_bpb) from float64 sums, as the seed script computes them."""
    r = BpbResult(float(nll_sum), int(tokens), int(n_bytes))
    return r.val_loss, r.val_bpb
