"""Benchmark: the shrunk depth against the script's own depth, audited side by side.

For each script, the audit runs in turns (A B A B ...): A at the tiny configuration, whose
depth shrinks with the layer positions mapped (``analyze._depth_plan``), and B with
``NUM_LAYERS`` set to the script's own default (a layer variable set by the user keeps the
depth, so B is the configuration of a depth that is never shrunk). Per pair it prints the
whole audit's seconds, the flips each scoring function reached within the time budget, the
seconds per replay of the reported function, the verdicts, and the ratio A/B.

    python benchmarks/bench_depth.py SCRIPT [SCRIPT ...] [--pairs 2]

A script whose depth does not shrink is reported as such and not timed.
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from golf_audit.submission import analyze  # noqa: E402
from golf_audit.submission.audit import audit_script  # noqa: E402

PER_RUN = re.compile(r"([0-9.]+) s per run")


def one(script: Path, env: dict[str, str]) -> dict[str, object]:
    t0 = time.perf_counter()
    audit = audit_script(script, env=env)
    seconds = time.perf_counter() - t0
    tested = [f for f in audit.functions if f.causality is not None]
    per_run = [float(m.group(1)) for f in tested if f.reported for n in f.notes for m in [PER_RUN.search(n)] if m]
    return {"seconds": seconds, "status": audit.status.value,
            "flips": ", ".join(f"{f.name} {len(f.causality.flip_positions)}" for f in tested),
            "per_run": per_run[0] if per_run else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="+", type=Path)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    for script in args.scripts:
        try:
            variables = analyze.env_vars(ast.parse(script.read_text()))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            print(f"bench_depth: {script}: cannot be read as a Python script ({exc})", file=sys.stderr)
            return 2
        shrunk = analyze.tiny_env(variables, analyze.submitted_config(script.parent, variables))
        own = next((v for v in variables if v.name == "NUM_LAYERS"), None)
        if own is None or "NUM_LAYERS" not in shrunk:
            print(f"{script}: the depth does not shrink; not timed")
            continue
        full = {"NUM_LAYERS": str(int(float(analyze._literal(own.default))))}
        print(f"{script}: A = {shrunk['NUM_LAYERS']} layers (mapped), B = {full['NUM_LAYERS']} layers (the script's own)")
        ratios = []
        for k in range(args.pairs):
            a, b = one(script, {}), one(script, full)
            ratios.append(a["seconds"] / b["seconds"])
            for name, r in (("A", a), ("B", b)):
                per = f"{r['per_run']:.2f} s/replay" if r["per_run"] else "all flips asked"
                print(f"  pair {k + 1} {name}: {r['seconds']:6.1f} s  {r['status']:5s}  {per:16s}  flips: {r['flips']}")
            print(f"  pair {k + 1} A/B = {ratios[-1]:.2f}")
        print(f"  median A/B = {statistics.median(ratios):.2f} over {len(ratios)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
