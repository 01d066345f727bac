"""Tiny NLL sources with known causality, for the engine's tests (no model, no evaluator)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from reference_model.evaluate import Scored

VOCAB = 16


def _table(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(VOCAB, VOCAB, generator=g, dtype=torch.float64), dim=-1)


class FakeSource:
    """A bigram model: p(y_i | x_i) from a fixed table, one 'window' per 8 targets.

    ``leak``:
      * None      - causal;
      * "target"  - the row scoring target i is boosted toward target i itself (a cache keyed
                    on the target, like ngram_target);
      * "context" - every row is shifted by a statistic of the whole target array (a second
                    pass after adapting on everything);
      * "noise"   - nondeterministic (fresh noise each run);
      * "mass"    - rows sum to 2 (an unnormalized boost);
      * "ulp"     - the row scoring target i moves by ~1e-9 nats with target i (float32-rounding
                    size: a kernel choice that depends on the batch, not a leak of any use);
      * "tilt"    - the rows are the bigram's, but the score of every target equal to its input
                    token gets 0.5 nats off (a tilt gated on the realized token, after the softmax
                    the rows come from): causal, and the rows sum to 1, yet they are not what was
                    scored.
    """

    def __init__(self, leak: str | None = None, name: str | None = None) -> None:
        self.leak = leak
        self.name = name or f"fake[{leak or 'causal'}]"
        self.vocab_size = VOCAB
        self.table = _table()
        self.calls = 0

    def scoring_units(self, num_targets: int) -> np.ndarray:
        return np.arange(num_targets) // 8

    def boundary_targets(self, num_targets: int) -> list[int]:
        return [7, 8]

    def run(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
            logprob_positions: Sequence[int] = ()) -> Scored:
        self.calls += 1
        inputs = tokens[:-1].long()
        tgt = tokens[1:].long() if targets is None else targets.long()
        rows = self.table[inputs].clone()  # (N-1, V)
        if self.leak == "target":
            boost = torch.zeros_like(rows)
            boost[torch.arange(tgt.numel()), tgt] = 1.0
            rows = torch.log_softmax(rows + boost, dim=-1)
        elif self.leak == "context":
            rows = torch.log_softmax(rows + 0.01 * torch.bincount(tgt, minlength=VOCAB).double(), dim=-1)
        elif self.leak == "noise":
            rows = rows + 1e-6 * torch.rand(rows.shape, dtype=torch.float64)
        elif self.leak == "mass":
            rows = rows + np.log(2.0)
        elif self.leak == "ulp":
            rows = rows + 1e-10 * tgt[:, None].double()
        nll = -rows.gather(1, tgt[:, None])[:, 0]
        if self.leak == "tilt":
            nll = nll - 0.5 * (tgt == inputs).double()
        n = nll.numel()
        return Scored(nll.numpy().copy(), np.ones(n, dtype=np.int64), float(nll.sum()), n, n,
                      {int(p): rows[int(p)].numpy().copy() for p in logprob_positions})


class RowlessSource(FakeSource):
    """The causal fake without log-probability rows (like a real script's NLL capture)."""

    def run(self, tokens, targets=None, logprob_positions=()):
        scored = super().run(tokens, targets)
        scored.logprobs = {}
        return scored


def stream(n: int = 97, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n,), generator=torch.Generator().manual_seed(seed))
