"""Renderers compared with exact expected text (pip-audit style), plus the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golf_audit.findings import CheckResult, Evidence, Severity, Status
from golf_audit.render import ReportFormat, render
from golf_audit.render.json import SchemaError, to_json_dict, validate
from golf_audit.report import AuditReport, FolderAudit


def sample_report(recursive: bool = False) -> AuditReport:
    results = [
        CheckResult("GA-SIZE-001", "Artifact ≤ 16,000,000 bytes", Status.FAIL,
                    "seed 1337 total is 4,211 bytes over the cap", Severity.CRITICAL, "Cap rule", "Shrink it.",
                    [Evidence("Total submission size int6+lzma", file="train_seed1337.log", line=14,
                              value=16004211, threshold=16000000, unit="bytes")]),
        CheckResult("GA-TIME-001", "Training ≤ 600 s", Status.PASS, "all 3 seeds within 600 s",
                    Severity.ERROR, "Time rule", "Cap it.",
                    [Evidence("train_time", file="train_seed1337.log", line=8, value=600.043, threshold=600, unit="s")]),
        CheckResult("GA-SEED-001", "Seeds consistent", Status.WARN, "seed 42 | repeated",
                    Severity.WARNING, "Seeds rule", "Use distinct seeds."),
        CheckResult("GA-SIG-002", "Leaderboard rule", Status.NOT_RUN, "no baseline given (--baseline FOLDER)",
                    Severity.ERROR, "Welch", "More seeds."),
    ]
    audit = FolderAudit(Path("x/2026-01-09_OverCap"), "2026-01-09_OverCap", results, claimed_bpb=1.19822963,
                        commit="0123456789abcdef0123456789abcdef01234567")
    return AuditReport("x/2026-01-09_OverCap", recursive, [audit], command="golf-audit report x/2026-01-09_OverCap",
                       tool_version="9.9.9", date="2026-01-01T00:00:00+00:00", environment={"python": "3.11.7"})


EXPECTED_MARKDOWN = """\
### golf-audit report: `2026-01-09_OverCap`

**✖ FAIL**: 1 fail, 0 error, 1 warn, 1 pass, 1 not-run, 0 not-applicable (fail-on: error)

| | Check | Title | Severity | Result |
|:-:|---|---|---|---|
| ✖ | `GA-SIZE-001` | Artifact ≤ 16,000,000 bytes | critical | **fail**: seed 1337 total is 4,211 bytes over the cap |
| ✔ | `GA-TIME-001` | Training ≤ 600 s | error | **pass**: all 3 seeds within 600 s |
| ⚠ | `GA-SEED-001` | Seeds consistent | warning | **warn**: seed 42 \\| repeated |
| – | `GA-SIG-002` | Leaderboard rule | error | **not-run**: no baseline given (--baseline FOLDER) |

<details><summary>✖ <code>GA-SIZE-001</code> Artifact ≤ 16,000,000 bytes: fail</summary>

seed 1337 total is 4,211 bytes over the cap

- Rule: Cap rule
- `train_seed1337.log:14` Total submission size int6+lzma (measured 16,004,211 bytes, threshold 16,000,000 bytes)
- Fix: Shrink it.

</details>
<details><summary>⚠ <code>GA-SEED-001</code> Seeds consistent: warn</summary>

seed 42 | repeated

- Rule: Seeds rule
- Fix: Use distinct seeds.

</details>

<details><summary>Details of the 1 other check(s)</summary>

<details><summary>✔ <code>GA-TIME-001</code> Training ≤ 600 s: pass</summary>

all 3 seeds within 600 s

- Rule: Time rule
- `train_seed1337.log:8` train_time (measured 600.043 s, threshold 600 s)

</details>

</details>

<sub>golf-audit 9.9.9 · 2026-01-01T00:00:00+00:00 · folder commit 0123456789ab · `golf-audit report x/2026-01-09_OverCap`</sub>
"""

EXPECTED_TABLE = """\
golf-audit report 2026-01-09_OverCap
✖ FAIL: 1 fail, 0 error, 1 warn, 1 pass, 1 not-run, 0 not-applicable (fail-on: error)

    Check         Status    Severity   Summary
──────────────────────────────────────────────────────────────────────────────────
✖   GA-SIZE-001   fail      critical   seed 1337 total is 4,211 bytes over the cap
✔   GA-TIME-001   pass      error      all 3 seeds within 600 s
⚠   GA-SEED-001   warn      warning    seed 42 | repeated
–   GA-SIG-002    not-run   error      no baseline given (--baseline FOLDER)

