"""JSON report. Its schema is the TypedDicts below; ``validate`` checks a document against them.

Compatibility: ``schema_version`` changes whenever a key is removed or changes meaning; adding
a key keeps the version.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, Optional, TypedDict, Union

from ..output import to_jsonable
from ..output import SCHEMA_VERSION
from ..report import ARTIFACT_IDS, LEADER_SIG_ID, TIME_IDS, AuditReport, FolderAudit


class EvidenceJSON(TypedDict):
    message: str
    file: Optional[str]
    line: Optional[int]
    value: Any  # the measured value, in ``unit``
    threshold: Any  # the limit it was compared with, in ``unit``
    unit: Optional[str]
    snippet: Optional[str]


class ResultJSON(TypedDict):
    id: str  # stable check id, e.g. "GA-SIZE-001"
    title: str
    status: Literal["pass", "fail", "warn", "error", "not-run", "not-applicable"]
    severity: Literal["info", "warning", "error", "critical"]
    rule: str  # the challenge rule or validity condition
    summary: str
    remediation: str
    evidence: list[EvidenceJSON]
    data: dict[str, Any]  # machine-readable measurements, check-specific


class FolderJSON(TypedDict):
    folder: str  # relative to the audited tree (or the folder's name)
    commit: Optional[str]  # last git commit touching the folder, when known
    claimed_bpb: Optional[float]
    baseline: Optional[str]  # folder the significance checks compared against
    baseline_note: str  # how the baseline was chosen (PR order), or why there is none
    pr: Optional[int]  # the PR that added the folder (0: launch snapshot), when known
    pr_source: str  # git, readme, submission.json, order-file, or "" (unknown)
    permalink: Optional[str]  # the folder on GitHub at its commit, when it is in a GitHub checkout
    verdict: Literal["pass", "fail", "warn", "error", "not-run", "not-applicable"]
    counts: dict[str, int]  # status -> number of checks
    results: list[ResultJSON]


class LeaderboardRowJSON(TypedDict):
    folder: str
    claimed_bpb: Optional[float]
    artifact: str  # worst status of the GA-SIZE checks
    significance: str  # status of GA-SIG-002 against the previous leader
    significance_pvalue: Optional[float]
    previous_leader: Optional[str]
    time: str  # worst status of the GA-TIME checks
    worst_finding: Optional[str]  # check id of the most serious fail/error/warn


class ToolJSON(TypedDict):
    name: str
    version: str


class ReportJSON(TypedDict):
    schema_version: str
    tool: ToolJSON
    date: str  # ISO 8601, UTC
    command: str
    environment: dict[str, str]  # python, platform, torch, numpy, scipy versions
    subject: str  # the folder or tree as given
    mode: Literal["folder", "tree"]
    fail_on: Literal["info", "warning", "error", "critical"]
    dynamic: bool
    exit_code: int
    counts: dict[str, int]
    folders: list[FolderJSON]
    leaderboard: list[LeaderboardRowJSON]  # empty in folder mode


def _folder(a: FolderAudit) -> FolderJSON:
    return {
        "folder": a.name,
        "commit": a.commit,
        "claimed_bpb": a.claimed_bpb,
        "baseline": a.baseline,
        "baseline_note": a.baseline_note,
        "pr": a.pr,
        "pr_source": a.pr_source,
        "permalink": a.permalink,
        "verdict": a.verdict.value,
        "counts": a.counts(),
        "results": [
            {
                "id": r.check_id, "title": r.title, "status": r.status.value, "severity": r.severity.value,
                "rule": r.rule, "summary": r.summary, "remediation": r.remediation,
                "evidence": [
                    {"message": e.message, "file": e.file, "line": e.line, "value": e.value,
                     "threshold": e.threshold, "unit": e.unit, "snippet": e.snippet}
                    for e in r.evidence
                ],
                "data": r.data,
            }
            for r in a.results
        ],
    }


def _row(a: FolderAudit) -> LeaderboardRowJSON:
    sig = a.result(LEADER_SIG_ID)
    p = sig.data.get("pvalue") if sig else None
    worst = a.worst_finding()
    return {
        "folder": a.name,
        "claimed_bpb": a.claimed_bpb,
        "artifact": a.family_verdict(ARTIFACT_IDS).value,
        "significance": sig.status.value if sig else "not-run",
        "significance_pvalue": float(p) if isinstance(p, (int, float)) else None,
        "previous_leader": a.baseline,
        "time": a.family_verdict(TIME_IDS).value,
        "worst_finding": worst.check_id if worst else None,
    }


def to_json_dict(report: AuditReport) -> ReportJSON:
    doc: ReportJSON = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "golf-audit", "version": report.tool_version},
        "date": report.date,
        "command": report.command,
        "environment": dict(report.environment),
        "subject": report.subject,
        "mode": "tree" if report.recursive else "folder",
        "fail_on": report.fail_on.value,
        "dynamic": report.dynamic,
        "exit_code": report.exit_code(),
        "counts": report.counts(),
        "folders": [_folder(a) for a in report.folders],
        "leaderboard": [_row(a) for a in report.folders] if report.recursive else [],
    }
    return to_jsonable(doc)


def render(report: AuditReport) -> str:
    return json.dumps(to_json_dict(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- validation against the TypedDicts (used by tests and by consumers that want it) ----------


class SchemaError(ValueError):
    """A document does not match the report schema; the message names the path."""


def validate(doc: Any, schema: Any = ReportJSON, path: str = "$") -> None:
    """Raise ``SchemaError`` unless ``doc`` matches ``schema`` (a TypedDict or typing form)."""
    if schema is Any:
        return
    origin = typing.get_origin(schema)
    if typing.is_typeddict(schema):
        if not isinstance(doc, dict):
            raise SchemaError(f"{path}: expected an object")
        hints = typing.get_type_hints(schema)
        missing, extra = set(hints) - set(doc), set(doc) - set(hints)
        if missing or extra:
            raise SchemaError(f"{path}: missing keys {sorted(missing)}, unexpected keys {sorted(extra)}")
        for key, hint in hints.items():
            validate(doc[key], hint, f"{path}.{key}")
    elif origin in (Union, types.UnionType):
        for option in typing.get_args(schema):
            try:
                return validate(doc, option, path)
            except SchemaError:
                continue
        raise SchemaError(f"{path}: matches none of {typing.get_args(schema)}")
    elif origin is Literal:
        if doc not in typing.get_args(schema):
            raise SchemaError(f"{path}: {doc!r} not in {typing.get_args(schema)}")
    elif origin is list:
        if not isinstance(doc, list):
            raise SchemaError(f"{path}: expected a list")
        (item,) = typing.get_args(schema)
        for i, value in enumerate(doc):
            validate(value, item, f"{path}[{i}]")
    elif origin is dict:
        if not isinstance(doc, dict):
            raise SchemaError(f"{path}: expected an object")
        _, value_type = typing.get_args(schema)
        for key, value in doc.items():
            validate(value, value_type, f"{path}.{key}")
    elif schema is type(None):
        if doc is not None:
            raise SchemaError(f"{path}: expected null")
    elif schema is float:
        if isinstance(doc, bool) or not isinstance(doc, (int, float)):
            raise SchemaError(f"{path}: expected a number")
    elif schema is int:
        if isinstance(doc, bool) or not isinstance(doc, int):
            raise SchemaError(f"{path}: expected an integer")
    elif isinstance(schema, type):
        if not isinstance(doc, schema):
            raise SchemaError(f"{path}: expected {schema.__name__}")
    else:  # pragma: no cover - a schema form this validator does not know is a bug here
        raise TypeError(f"unsupported schema form {schema!r}")
