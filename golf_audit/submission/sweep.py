"""Audit a whole tree of submission scripts: the verdict table and the time per script.

Which scripts: in every folder of the tree, each ``train*.py`` file is a training/eval script
(``train_gpt.py``, its variants such as ``train_gpt_human.py``, ``train_gpt_cuda_xnor.py``,
``train_mdlm.py``); helper modules they import (``lossless_caps.py``, ``online_ngram_tilt.py``)
and data-preparation scripts (``prepare_caseops_data.py``, ``download_*.py``) are not, and are
audited only as part of the script that loads them.

Used by ``benchmarks/bench_scripts.py`` (the printed table) and by the slow test over
``../shared``.
"""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import GolfAuditError, one_line


@dataclass
class SweepRow:
    script: str  # relative to the tree
    status: str  # the causality verdict: pass | fail | error
    decided_by: str
    summary: str
    seconds: float
    concerns: dict[str, str] = field(default_factory=dict)  # concern -> status
    concern_summaries: dict[str, str] = field(default_factory=dict)
    functions: list[dict[str, Any]] = field(default_factory=list)  # name, status, summary, kind
    static_fails: list[str] = field(default_factory=list)
    entry_error: str = ""
    compat: str = ""


def discover(root: Path) -> list[Path]:
    """Every ``train*.py`` under ``root`` (sorted)."""
    return sorted(p for p in Path(root).rglob("train*.py") if p.is_file() and "__pycache__" not in p.parts)


def audit_one(path: str, root: str, options: dict[str, Any]) -> SweepRow:
    """One script's row; never raises (a crash of the audit is an ``error`` row with its reason)."""
    from .audit import audit_script

    rel = str(Path(path).relative_to(root))
    started = time.perf_counter()
    try:
        audit = audit_script(path, **options)
    except GolfAuditError as exc:
        return SweepRow(rel, "error", "error", f"cannot conclude: {one_line(exc)}", time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a bug of ours on one script must not stop the sweep
        return SweepRow(rel, "error", "error", f"the audit crashed: {type(exc).__name__}: {one_line(exc)}",
                        time.perf_counter() - started)
    return SweepRow(
        rel, audit.status.value, audit.decided_by, audit.summary, time.perf_counter() - started,
        {k: c.status.value for k, c in audit.concerns.items()}, {k: c.summary for k, c in audit.concerns.items()},
        [{"name": v.name, "kind": v.kind, "status": v.status.value, "summary": v.summary[:300],
          "seconds": round(v.seconds, 2), "not_exercised": v.not_exercised} for v in audit.functions],
        [f"{r.check_id} line {r.evidence[0].line if r.evidence else '?'}" for r in audit.static if r.status.value == "fail"],
        str(audit.entry.get("error") or ""), audit.compat)


def sweep(root: Path, scripts: list[Path] | None = None, jobs: int = 1, options: dict[str, Any] | None = None,
          progress: Callable[[SweepRow], None] | None = None) -> list[SweepRow]:
    """Audit every script (``discover(root)`` unless given), ``jobs`` at a time."""
    scripts = discover(root) if scripts is None else scripts
    options = options or {}
    rows: list[SweepRow] = []
    if jobs <= 1:
        for p in scripts:
            rows.append(audit_one(str(p), str(root), options))
            if progress:
                progress(rows[-1])
        return rows
    with ProcessPoolExecutor(jobs) as pool:
        for row in pool.map(audit_one, [str(p) for p in scripts], [str(root)] * len(scripts),
                            [options] * len(scripts)):
            rows.append(row)
            if progress:
                progress(row)
    return rows


def summarize(rows: list[SweepRow]) -> dict[str, Any]:
    """Counts per verdict, and the time per script (median, max)."""
    secs = [r.seconds for r in rows]
    return {"scripts": len(rows), "pass": sum(r.status == "pass" for r in rows),
            "fail": sum(r.status == "fail" for r in rows), "error": sum(r.status == "error" for r in rows),
            "median_s": statistics.median(secs) if secs else 0.0, "max_s": max(secs, default=0.0)}


def to_json(rows: list[SweepRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=1)


def load_labels(root: Path) -> dict[str, dict[str, str]]:
    """``labels.json`` of a PR tree: script path (relative) -> expected outcome per concern."""
    path = Path(root) / "labels.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    out: dict[str, dict[str, str]] = {}
    for entry in data.get("prs", []):
        for folder in entry.get("folders", []):
            out[f"pr{entry['pr']}/{folder}"] = dict(entry.get("expected", {}))
    return out


def expected_for(row: SweepRow, labels: dict[str, dict[str, str]]) -> dict[str, str]:
    for folder, expected in labels.items():
        if row.script.startswith(folder + "/"):
            return expected
    return {}
