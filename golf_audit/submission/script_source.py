"""A recorded scoring call of a submission script, replayed in the sandboxed child, as a causality ``NllSource``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from reference_model.evaluate import Scored

from .fakedata import FIRST_NORMAL
from .runner import ChildProcess

# Seed SLOT batch: window edges at multiples of it are where a batch-shared delta shows.
BATCH_EDGE = 32


class ScriptSource:
    """Scores a token stream by replaying one recorded call of the script's own scoring function.

    The script reads inputs and targets from the same stream, so only stream flips apply:
    ``supports_target_flip`` tells the engine to skip the target-only flip. Log-probability
    rows (for the distribution test) are the log-softmax of the captured logits that scored
    each requested target.
    """

    supports_target_flip = False
    first_flip_token = FIRST_NORMAL  # flips never create or remove a BOS or another control id

    def __init__(self, child: ChildProcess, target: int | str, vocab_size: int, label: str | None = None) -> None:
        self.child = child
        self.target = target
        self.vocab_size = int(vocab_size)
        self.name = label or target
        self.units: np.ndarray | None = None  # scoring row of each target, from the first run
        self.times: np.ndarray | None = None  # when each target was scored (captured call index), first run
        self.last_info: dict[str, Any] = {}
        self._primed: tuple[list[int], Scored] | None = None

    def prime(self, tokens: torch.Tensor, scored: Scored) -> None:
        """The next plain run of exactly ``tokens`` returns ``scored``, a run this source just made.

        The engine's null control runs the unflipped stream twice; the audit ran it once already
        (the capture check), so that run serves as the first of the two and only one is repeated.
        """
        self._primed = (tokens.reshape(-1).tolist(), scored)

    def run(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
            logprob_positions: Sequence[int] = ()) -> Scored:
        if targets is not None:
            raise NotImplementedError("a script's eval reads targets from the stream: use stream flips")
        primed, self._primed = self._primed, None
        if primed is not None and not logprob_positions and primed[0] == tokens.reshape(-1).tolist():
            return primed[1]
        data = self.child.request({"op": "run", "call": self.target, "tokens": tokens.reshape(-1).tolist(),
                                   "logprob_positions": [int(p) for p in logprob_positions]})
        rows = {int(k): np.asarray(v, dtype=np.float64) for k, v in data.get("logprobs", {}).items()}
        scored = Scored(np.asarray(data["nll"], dtype=np.float64), np.asarray(data["count"], dtype=np.int64),
                        float(data["nll_sum"]), int(data["tokens"]), int(data["bytes"]), rows, dict(data.get("info", {})))
        if self.units is None:
            self.units = np.asarray(data["units"], dtype=np.int64)
            self.times = np.asarray(data.get("times", []), dtype=np.int64) if data.get("times") else None
        self.last_info = scored.info
        return scored

    def scoring_times(self, num_targets: int) -> np.ndarray | None:
        """When each target was scored on the unflipped stream (documents may be scored out of order)."""
        return self.times

    def scoring_units(self, num_targets: int) -> np.ndarray:
        """Which captured row (window) scored each target on the unflipped stream."""
        return self.units if self.units is not None else np.full(num_targets, -1, dtype=np.int64)

    def boundary_targets(self, num_targets: int) -> list[int]:
        """First targets of the second row, of the rows around a batch edge, of the middle and last row."""
        if self.units is None:
            return []
        starts = [int(np.argmax(self.units == u)) for u in np.unique(self.units[self.units >= 0])]
        picks = [1, BATCH_EDGE - 1, BATCH_EDGE, len(starts) // 2, len(starts) - 1]
        return sorted({starts[k] for k in picks if 0 <= k < len(starts)})
