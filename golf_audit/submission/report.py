"""A submission audit as a causality report: one subject per eval function and per static finding.

The causality command renders and exits through ``CausalityReport``; in ``script`` mode a
static leak pattern fails the report even when every dynamic subject errored.
"""

from __future__ import annotations

from ..causality.engine import CausalityResult
from ..causality.report import AuditedSubject, CausalityReport
from ..findings import Status
from . import sandbox
from .audit import FunctionVerdict, SubmissionAudit

STREAM_FLIP_NOTE = "stream flips only: a script reads inputs and targets from one stream"


def _function_subject(v: FunctionVerdict, audit: SubmissionAudit) -> AuditedSubject:
    settings = {"kind": v.kind, "line": str(v.line), "seconds": f"{v.seconds:.1f}"}
    if v.capture:
        settings["scored set"] = str(v.capture.get("rule"))
        settings["bpb check"] = (f"function {v.capture.get('function_val_bpb')} = rebuilt "
                                 f"{v.capture.get('rebuilt_val_bpb')}")
    if v.positive_control:
        pc = v.positive_control
        settings["positive control"] = (f"flip {pc.get('flip')}: {pc.get('moved')}/{pc.get('later_positions')} later "
                                        f"positions moved" if pc.get("passed") else f"failed: {pc.get('reason')}")
    if v.child_tail:
        settings["child stderr"] = v.child_tail.strip().splitlines()[-1][:300]
    result = v.causality
    if result is None:
        result = CausalityResult(v.name, v.status, v.summary, tolerance=audit.tolerance,
                                 stream_tokens=audit.stream_tokens, error=v.summary)
    elif result.status is Status.PASS:
        result.summary = f"{result.summary}; {STREAM_FLIP_NOTE}"
    return AuditedSubject(v.name, "script", settings, result)


def to_causality_report(audit: SubmissionAudit, flips: int, seed: int, norm_tolerance: float) -> CausalityReport:
    """The report the causality command renders, with the static findings as extra subjects."""
    subjects = [_function_subject(v, audit) for v in audit.functions]
    for check in audit.static:
        if check.status is Status.PASS:
            continue
        where = "; ".join(f"{e.file}:{e.line}: {e.message}" for e in check.evidence) or check.summary
        # Warnings are reported but never fail the script; the schema has no "warn" status.
        status = Status.FAIL if check.status is Status.FAIL else Status.ERROR if check.status is Status.ERROR else Status.PASS
        text = ("" if status is not Status.PASS else "warning: ") + f"{check.title}: {where}"
        result = CausalityResult(check.check_id, status, text, failed_tests=["static"] if status is Status.FAIL else [],
                                 tolerance=audit.tolerance, stream_tokens=audit.stream_tokens)
        settings = {"rule": check.rule, "remediation": check.remediation}
        subjects.append(AuditedSubject(f"{check.check_id} (static)", "static", settings, result))
    subjects += sandbox.report_subjects(audit)  # what the code tried, whatever the verdict
    wrapper = f"; {audit.layers} self-extracting layer(s) decoded" if audit.layers else ""
    followed = f"; followed exec(open()) to {', '.join(audit.followed)}" if audit.followed else ""
    model = (f"submission script {audit.path}{wrapper}{followed}; verdict {audit.status.value}, decided by "
             f"{audit.decided_by} evidence; tiny configuration, fp32, CPU shims; {sandbox.isolation_text(audit.isolation)}")
    return CausalityReport("script", model, "random audit stream (every 4-gram unique)", audit.stream_tokens,
                           dict(sorted(audit.env.items())), flips, seed, audit.tolerance, norm_tolerance, 1,
                           subjects, audit.seconds)
