"""SARIF 2.1.0 for GitHub code scanning: one result per failed, warned or errored check.

Evidence with a file and a line becomes a location on that line (``train_gpt.py`` for the
static checks, the log line for size and time checks). A result with no located evidence is
attached to the folder's ``train_gpt.py`` (or ``submission.json``), because code scanning
drops results without a location.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..checks import get_check
from ..checks.registry import UnknownCheck
from ..findings import CheckResult, Severity, Status
from ..report import AuditReport, FolderAudit

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.CRITICAL: "error", Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _uri(folder: Path, file: str) -> str:
    path = Path(file)
    if not path.is_absolute():
        path = folder / path
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


def _locations(audit: FolderAudit, r: CheckResult) -> list[dict[str, Any]]:
    locs = []
    for ev in r.evidence:
        if ev.file:
            physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(audit.folder, ev.file)}}
            if ev.line:
                physical["region"] = {"startLine": int(ev.line)}
            locs.append({"physicalLocation": physical})
    if not locs:
        anchor = "train_gpt.py" if (audit.folder / "train_gpt.py").is_file() else "submission.json"
        locs.append({"physicalLocation": {"artifactLocation": {"uri": _uri(audit.folder, anchor)}}})
    return locs


def _rule(r: CheckResult) -> dict[str, Any]:
    try:
        doc = get_check(r.check_id).doc
    except UnknownCheck:
        doc = ""
    return {
        "id": r.check_id,
        "name": r.title,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rule},
        "help": {"text": doc or r.remediation},
        "properties": {"severity": r.severity.value},
    }


def render(report: AuditReport) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for audit in report.folders:
        for r in audit.results:
            if r.status not in (Status.FAIL, Status.WARN, Status.ERROR):
                continue
            rules.setdefault(r.check_id, _rule(r))
            # A warn or an error is never reported as the rule's full level.
            level = _LEVEL[r.severity] if r.status is Status.FAIL else ("warning" if r.status is Status.ERROR else "note")
            results.append({
                "ruleId": r.check_id,
                "level": level,
                "message": {"text": f"{r.status.value}: {r.summary}"
                            + (f" Fix: {r.remediation}" if r.status is not Status.ERROR else "")},
                "locations": _locations(audit, r),
                "properties": {"status": r.status.value, "folder": audit.name},
            })
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "golf-audit", "version": report.tool_version,
                                "rules": sorted(rules.values(), key=lambda x: x["id"])}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
