"""How long `golf-audit report` takes on the records tree (both tracks) and on one folder.

Three figures, one run each, side by side:

1. the whole tree (``../shared/records``, both tracks, in PR order from GROUND_TRUTH as the
   ``--order`` mapping), ours (one ``AuditContext`` per folder: the records reader, the artifact
   audit and the calibration scan run once, every check reads the memoized result), then the
   naive way (a fresh context per check) for the ratio. Budget: ≤ 30 s on 2 cores.
   Compressed-code figures are rebuilt with python-minifier (~1 s per script); they are cached
   in $GOLF_AUDIT_CACHE, so the tree is timed twice: cold cache, then warm.
2. ``golf-audit report FOLDER`` on one folder without a ``.ptz``, as a user runs it (a fresh
   process, start-up included). Budget: ≤ 2 s wall.
3. the same folder through the library in a fresh process, and whether torch / scipy were
   imported on the way (they must not be on this path).

    python benchmarks/bench_report.py [SHARED_DIR]      # default ../shared
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ONE_FOLDER = "records/track_10min_16mb/2026-04-10_VarLenAttn"


def _order(shared: Path) -> dict[str, int]:
    rows = json.loads((shared / "records" / "GROUND_TRUTH.json").read_text())["rows"]
    return {f"{r['track']}/{r['folder']}": r["pr_number"] or 0 for r in rows}


def tree(shared: Path, order: dict[str, int]) -> tuple[float, float, int]:
    from golf_audit.render import render
    from golf_audit.report import audit_tree

    started = time.perf_counter()
    report = audit_tree(shared / "records", order=order)
    audited = time.perf_counter() - started
    md = render(report, "markdown")
    for fmt in ("table", "json", "sarif"):
        render(report, fmt)
    print(f"  markdown of the tree: {len(md):,} characters (GitHub comment limit 65,536)")
    return audited, time.perf_counter() - started, len(report.folders)


def naive(shared: Path, order: dict[str, int]) -> float:
    from golf_audit.checks import AuditContext, AuditOptions, all_checks
    from golf_audit.report import find_folders

    started = time.perf_counter()
    for f in find_folders(shared / "records", order):
        for check in all_checks():
            check.evaluate(AuditContext(f.path, AuditOptions(baseline=f.baseline)))
    return time.perf_counter() - started


def fresh(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    return time.perf_counter() - started, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared"
    if not (shared / "records").is_dir():
        sys.exit(f"no records tree at {shared / 'records'}")
    order = _order(shared)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as cold:
        os.environ["GOLF_AUDIT_CACHE"] = cold  # a cold minifier cache for the first tree run
        print(f"tree {shared / 'records'} (both tracks, no dynamic checks), {os.cpu_count()} CPUs visible:")
        audited, total, n = tree(shared, order)
        print(f"  ours, cold cache: audit {audited:.2f} s, + 4 renderings {total:.2f} s ({audited / n * 1000:.0f} ms/folder)")
        audited, total, n = tree(shared, order)
        print(f"  ours, warm cache: audit {audited:.2f} s, + 4 renderings {total:.2f} s; budget 30 s")
        probe = ("import sys,time;sys.path.insert(0,'tests');from pathlib import Path;"
                 "from golf_audit.checks import all_checks;from golf_audit.report import audit_tree;"
                 "from records_truth import order_mapping;"
                 f"o=order_mapping(Path({str(shared)!r}));"
                 "c=[k for k in all_checks() if not k.id.startswith(('GA-STATIC','GA-CAUSAL','GA-NORM'))];"
                 f"t=time.perf_counter();audit_tree(Path({str(shared / 'records')!r}),order=o,checks=c);"
                 "print(round(time.perf_counter()-t,2))")
        wall, line = fresh([sys.executable, "-c", probe], dict(os.environ, PYTHONPATH=str(REPO)))
        print(f"  of which without the static code checks (GA-STATIC-*, another module's), fresh process: {line} s")
        slow = naive(shared, order)
        print(f"  naive (re-collect per check, warm cache): {slow:.2f} s; ratio naive/ours {slow / audited:.1f}x")
        env["GOLF_AUDIT_CACHE"] = cold
        folder = shared / ONE_FOLDER
        wall, _ = fresh([sys.executable, "-m", "golf_audit.cli", "report", str(folder), "-f", "json"]
                        if (REPO / "golf_audit" / "cli" / "__main__.py").exists()
                        else [sys.executable, "-c", "from golf_audit.cli import main; main()", "report", str(folder),
                              "-f", "json"], env)  # fmt: skip
        print(f"one folder without a .ptz ({ONE_FOLDER}):")
        print(f"  `golf-audit report FOLDER` in a fresh process: {wall:.2f} s wall incl. start-up; budget 2 s")
        probe = ("import sys,time;t=time.perf_counter();from golf_audit.report import audit_single;"
                 f"audit_single({str(folder)!r});print(round(time.perf_counter()-t,2),'torch' in sys.modules,"
                 "'scipy' in sys.modules)")
        wall, line = fresh([sys.executable, "-c", probe], env)
        took, torch_loaded, scipy_loaded = line.split()
        print(f"  library audit in a fresh process: {wall:.2f} s wall ({took} s in the audit); "
              f"torch imported: {torch_loaded}, scipy imported: {scipy_loaded}")


if __name__ == "__main__":
    main()
