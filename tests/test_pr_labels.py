"""The labelled PRs of ../shared/prs: every bytes, data, time and cap label reproduced by `report`.

The causal, normalized, coverage and doc labels need the script run (test_submission_shared.py,
test_cover_doc.py and the slow sweep); these four are decided by the static report of the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golf_audit.errors import BadInput
from golf_audit.report import audit_folder

# label concern -> the check ids whose worst verdict answers it
FAMILIES = {"bytes": ("GA-BPB-",), "data": ("GA-DATA-",), "time": ("GA-TIME-",), "cap": ("GA-SIZE-001",)}


def _verdict(statuses: list[str]) -> str:
    return "fail" if "fail" in statuses else "pass" if "pass" in statuses else "/".join(sorted(set(statuses)))


def test_static_labels_of_every_pr_are_reproduced(shared_dir: Path) -> None:
    root = shared_dir / "prs"
    labels = json.loads((root / "labels.json").read_text(encoding="utf-8"))["prs"]
    compared, wrong = 0, []
    for entry in labels:
        wanted = {k: v for k, v in entry["expected"].items() if k in FAMILIES}
        if not wanted:
            continue
        for folder in entry["folders"]:
            try:
                audit = audit_folder(root / f"pr{entry['pr']}" / folder)
            except BadInput as exc:
                wrong.append(f"#{entry['pr']}: {exc}")
                continue
            statuses = {r.check_id: r.status.value for r in audit.results}
            for concern, want in wanted.items():
                got = _verdict([s for i, s in statuses.items() if i.startswith(FAMILIES[concern])])
                compared += 1
                if got != want:
                    wrong.append(f"#{entry['pr']} {concern}: expected {want}, got {got}")
    if not compared:
        pytest.skip("no bytes/data/time/cap labels in ../shared/prs")
    assert not wrong, wrong
    assert compared >= 10  # 1184, 2138, 2009, 1797 bytes; 728 data; 606, 1972, 1991, 1959 time; caps
