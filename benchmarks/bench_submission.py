"""Benchmark: auditing submission-like scripts (golf-audit causality SCRIPT), one run each.

Prints, per fixture, the wall time of the whole audit at the default 64 flips, and for one
scoring function the cost of a flip in the persistent sandboxed child (replaying the frozen
call) versus the naive design (running the script's whole entry point again for every flip).

    python benchmarks/bench_submission.py [fixture.py ...]
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from golf_audit.submission import analyze  # noqa: E402
from golf_audit.submission.audit import ROW_LEN, audit_script, audit_stream  # noqa: E402
from golf_audit.submission.runner import ChildProcess  # noqa: E402

SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
DEFAULT = ["sliding_legal.py", "slot_scored_mask.py", "slot_context_window.py", "ttt_score_first.py",
           "inline_slot.py", "wrapper_slot_scored.py"]


def child_costs(script: Path, function: str, runs: int, **child_options: object) -> tuple[float, float, float]:
    """(seconds to start the child and run the entry point, seconds per replay, seconds per entry run).

    ``child_options`` go to ``ChildProcess`` (e.g. ``unsafe_no_sandbox``, for bench_sandbox.py).
    """
    text = script.read_text()
    tree = ast.parse(text)
    env = analyze.tiny_env(analyze.env_vars(tree))
    tokens = audit_stream(analyze.TINY_VOCAB, 24 * ROW_LEN + 1, 0)
    t0 = time.perf_counter()
    with ChildProcess(text, extra_env=env, **child_options) as child:
        ready = child.request({"script": str(child.script), "scoring": [function], "tokens": tokens.tolist(),
                               "vocab": analyze.TINY_VOCAB, "seed": 0, "row_len": ROW_LEN})
        t1 = time.perf_counter()
        call = next(c["id"] for c in ready["calls"] if c["name"] == function)
        for _ in range(runs):
            child.request({"op": "run", "call": call, "tokens": tokens.tolist()})
        t2 = time.perf_counter()
        child.request({"op": "pipeline", "tokens": tokens.tolist()})
        t3 = time.perf_counter()
    return t1 - t0, (t2 - t1) / runs, t3 - t2


def main() -> None:
    sys.path.insert(0, str(SCRIPTS))
    import make_fixtures  # the fixture scripts are generated from one template, not committed

    make_fixtures.main()
    names = sys.argv[1:] or DEFAULT
    print(f"{'fixture':28s} {'verdict':8s} {'functions':>9s} {'seconds':>8s}")
    for name in names:
        t0 = time.perf_counter()
        audit = audit_script(SCRIPTS / name)
        print(f"{name:28s} {audit.status.value:8s} {len(audit.functions):9d} {time.perf_counter() - t0:8.1f}")
    flips = 2 + 64 + 1  # null control pair, 64 stream flips, positive control
    for script, fn in (("sliding_legal.py", "eval_val_sliding"), ("slot_scored_mask.py", "eval_val_slot")):
        setup, per_replay, per_entry = child_costs(SCRIPTS / script, fn, 8)
        ours, naive = setup + flips * per_replay, setup + flips * per_entry
        print(f"{fn}: child start + entry run {setup:.2f} s, {per_replay:.3f} s per replay, {per_entry:.2f} s per "
              f"entry run; {flips} flips: frozen-call replays {ours:.1f} s vs the entry point per flip {naive:.1f} s "
              f"(naive/ours = {naive / ours:.1f}x)")


if __name__ == "__main__":
    main()
