"""Benchmark: auditing submission-like scripts (golf-audit causality SCRIPT), one run each.

Prints, per fixture, the wall time of the whole audit at the default 64 flips, and for one
eval function the cost of a run in the persistent sandboxed child versus the naive design
(a fresh child, importing torch and building the model, for every run).

    python benchmarks/bench_submission.py [fixture.py ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from golf_audit.submission.audit import ROW_LEN, audit_script, audit_stream  # noqa: E402
from golf_audit.submission.plan import make_plan  # noqa: E402
from golf_audit.submission.runner import ChildProcess  # noqa: E402

SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
DEFAULT = ["sliding_legal.py", "slot_scored_mask.py", "slot_context_window.py", "ttt_score_first.py",
           "inline_slot.py", "wrapper_slot_scored.py"]


def child_costs(script: Path, function: str, runs: int, **child_options: object) -> tuple[float, float]:
    """(seconds to start a child and build the model, seconds per eval run) for ``function``.

    ``child_options`` go to ``ChildProcess`` (e.g. ``unsafe_no_sandbox``, for bench_sandbox.py).
    """
    text = script.read_text()
    plan = make_plan(text, str(script), [function])
    target = next(t for t in plan.targets if t.name == function)
    setup = {"build": plan.build, "row_len": ROW_LEN, "targets": [{"name": target.name, "bindings": target.bindings,
             "prelude": target.prelude, "define": target.define, "stride_exprs": target.stride_exprs}]}
    t0 = time.perf_counter()
    with ChildProcess(text, extra_env=plan.tiny_env, **child_options) as child:
        ready = child.request({**setup, "script": str(child.script)})
        t1 = time.perf_counter()
        tokens = audit_stream(int(ready["vocab_size"]), 1537, 0).tolist()
        for _ in range(runs):
            child.request({"op": "run", "target": function, "tokens": tokens})
        t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) / runs


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
    runs = 2 + 64 + 1  # null control pair, 64 stream flips, positive control
    for script, fn in (("sliding_legal.py", "eval_val_sliding"), ("slot_scored_mask.py", "eval_val_slot")):
        setup, per_run = child_costs(SCRIPTS / script, fn, 8)
        ours, naive = setup + runs * per_run, runs * (setup + per_run)
        print(f"{fn}: child start+build {setup:.2f} s, {per_run:.3f} s/run; {runs} runs: persistent child {ours:.1f} s "
              f"vs a fresh child per run {naive:.1f} s (naive/ours = {naive / ours:.1f}x)")


if __name__ == "__main__":
    main()
