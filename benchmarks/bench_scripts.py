"""Benchmark and sweep: audit every submission script of a tree; print the verdict table and the time per script.

    python benchmarks/bench_scripts.py ../shared/records            # every merged record (both tracks)
    python benchmarks/bench_scripts.py ../shared/prs --jobs 2        # labelled PRs: also expected vs got
    python benchmarks/bench_scripts.py ROOT --only VarLen --json out.json

Per script: the causality verdict, what decided it, the concerns (causal, normalized, coverage,
doc), the seconds, and the reason when it is not conclusive. Then the counts and the median
and maximum seconds per script. With a ``labels.json`` at the root (``../shared/prs``), each
labelled concern is compared with the audit's verdict on it. Note the machine's load with the
times (``os.getloadavg`` is printed): the audit of one script runs single-threaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from golf_audit.submission.sweep import (discover, expected_for, load_labels, summarize, sweep,  # noqa: E402
                                         to_json)

CONCERNS = ("causal", "normalized", "coverage", "doc")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", action="append", default=[], help="audit only scripts whose path contains this")
    ap.add_argument("--json", type=Path, help="also write every row as JSON here")
    ap.add_argument("--flips", type=int, default=64)
    args = ap.parse_args()
    scripts = [p for p in discover(args.root) if not args.only or any(o in str(p) for o in args.only)]
    labels = load_labels(args.root)
    print(f"{len(scripts)} scripts under {args.root}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores", file=sys.stderr)
    t0 = time.perf_counter()

    def show(row) -> None:
        c = " ".join(f"{k[:4]}={row.concerns.get(k, '-')}" for k in CONCERNS)
        print(f"{row.status:6s} {row.seconds:6.1f}s {row.decided_by:15s} {c}  {row.script}", file=sys.stderr)

    rows = sweep(args.root, scripts, args.jobs, {"flips": args.flips}, progress=show)
    print(f"{'verdict':7s} {'seconds':>7s} {'decided by':15s} " + " ".join(f"{k:10s}" for k in CONCERNS) + " script")
    for r in rows:
        print(f"{r.status:7s} {r.seconds:7.1f} {r.decided_by:15s} " + " ".join(f"{r.concerns.get(k, '-'):10s}"
                                                                            for k in CONCERNS) + f" {r.script}")
        if r.status == "error":
            print(f"        reason: {r.summary[:400]}")
        expected = expected_for(r, labels)
        for concern, want in expected.items():
            if concern in CONCERNS:
                got = r.concerns.get(concern, "-")
                print(f"        label {concern}: expected {want}, got {got} {'OK' if got == want else 'MISMATCH'}")
    s = summarize(rows)
    print(f"\n{s['scripts']} scripts: {s['pass']} pass, {s['fail']} fail, {s['error']} error; "
          f"{s['median_s']:.1f} s median, {s['max_s']:.1f} s max per script; {time.perf_counter() - t0:.0f} s wall; "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(to_json(rows))


if __name__ == "__main__":
    main()
