"""Benchmark: what the OS sandbox costs an audit, as ratios to an unsandboxed child, side by side.

Three measurements, each alternating sandboxed and unsandboxed (``unsafe_no_sandbox``) runs
so that machine load hits both alike:

1. start-up: from ``ChildProcess(...)`` to the setup answer (bubblewrap, the guard's audit
   hook, torch import, the script executed, the tiny model built);
2. one eval run in the ready child (the audit hook sees every event the eval raises);
3. a whole ``audit_script`` at the default 64 flips, against the 60 s per-script budget.

    python benchmarks/bench_sandbox.py [--repeat 5] [fixture.py]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_submission import child_costs  # noqa: E402 - one way to time a child
from golf_audit.submission import sandbox  # noqa: E402
from golf_audit.submission.audit import audit_script  # noqa: E402

SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
BUDGET_S = 60.0


def one_child(script: Path, function: str, unsafe: bool, runs: int) -> tuple[float, float]:
    """(seconds to a ready child that ran the entry point, seconds per replay) for ``function`` of ``script``."""
    start, per_run, _entry = child_costs(script, function, runs, unsafe_no_sandbox=unsafe)
    return start, per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("fixture", nargs="?", default="sliding_legal.py")
    args = parser.parse_args()
    reason = sandbox.unavailable_reason()
    if reason:
        sys.exit(f"bench_sandbox: {reason}")
    sys.path.insert(0, str(SCRIPTS))
    import make_fixtures  # the fixture scripts are generated from one template, not committed

    make_fixtures.main()
    script, function = SCRIPTS / args.fixture, "eval_val_sliding"
    one_child(script, function, True, 1)  # warm the page cache for both
    starts: dict[bool, list[float]] = {True: [], False: []}
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for unsafe in (False, True):
            start, per_run = one_child(script, function, unsafe, 4)
            starts[unsafe].append(start)
            runs[unsafe].append(per_run)
    med = {k: statistics.median(v) for k, v in starts.items()}
    run_med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"fixture {args.fixture} ({function}), {args.repeat} alternating repeats, medians")
    print(f"{'':28s} {'sandbox':>9s} {'no sandbox':>11s} {'ratio':>7s}")
    print(f"{'child start-up (s)':28s} {med[False]:9.2f} {med[True]:11.2f} {med[False] / med[True]:7.2f}")
    print(f"{'one eval run (s)':28s} {run_med[False]:9.3f} {run_med[True]:11.3f} {run_med[False] / run_med[True]:7.2f}")
    walls = {}
    for unsafe in (False, True):
        t0 = time.perf_counter()
        audit_script(script, functions=[function], unsafe_no_sandbox=unsafe)
        walls[unsafe] = time.perf_counter() - t0
    print(f"{'whole audit, 64 flips (s)':28s} {walls[False]:9.1f} {walls[True]:11.1f} {walls[False] / walls[True]:7.2f}")
    print(f"per-script budget {BUDGET_S:.0f} s: {'kept' if walls[False] <= BUDGET_S else 'EXCEEDED'} "
          f"(sandbox start-up overhead {med[False] - med[True]:+.2f} s per audit)")


if __name__ == "__main__":
    main()
