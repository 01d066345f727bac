"""CLI start-up: wall time of the commands that need no model, lazy imports vs eager ones.

Each command runs in a fresh interpreter (start-up is per process), several times, and the
median is reported, side by side in one run:

- ``lazy``: the CLI as it ships (command modules import torch/scipy inside the commands);
- ``eager``: the same command after ``import torch, scipy.stats`` in the same process: the
  behaviour before the lazy imports, when importing the CLI imported both for every command.

Also timed: a bare interpreter and ``import torch`` alone (the floor and the cost avoided).

    python benchmarks/bench_startup.py [--runs 5]

Targets (issue 17): ``--help`` and ``checks`` < 0.5 s wall; no torch for --help, checks,
significance, and report/artifact on a folder without a .ptz.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "tests" / "fixtures" / "report" / "tree" / "track_10min_16mb" / "2026-01-05_Better"
BASELINE = FOLDER.parent / "2026-01-01_Baseline"

COMMANDS = {
    "--help": ["--help"],
    "checks": ["checks"],
    "significance": ["significance", "--values", "1.2058,1.2060,1.2057", "--ratio", "0.5922", "--baseline-mean", "1.2244"],
    "report (no .ptz)": ["report", str(FOLDER), "--baseline", str(BASELINE)],
    "artifact (no .ptz)": ["artifact", str(FOLDER)],
}

RUN = """
import sys
{preload}
from golf_audit.cli import app
try:
    app(sys.argv[1:], prog_name="golf-audit")
except SystemExit:
    pass
mods = [m for m in ("torch", "scipy") if m in sys.modules]
sys.stderr.write("\\nIMPORTED " + ",".join(mods) + "\\n")
"""


def wall(code: str, args: list[str]) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    imported = next((line[len("IMPORTED "):] for line in proc.stderr.splitlines() if line.startswith("IMPORTED ")), "?")
    return seconds, imported


def median(code: str, args: list[str], runs: int) -> tuple[float, str]:
    times, imported = [], ""
    for _ in range(runs):
        seconds, imported = wall(code, args)
        times.append(seconds)
    return statistics.median(times), imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported)")
    runs = parser.parse_args().runs
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average {load:.2f}, median of {runs} runs")
    bare, _ = median("pass", [], runs)
    torch_only, _ = median("import torch", [], runs)
    print(f"bare interpreter: {bare:.3f} s; import torch alone: {torch_only:.3f} s")
    print(f"{'command':<20} {'lazy (s)':>9} {'imports':>12} {'eager (s)':>10} {'eager/lazy':>11}")
    lazy_code = RUN.format(preload="")
    eager_code = RUN.format(preload="import torch, scipy.stats  # the old eager imports")
    for name, args in COMMANDS.items():
        lazy, imported = median(lazy_code, args, runs)
        eager, _ = median(eager_code, args, runs)
        target = "  (target < 0.5 s)" if name in ("--help", "checks") else ""
        print(f"{name:<20} {lazy:>9.3f} {imported or 'neither':>12} {eager:>10.3f} {eager / lazy:>10.1f}x{target}")


if __name__ == "__main__":
    main()