✖ GA-SIZE-001 Artifact ≤ 16,000,000 bytes: fail
    train_seed1337.log:14: Total submission size int6+lzma (measured 16,004,211 bytes, threshold 16,000,000 bytes)
    fix: Shrink it.
⚠ GA-SEED-001 Seeds consistent: warn
    fix: Use distinct seeds.
"""

EXPECTED_LEADERBOARD_TABLE = """\
golf-audit report x/2026-01-09_OverCap (1 folder)
✖ FAIL: 1 fail, 0 error, 1 warn, 1 pass, 1 not-run, 0 not-applicable (fail-on: error)

Folder               Claimed bpb   Artifact   Significance vs previous leader   Time     Worst finding
───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
2026-01-09_OverCap       1.19823   ✖ fail     – not-run                         ✔ pass   ✖ GA-SIZE-001 (fail, critical)
"""


def test_markdown_exact() -> None:
    assert render(sample_report(), ReportFormat.markdown) == EXPECTED_MARKDOWN


def test_table_exact() -> None:
    assert render(sample_report(), ReportFormat.table) == EXPECTED_TABLE


def test_leaderboard_table_exact() -> None:
    assert render(sample_report(recursive=True), ReportFormat.table) == EXPECTED_LEADERBOARD_TABLE


def test_leaderboard_markdown_has_row_and_collapsed_findings() -> None:
    text = render(sample_report(recursive=True), ReportFormat.markdown)
    assert "| `2026-01-09_OverCap` | 1.19823 | ✖ fail | – not-run | ✔ pass | ✖ GA-SIZE-001 (fail, critical) |" in text
    assert "<details><summary>✖ <code>2026-01-09_OverCap</code>" in text
    assert "GA-TIME-001" not in text.split("#### Findings per folder")[1]  # passes are not repeated


def test_json_matches_schema_and_values() -> None:
    doc = json.loads(render(sample_report(), ReportFormat.json))
    validate(doc)
    assert doc["schema_version"] == "1.0"
    assert doc["tool"] == {"name": "golf-audit", "version": "9.9.9"}
    assert doc["exit_code"] == 1 and doc["mode"] == "folder" and doc["leaderboard"] == []
    folder = doc["folders"][0]
    assert folder["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert folder["verdict"] == "fail"
    size = folder["results"][0]
    assert size["id"] == "GA-SIZE-001" and size["status"] == "fail"
    assert size["evidence"][0] == {"message": "Total submission size int6+lzma", "file": "train_seed1337.log", "line": 14,
                                   "value": 16004211, "threshold": 16000000, "unit": "bytes", "snippet": None}


def test_json_tree_has_leaderboard() -> None:
    doc = to_json_dict(sample_report(recursive=True))
    validate(doc)
    assert doc["leaderboard"][0]["worst_finding"] == "GA-SIZE-001"
    assert doc["leaderboard"][0]["artifact"] == "fail"


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d.pop("schema_version"), "missing keys ['schema_version']"),
    (lambda d: d["folders"][0]["results"][0].update(status="passed"), "$.folders[0].results[0].status"),
    (lambda d: d.update(exit_code="0"), "$.exit_code"),
    (lambda d: d["folders"][0].update(extra=1), "unexpected keys ['extra']"),
])
def test_json_schema_rejects_bad_documents(mutate, where) -> None:
    doc = json.loads(render(sample_report(), ReportFormat.json))
    mutate(doc)
    with pytest.raises(SchemaError, match=__import__("re").escape(where)):
        validate(doc)


def test_sarif_results_on_lines() -> None:
    doc = json.loads(render(sample_report(), ReportFormat.sarif))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["GA-SEED-001", "GA-SIZE-001"]
    fail = next(r for r in run["results"] if r["ruleId"] == "GA-SIZE-001")
    assert fail["level"] == "error"
    loc = fail["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"].endswith("x/2026-01-09_OverCap/train_seed1337.log")
    assert loc["region"] == {"startLine": 14}
    warn = next(r for r in run["results"] if r["ruleId"] == "GA-SEED-001")
    assert warn["level"] == "note"
    assert warn["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("submission.json")
    assert not any(r["ruleId"] in ("GA-TIME-001", "GA-SIG-002") for r in run["results"])


def test_markdown_escapes_html_like_text() -> None:
    report = sample_report()
    report.folders[0].results[2].summary = "function <none> found; p < 0.01"
    text = render(report, ReportFormat.markdown)
    assert "function &lt;none&gt; found; p &lt; 0.01" in text and "<none>" not in text
