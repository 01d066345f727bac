"""Cost of the causality zoo audit: per-flip cost and total per zoo member, and the parallel speed-up.

One run of the default zoo audit (demo model, 665-token audit stream, 64 flips) with the
given number of workers. Per member it prints the CPU seconds of all its runs (baseline,
null control, and a stream flip + target flip per flip) and the cost per flip; then the wall
time against the summed CPU time (the ratio is the speed-up the worker processes give).

    python benchmarks/bench_causality.py [--workers 2] [--flips 64]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flips", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    from golf_audit.causality.engine import AuditOptions
    from golf_audit.causality.run import audit_stream, audit_zoo
    from reference_model.demo import load_demo

    demo = load_demo()
    setup = time.perf_counter() - t0
    stream = audit_stream(demo.val_tokens)
    report = audit_zoo(demo.model, demo.luts, stream, AuditOptions(flips=args.flips), workers=args.workers)

    print(f"zoo audit: {stream.numel()} tokens, {args.flips} flips, {args.workers} workers; setup {setup:.1f} s")
    print(f"{'member':24s} {'verdict':8s} {'runs':>5s} {'CPU s':>7s} {'ms/run':>7s} {'ms/flip':>8s}")
    total = 0.0
    for s in report.subjects:
        r = s.result
        total += r.seconds
        flips = max(1, r.stream_flip.flips)
        print(f"{s.label:24s} {r.status.value:8s} {r.runs:5d} {r.seconds:7.2f} {1000 * r.seconds / max(1, r.runs):7.1f} "
              f"{1000 * r.seconds / flips:8.1f}")
    print(f"sum of CPU seconds {total:.1f}; wall {report.wall_seconds:.1f} s; "
          f"parallel speed-up (CPU sum / wall) {total / report.wall_seconds:.2f}x with {args.workers} workers")
    print(f"all expected verdicts: {report.verdict.value}")


if __name__ == "__main__":
    main()
