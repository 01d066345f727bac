"""Forward and sliding-eval throughput of the reference model on CPU.

    nice python benchmarks/bench_model.py [--threads 1]

Prints tokens/s for the tiny preset and the full seed model (26.9M parameters, seq 2048),
the sliding evaluator batched (ours) vs one window per forward (naive), same input, and the
export's int6 clip search: one sort per matrix (ours) vs torch.quantile per quantile (naive).
Figures depend on the machine and its load: compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import time

import torch

from reference_model.config import Hyperparameters
from reference_model.demo import tiny_hp
from reference_model.evaluate import get_evaluator
from reference_model.metric import ByteLUTs
from reference_model.model import GPT


def forward_tokens_per_s(hp: Hyperparameters, batch: int, seq_len: int, reps: int) -> float:
    torch.manual_seed(0)
    model = GPT(hp).eval()
    ids = torch.randint(0, hp.vocab_size, (batch, seq_len))
    with torch.no_grad():
        model.forward_logits(ids)  # warm-up: allocator, kernels
        t0 = time.perf_counter()
        for _ in range(reps):
            model.forward_logits(ids)
        dt = time.perf_counter() - t0
    return batch * seq_len * reps / dt


def sliding_tokens_per_s(batch: int, n_tokens: int) -> tuple[float, int]:
    hp = tiny_hp()
    torch.manual_seed(0)
    model = GPT(hp).eval()
    tokens = torch.randint(4, hp.vocab_size, (n_tokens,))
    luts = ByteLUTs(torch.ones(hp.vocab_size, dtype=torch.int64), torch.zeros(hp.vocab_size, dtype=torch.bool),
                    torch.zeros(hp.vocab_size, dtype=torch.bool))
    ev = get_evaluator("sliding", {"seq_len": hp.eval_seq_len, "stride": hp.eval_stride, "batch": batch})
    t0 = time.perf_counter()
    scored = ev.score(model, tokens, luts)
    return scored.tokens / (time.perf_counter() - t0), scored.tokens


def clip_search_seconds(naive: bool) -> float:
    from reference_model import export

    w = torch.randn(1536, 512, generator=torch.Generator().manual_seed(0)) * 0.02  # a seed MLP matrix
    t0 = time.perf_counter()
    for _ in range(3):
        if naive:
            [torch.quantile(w.abs(), q, dim=1) for q in export.INT6_CLIP_QUANTILES]
        else:
            export.row_quantiles(w.abs(), export.INT6_CLIP_QUANTILES)
    return (time.perf_counter() - t0) / 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    tiny = forward_tokens_per_s(tiny_hp(), batch=32, seq_len=128, reps=10)
    print(f"forward tiny  (B=32, T=128):  {tiny:12,.0f} tokens/s")
    full = forward_tokens_per_s(Hyperparameters(), batch=1, seq_len=2048, reps=2)
    print(f"forward seed  (B=1, T=2048):  {full:12,.0f} tokens/s   tiny/seed = {tiny / full:.1f}x")
    ours, n = sliding_tokens_per_s(batch=64, n_tokens=8193)
    naive, _ = sliding_tokens_per_s(batch=1, n_tokens=8193)
    print(f"sliding tiny  (T=128, stride 16, {n} targets): batched(64) {ours:10,.0f} tokens/s, "
          f"one window/forward {naive:10,.0f} tokens/s, ratio {ours / naive:.1f}x")
    ours_s, naive_s = clip_search_seconds(False), clip_search_seconds(True)
    print(f"int6 clip quantiles (1536x512): one sort {ours_s * 1000:.1f} ms, torch.quantile x5 {naive_s * 1000:.1f} ms, "
          f"ratio {naive_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
