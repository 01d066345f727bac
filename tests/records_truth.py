"""Compare `golf-audit report` on the real records tree with GROUND_TRUTH.json, per folder and family.

Used by tests/test_records_truth.py (the regression test) and runnable on its own to print the
false-positive / miss table::

    python3 tests/records_truth.py [SHARED_DIR] [--json OUT]

Families and what GROUND_TRUTH says for each (see its METHOD section):

* cap (GA-SIZE-001): ``over_cap`` (None: cannot be determined);
* hidden (GA-SIZE-002): ``runtime_loaded_code_files`` non-empty;
* mismatch (GA-SIZE-003): a log used for size logged a code size that is not the committed
  file's (raw/wrapper figure ≠ file, or compressed run's uncompressed figure ≠ file);
* time (GA-TIME-*): ``over_time`` (10-minute track; not applicable on the non-record track);
* claim (GA-CLAIM-001): ``claim_reproduced`` is False;
* seeds (GA-SEED-001): a disclosed best-of-n, a claimed seed list that differs from the seeds the
  score logs print, or a seed printed by more than one score log;
* sig_readme / sig_leaderboard (GA-SIG-001/002): ``significance.readme/leaderboard.passes``.

A tool status of fail/warn "flags"; pass "clears"; not-run/error/not-applicable "does not conclude".
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FAMILIES = {
    "cap": ("GA-SIZE-001",),
    "hidden": ("GA-SIZE-002",),
    "mismatch": ("GA-SIZE-003",),
    "time": ("GA-TIME-001", "GA-TIME-002"),
    "claim": ("GA-CLAIM-001",),
    "seeds": ("GA-SEED-001",),
    "sig_readme": ("GA-SIG-001",),
    "sig_leaderboard": ("GA-SIG-002",),
}
# Families where only a *fail* counts as the tool's "violation" verdict; a warn is a note there
# (a claim that is one run's value, not the mean; a caveat on the significance evidence).
FAIL_ONLY = {"cap", "claim", "sig_readme", "sig_leaderboard"}


def truth_rows(shared: Path) -> dict[str, dict]:
    data = json.loads((shared / "records" / "GROUND_TRUTH.json").read_text())
    return {f"{r['track']}/{r['folder']}": r for r in data["rows"]}


def order_mapping(shared: Path) -> dict[str, int]:
    """The PR numbers of GROUND_TRUTH as an --order mapping (launch snapshot = 0)."""
    return {key: (row["pr_number"] or 0) for key, row in truth_rows(shared).items()}


def expected(row: dict) -> dict[str, bool | None]:
    """Per family: True (a violation), False (clean), None (GROUND_TRUTH cannot say / n.a.)."""
    out: dict[str, bool | None] = {}
    out["cap"] = row["over_cap"]
    out["hidden"] = bool(row["runtime_loaded_code_files"]) if row["scripts_producing_logs"] else None
    out["mismatch"] = _mismatch(row)
    out["time"] = row["over_time"] if row["time_rule_applies"] else None
    out["claim"] = None if row["claim_reproduced"] is None else not row["claim_reproduced"]
    out["seeds"] = _seeds_flag(row)
    sig = row.get("significance") or {}
    for rule in ("readme", "leaderboard"):
        verdict = (sig.get(rule) or {}).get("passes") if sig.get("required") else None
        out[f"sig_{rule}"] = None if verdict is None else not verdict
    return out


def _mismatch(row: dict) -> bool | None:
    used = set(row["logs_used_for_size_and_time"])
    size = row["raw_code_bytes_total"]
    logged = [c for c in row["code_bytes_logged"] if c["log"] in used]
    if not logged or not size:
        return None
    for c in logged:
        figure = c["uncompressed_logged"] if c["kind"] == "compressed" else c["bytes"]
        if figure is not None and figure != size:
            return True
    return False


def _seeds_flag(row: dict) -> bool | None:
    used = row["logs_used_for_score"]
    if not used:
        return None
    printed = [s for log in used for s in (row["seeds_found_in_logs"].get(log) or [])]
    if row["best_of_n_disclosure"]:
        return True
    if len(printed) != len(set(printed)):
        return True
    claimed = row["seeds_claimed"]
    if claimed is not None and sorted(set(claimed)) != sorted(set(printed)):
        return True
    return False


@dataclass
class Cell:
    key: str
    family: str
    truth: bool | None
    status: str  # the tool's worst concluded status over the family's ids
    outcome: str  # "ok", "fp", "miss", "unconcluded", "false-pass"

    def line(self) -> str:
        return f"{self.outcome:12s} {self.family:16s} truth={self.truth!s:5s} tool={self.status:14s} {self.key}"


_CONCLUDED = ("fail", "warn", "pass")


def tool_status(results: dict[str, str], family: str) -> str:
    statuses = [results[i] for i in FAMILIES[family] if i in results]
    concluded = [s for s in statuses if s in _CONCLUDED]
    for s in ("fail", "error", "warn", "pass", "not-run", "not-applicable"):
        if s in (concluded or statuses):
            return s
    return "absent"


def classify(key: str, family: str, truth: bool | None, status: str) -> Cell:
    flags = status == "fail" or (status == "warn" and family not in FAIL_ONLY)
    if truth is None:
        outcome = "false-pass" if status == "pass" else "ok"
    elif status not in _CONCLUDED:
        outcome = "unconcluded"
    elif truth and not flags:
        outcome = "miss"
    elif flags and not truth:
        outcome = "fp"
    else:
        outcome = "ok"
    return Cell(key, family, truth, status, outcome)


def compare(shared: Path, statuses: dict[str, dict[str, str]]) -> list[Cell]:
    """``statuses``: "track/folder" -> {check id: status}. One cell per folder and family."""
    cells = []
    for key, row in truth_rows(shared).items():
        results = statuses.get(key)
        for family, truth in expected(row).items():
            status = tool_status(results, family) if results is not None else "absent"
            cells.append(classify(key, family, truth, status))
    return cells


def table(cells: list[Cell]) -> str:
    counts: dict[str, Counter] = {f: Counter() for f in FAMILIES}
    for c in cells:
        counts[c.family][c.outcome] += 1
    head = f"{'family':16s} {'ok':>4s} {'fp':>4s} {'miss':>5s} {'unconcl':>8s} {'falsepass':>10s}"
    lines = [head]
    for family, n in counts.items():
        lines.append(f"{family:16s} {n['ok']:4d} {n['fp']:4d} {n['miss']:5d} {n['unconcluded']:8d} {n['false-pass']:10d}")
    return "\n".join(lines)


def run_tool(shared: Path, order: dict[str, int] | None = None) -> dict[str, dict[str, str]]:
    """Statuses of every check per folder, from the library (as `report --recursive` runs it)."""
    from golf_audit.report import audit_tree

    kwargs = {}
    if order is not None:
        import inspect

        if "order" in inspect.signature(audit_tree).parameters:
            kwargs["order"] = order
    out: dict[str, dict[str, str]] = {}
    root = shared / "records"
    try:
        report = audit_tree(root, **kwargs)
        folders = [(f.name, f) for f in report.folders]
    except Exception:  # noqa: BLE001 - older builds audited one track at a time
        folders = []
        for track in ("track_10min_16mb", "track_non_record_16mb"):
            report = audit_tree(root / track, **kwargs)
            folders += [(f"{track}/{f.name}", f) for f in report.folders]
    for name, f in folders:
        out[name] = {r.check_id: r.status.value for r in f.results}
    return out


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    shared = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "shared"
    statuses = run_tool(shared, order_mapping(shared))
    cells = compare(shared, statuses)
    print(table(cells))
    for c in cells:
        if c.outcome != "ok":
            print(c.line())
    if "--json" in argv:
        out = Path(argv[argv.index("--json") + 1])
        out.write_text(json.dumps([c.__dict__ for c in cells], indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main(sys.argv[1:]))
