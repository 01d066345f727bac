"""Adapters that turn something able to score tokens into an ``NllSource`` for the engine."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from reference_model.evaluate import Evaluator, Scored, enumerate_windows, get_evaluator, reuse_unchanged_batches
from reference_model.metric import ByteLUTs


class EvaluatorSource:
    """A reference evaluator bound to a model and byte LUTs.

    Besides ``run`` it tells the engine where the interesting flips are (window, batch and
    chunk edges) and which window scored each target, so that a leak can be attributed to
    the target or the context channel.
    """

    reuse = True  # reuse unchanged batches across flip runs (benchmarks switch it off to compare)

    def __init__(self, evaluator: Evaluator, model: torch.nn.Module, luts: ByteLUTs, label: str | None = None) -> None:
        self.evaluator = evaluator
        self.model = model.eval()
        self.luts = luts
        self.name = label or evaluator.describe()
        self.vocab_size = int(model.output_weight().shape[0])

    @classmethod
    def from_name(cls, name: str, settings: dict[str, Any], model: torch.nn.Module, luts: ByteLUTs,
                  label: str | None = None) -> "EvaluatorSource":
        return cls(get_evaluator(name, settings), model, luts, label)

    def run(self, tokens: torch.Tensor, targets: torch.Tensor | None = None,
            logprob_positions: Sequence[int] = ()) -> Scored:
        # Adaptive evaluators (SLOT, TTT) need autograd inside score(): no no_grad here.
        return self.evaluator.score(self.model, tokens, self.luts, targets=targets, logprob_positions=logprob_positions)

    def reuse_unchanged_work(self):
        """Context for a series of flip runs: a batch of windows whose inputs, targets and model
        are bit-identical to one already computed in the series is not computed again
        (``reference_model.evaluate.memo``). Exact for a deterministic source, which the
        null control establishes first, outside this context."""
        return reuse_unchanged_batches(self.model) if self.reuse else contextlib.nullcontext()

    # -- geometry ----------------------------------------------------------------------

    def _setting(self, *names: str, default: Any = None) -> Any:
        for name in names:
            if hasattr(self.evaluator.settings, name):
                return getattr(self.evaluator.settings, name)
        return default

    def _geometry(self) -> tuple[int, int]:
        hp = getattr(self.model, "hp", None)
        seq_len = self._setting("seq_len", default=0) or (hp.eval_seq_len if hp else 2048)
        has_stride = any(f.name == "stride" for f in dataclasses.fields(self.evaluator.settings))
        stride = (self._setting("stride", default=0) or (hp.eval_stride if hp else 64)) if has_stride else seq_len
        return int(seq_len), int(min(stride, seq_len))

    def _windows(self, num_targets: int):
        seq_len, stride = self._geometry()
        tail = self._setting("tail", default="once")
        return enumerate_windows(num_targets, seq_len, stride, tail if tail in ("once", "records") else "once")

    def scoring_units(self, num_targets: int) -> np.ndarray:
        """Index of the (last) window that scores each target."""
        units = np.full(num_targets, -1, dtype=np.int64)
        for k, w in enumerate(self._windows(num_targets)):
            units[w.score_from:w.end] = k
        return units

    def boundary_targets(self, num_targets: int) -> list[int]:
        """Targets at the edges where leaks hide: windows, SLOT batches, TTT chunks."""
        windows = self._windows(num_targets)
        out: list[int] = []
        if len(windows) > 1:
            out += [windows[0].end - 1, windows[1].score_from, windows[len(windows) // 2].score_from]
        batch = int(self._setting("batch", default=0) or 0)
        if 0 < batch < len(windows):
            out += [windows[batch - 1].end - 1, windows[batch].score_from]
        chunk = int(self._setting("chunk", "chunk_tokens", default=0) or 0)
        if 0 < chunk < num_targets:
            out += [chunk - 1, chunk]
        return sorted(set(p for p in out if 0 <= p < num_targets))

