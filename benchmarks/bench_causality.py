"""Cost of the causality zoo audit (the no-argument ``golf-audit causality``, the main job).

Three measurements, each re-runnable with one command:

* ``--reuse both`` (default): the zoo audit in this process twice, side by side, without and
  with the reuse of unchanged batches across flip runs (``reference_model.evaluate.memo``):
  per member the CPU seconds of all its runs (2 baseline + 2 per flip), the totals, the
  ratio, and that both give the same verdicts and the same numbers;
* ``--main-job``: the CLI command itself as a subprocess (``golf-audit causality``, warm
  demo cache), its wall time and CPU time, with the load average before and after;
* the wall time against the summed CPU time (the speed-up the worker processes give).

The machine's load matters: wall time bills other processes' load to us, CPU seconds much
less (though a busy sibling hyperthread still slows us). Each line says which it is.

    python benchmarks/bench_causality.py                  # reuse off vs on, 2 workers, 64 flips
    python benchmarks/bench_causality.py --main-job       # also time `golf-audit causality` itself
    python benchmarks/bench_causality.py --reuse on --workers 1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def run_zoo(demo, stream, flips: int, workers: int, reuse: bool):
    from golf_audit.causality import sources
    from golf_audit.causality.engine import AuditOptions
    from golf_audit.causality.run import audit_zoo

    sources.EvaluatorSource.reuse = reuse
    try:
        return audit_zoo(demo.model, demo.luts, stream, AuditOptions(flips=flips), workers=workers)
    finally:
        sources.EvaluatorSource.reuse = True


def table(report, label: str) -> float:
    print(f"\n{label}: wall {report.wall_seconds:.1f} s, all expected verdicts: {report.verdict.value}")
    print(f"{'member':24s} {'verdict':8s} {'runs':>5s} {'CPU s':>7s} {'ms/run':>7s}")
    total = 0.0
    for s in report.subjects:
        r = s.result
        total += r.seconds
        print(f"{s.label:24s} {r.status.value:8s} {r.runs:5d} {r.seconds:7.2f} {1000 * r.seconds / max(1, r.runs):7.1f}")
    print(f"sum of CPU seconds {total:.1f}; parallel speed-up (CPU sum / wall) {total / report.wall_seconds:.2f}x")
    return total


def same_results(a, b) -> bool:
    def facts(report):
        return [(s.label, s.result.status, s.result.stream_flip.flips_with_leak, s.result.stream_flip.positions_affected,
                 s.result.target_flip.flips_with_leak, s.result.stream_flip.max_abs_delta,
                 s.result.self_prediction.mean if s.result.self_prediction else None) for s in report.subjects]
    return facts(a) == facts(b)


def main_job(workers: int) -> None:
    exe = shutil.which("golf-audit")
    cmd = [exe, "causality"] if exe else [sys.executable, "-c", "from golf_audit.cli import main; main()", "causality"]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(cmd, cwd=REPO, env=env, capture_output=True)  # warm the demo cache and the page cache
    before = load()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    first = (proc.stdout.splitlines() or ["(no output)"])[0]
    shown = "golf-audit causality" + (f" --workers {workers}" if workers else "")
    print(f"\nmain job `{shown}`: exit {proc.returncode}, wall {wall:.1f} s, CPU {cpu:.1f} s (all its processes)")
    print(f"  {first}")
    print(f"  before: {before}; after: {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flips", type=int, default=64)
    parser.add_argument("--reuse", choices=["both", "on", "off", "none"], default="both",
                        help="in-process zoo runs: without and with batch reuse (both), one of them, or none")
    parser.add_argument("--main-job", action="store_true", help="also time the CLI main job as a subprocess")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{load()}; torch {torch.__version__}; {args.workers} workers, {args.flips} flips")

    if args.reuse != "none":
        from golf_audit.causality.run import audit_stream
        from reference_model.demo import load_demo

        t0 = time.perf_counter()
        demo = load_demo()
        stream = audit_stream(demo.val_tokens)
        print(f"setup (imports, demo model) {time.perf_counter() - t0:.1f} s; stream {stream.numel()} tokens")
        modes = {"both": [False, True], "on": [True], "off": [False]}[args.reuse]
        reports = {}
        for reuse in modes:
            reports[reuse] = run_zoo(demo, stream, args.flips, args.workers, reuse)
        totals = {reuse: table(rep, f"reuse of unchanged batches {'ON' if reuse else 'OFF'}") for reuse, rep in reports.items()}
        if len(reports) == 2:
            print(f"\nreuse ON vs OFF: CPU {totals[True]:.1f} s vs {totals[False]:.1f} s "
                  f"({totals[False] / totals[True]:.2f}x less), wall {reports[True].wall_seconds:.1f} s vs "
                  f"{reports[False].wall_seconds:.1f} s; identical verdicts and numbers: {same_results(*reports.values())}")
    if args.main_job:
        main_job(args.workers)


if __name__ == "__main__":
    main()
