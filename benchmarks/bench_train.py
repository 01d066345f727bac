"""Training throughput of the tiny preset on CPU: 1 process vs 2 gloo processes.

    nice python benchmarks/bench_train.py [--steps 30]

Runs the real entry point (``python -m reference_model.train`` and
``torchrun --nproc_per_node=2 -m reference_model.train``) with the same global batch
(TRAIN_BATCH_TOKENS=4096), reads step_avg from the records-format log and prints step time,
tokens/s and the ratio. Also compares 1 micro-batch vs the seed's 8 micro-batches per step.
On a machine with 2 shared cores the 2-process figure measures overhead, not scaling.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 4096


def step_avg_ms(nproc: int, steps: int, grad_accum: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PRESET": "tiny", "ITERATIONS": str(steps), "WARMUP_STEPS": "2", "MAX_WALLCLOCK_SECONDS": "0",
               "TRAIN_LOG_EVERY": str(steps), "EVAL_STRIDE": "128", "OUTPUT_DIR": out, "RUN_ID": "bench",
               "GRAD_ACCUM_STEPS": str(grad_accum), "OMP_NUM_THREADS": "1", "TRAIN_BATCH_TOKENS": str(BATCH)}
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else [sys.executable]
        subprocess.run(launcher + ["-m", "reference_model.train"], cwd=REPO, env=env, check=True, capture_output=True)
        log = (Path(out) / "bench.txt").read_text()
    return float(re.findall(rf"^step:{steps}/{steps} train_loss:\S+ train_time:\d+ms step_avg:([0-9.]+)ms", log, re.M)[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    rows = [("1 process, 1 micro-batch", step_avg_ms(1, args.steps, 1)),
            ("1 process, 8 micro-batches (seed)", step_avg_ms(1, args.steps, 8)),
            ("2 gloo processes, 1 micro-batch each", step_avg_ms(2, args.steps, 1))]
    base = rows[0][1]
    print(f"tiny preset, global batch {BATCH} tokens, {args.steps} steps, 1 thread per process")
    for name, ms in rows:
        print(f"{name:40s} step {ms:8.1f} ms  {BATCH / ms * 1000:10,.0f} tokens/s  vs 1 process: {base / ms:.2f}x")


if __name__ == "__main__":
    main()
