"""Records reader throughput: our one-pass log parser vs a naive every-regex-on-every-line parse.

Also times the whole-tree audit (records + artifact + time limits + significance walk), which
``golf-audit report --recursive`` relies on (≤ 30 s on 2 cores for the records tree).
Run: ``python benchmarks/bench_records.py [RECORDS_TREE]`` (default ../shared/records). One run each.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from golf_audit.artifact import audit_artifact, audit_time_limits
from golf_audit.records import find_logs, list_record_folders, parse_log_text
from golf_audit.stats import walk_tree

NAIVE = [re.compile(p) for p in (
    r"step:(\d+)/(\d+).*?train_time:(\d+)ms", r"val_loss:\s*([\d.]+)\s+val_bpb:\s*([\d.]+)", r"seed[:=]\s*(\d+)",
    r"Serialized model.*?:\s*(\d+) bytes", r"Total submission size.*?:\s*(\d+) bytes", r"Code size.*?:\s*(\d+) bytes",
    r"stopping_early.*?train_time:\s*(\d+)ms", r"total_eval_time:\s*([\d.]+)s",
)]  # fmt: skip


def naive_parse(text: str) -> int:
    hits = 0
    for line in text.splitlines():
        for pattern in NAIVE:
            if pattern.search(line):
                hits += 1
    return hits


def main() -> None:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "records"
    folders = list_record_folders(tree)
    texts = [p.read_bytes().decode("utf-8", "replace") for f in folders for p in find_logs(f)]
    size = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    for t in texts:
        parse_log_text(t)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in texts:
        naive_parse(t)
    naive = time.perf_counter() - t0
    print(f"{len(texts)} logs, {size / 1e6:.1f} MB: ours {ours:.3f} s, naive {naive:.3f} s, ratio naive/ours {naive / ours:.2f}x")
    t0 = time.perf_counter()
    for f in folders:
        report = audit_artifact(f)
        audit_time_limits(report.record)
    audit = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = sum(len(walk_tree(track)) for track in sorted(p for p in tree.iterdir() if p.is_dir()))
    walk = time.perf_counter() - t0
    print(f"{len(folders)} folders: artifact+time audit {audit:.2f} s; significance walk ({rows} rows) {walk:.2f} s")


if __name__ == "__main__":
    main()
