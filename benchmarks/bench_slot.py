"""SLOT speed: the fast path vs the straightforward full-window SLOT, and vs plain sliding.

Same TINY demo model, same stream, the seed PR's SLOT settings (seq_len 2048, stride 64,
batch 32, 16 AdamW steps, lr 0.008 -> 0.0008, mask=scored, per-window delta + logit bias, its
window enumeration), one run each: our scored-position SLOT (impl=fast), the seed's way of
computing it (impl=reference: full-window logits and autograd every step), and plain sliding
(the shared forward pass: SLOT / sliding cannot go below 1.0). Prints CPU times, ratios and
|delta val_bpb|; no assertions (not a test).

    python benchmarks/bench_slot.py                 # seed geometry on ~4k tokens
    python benchmarks/bench_slot.py --mask context  # the causal variant
    python benchmarks/bench_slot.py --seq-len 128 --stride 16 --tokens 8193   # the audit's TINY geometry
"""

from __future__ import annotations

import argparse
import time

import torch

from reference_model.demo import load_demo
from reference_model.evaluate import get_evaluator


def timed(name: str, settings: dict[str, str], model, tokens, luts):
    ev = get_evaluator(name, settings)
    # CPU seconds of this process: the machine is shared, so wall time would bill others' load to us.
    t0 = time.process_time()
    scored = ev.score(model, tokens, luts)
    return time.process_time() - t0, scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=4097, help="stream length (tokens)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--mask", default="scored", choices=["scored", "context"])
    ap.add_argument("--delta", default="window", choices=["window", "batch"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--skip-reference", action="store_true", help="only time fast SLOT and sliding")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    demo = load_demo()
    tokens = demo.val_tokens[: args.tokens]
    geometry = {"seq_len": str(args.seq_len), "stride": str(args.stride)}
    slot = {**geometry, "mask": args.mask, "delta": args.delta}
    print(f"TINY demo model, {tokens.numel():,} tokens, seq_len {args.seq_len}, stride {args.stride}, "
          f"mask={args.mask}, delta={args.delta}, {args.threads} thread(s), {torch.__version__}")

    # Warm-up on a few tokens so that one-off costs (allocator, kernels) are not billed to either.
    for impl in ("fast", "reference"):
        get_evaluator("slot", {**slot, "impl": impl}).score(demo.model, tokens[:200], demo.luts)

    t_sliding, sliding = timed("sliding", geometry, demo.model, tokens, demo.luts)
    t_fast, fast = timed("slot", {**slot, "impl": "fast"}, demo.model, tokens, demo.luts)
    print(f"sliding            {t_sliding:8.2f} s   val_bpb {sliding.val_bpb:.8f}")
    print(f"slot fast          {t_fast:8.2f} s   val_bpb {fast.val_bpb:.8f}   ({t_fast / t_sliding:.2f}x sliding)")
    if args.skip_reference:
        return
    t_ref, ref = timed("slot", {**slot, "impl": "reference"}, demo.model, tokens, demo.luts)
    print(f"slot full-window   {t_ref:8.2f} s   val_bpb {ref.val_bpb:.8f}   ({t_ref / t_sliding:.2f}x sliding)")
    print(f"speed-up, whole eval:            {t_ref / t_fast:6.1f}x")
    # Both SLOTs share the sliding forward pass; what SLOT adds on top of it is what we sped up.
    extra_fast, extra_ref = max(t_fast - t_sliding, 1e-9), t_ref - t_sliding
    print(f"speed-up, SLOT work beyond the forward: {extra_ref / extra_fast:6.1f}x")
    print(f"|delta val_bpb| fast vs full-window: {abs(fast.val_bpb - ref.val_bpb):.2e}")


if __name__ == "__main__":
    main()
