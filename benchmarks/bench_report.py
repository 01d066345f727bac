"""How long `golf-audit report --recursive` takes over a records tree, and what the shared collection saves.

Ours: one ``AuditContext`` per folder, so the records reader and the artifact audit run once
and every check reads the memoized result. Naive: a fresh context per check (each check
re-parses the folder), the same checks, the same tree, one run each.

    python benchmarks/bench_report.py [TREE]     # default ../shared/records/track_10min_16mb

The issue's budget: ≤ 30 s on 2 cores for the whole track, without dynamic checks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from golf_audit.checks import AuditContext, AuditOptions, all_checks
from golf_audit.render import render
from golf_audit.report import audit_tree, find_folders

DEFAULT_TREE = Path(__file__).resolve().parents[1].parent / "shared" / "records" / "track_10min_16mb"


def naive(tree: Path) -> float:
    started = time.perf_counter()
    for folder, leader in find_folders(tree):
        for check in all_checks():
            check.evaluate(AuditContext(folder, AuditOptions(baseline=leader)))
    return time.perf_counter() - started


def ours(tree: Path) -> tuple[float, float, int]:
    started = time.perf_counter()
    report = audit_tree(tree)
    audited = time.perf_counter() - started
    for fmt in ("table", "markdown", "json", "sarif"):
        render(report, fmt)
    return audited, time.perf_counter() - started, len(report.folders)


def main() -> None:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TREE
    if not tree.is_dir():
        sys.exit(f"no records tree at {tree}")
    started = time.perf_counter()
    import golf_audit.artifact  # noqa: F401 - pulls in torch: a one-time cost, timed on its own

    imports = time.perf_counter() - started
    audited, total, n = ours(tree)
    slow = naive(tree)
    print(f"tree: {tree} ({n} folders, {len(all_checks())} checks each, no dynamic checks)")
    print(f"ours  (shared collection): audit {audited:.2f} s, audit + 4 renderings {total:.2f} s "
          f"({audited / n * 1000:.0f} ms/folder); budget 30 s")
    print(f"one-time imports (torch via the artifact audit): {imports:.2f} s")
    print(f"naive (re-collect per check): {slow:.2f} s")
    print(f"ratio naive/ours: {slow / audited:.1f}x")


if __name__ == "__main__":
    main()
