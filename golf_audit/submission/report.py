"""A submission audit as a causality report: one subject per scoring function, static finding and check.

The causality command renders and exits through ``CausalityReport``; in ``script`` mode a
static leak pattern fails the report even when every dynamic subject errored. Warnings
(GA-STATIC-006/007) keep their ``warn`` status here exactly as in ``golf-audit report``;
a scoring function the entry point never called is ``not-run`` (not exercised), never pass.
"""

from __future__ import annotations

from ..causality.engine import CausalityResult
from ..causality.report import AuditedSubject, CausalityReport
from ..findings import CheckResult, Status
from . import sandbox
from .audit import FAILED_AS, FunctionVerdict, SubmissionAudit

STREAM_FLIP_NOTE = "stream flips only: a script reads inputs and targets from one stream"


def _function_subject(v: FunctionVerdict, audit: SubmissionAudit) -> AuditedSubject:
    settings = {"kind": v.kind, "line": str(v.line), "seconds": f"{v.seconds:.1f}"}
    if v.call_line is not None or v.calls:
        settings["called"] = f"{v.calls} time(s) by the entry point" + (f", audited: the call at line {v.call_line}"
                                                                           if v.call_line else "")
    if v.capture and v.kind != "pipeline":
        settings["scored set"] = str(v.capture.get("rule"))
        settings["capture check"] = (f"function val_loss {v.capture.get('function_val_loss')} = rebuilt "
                                     f"{v.capture.get('rebuilt_val_loss')}; val_bpb {v.capture.get('function_val_bpb')}"
                                     f" vs rebuilt {v.capture.get('rebuilt_val_bpb')}")
    elif v.capture:
        settings["flips"] = f"{v.capture.get('flips')} at targets {v.capture.get('flip_positions')}"
    if v.positive_control and v.kind != "pipeline":
        pc = v.positive_control
        settings["positive control"] = (f"flip {pc.get('flip')}: {pc.get('moved')}/{pc.get('later_positions')} later "
                                        f"positions moved" if pc.get("passed") else f"failed: {pc.get('reason')}")
    if v.not_exercised:
        settings["not exercised"] = "; ".join(v.not_exercised)
    for k, note in enumerate(v.notes):
        settings[f"note {k + 1}" if len(v.notes) > 1 else "note"] = note
    if v.child_tail:
        settings["child stderr"] = v.child_tail.strip().splitlines()[-1][:300]
    result = v.causality
    if result is None:
        summary = v.summary
        if v.not_exercised and v.status is Status.PASS:
            summary += f" (not exercised: {'; '.join(v.not_exercised)})"
        result = CausalityResult(v.name, v.status, summary, failed_tests=["pipeline"] if v.status is Status.FAIL else [],
                                 channels=list(v.channels), tolerance=audit.tolerance,
                                 stream_tokens=audit.stream_tokens, error=v.summary if v.status is Status.ERROR else None)
    elif result.status is Status.PASS:
        result.summary = f"{result.summary}; {STREAM_FLIP_NOTE}"
        if v.not_exercised:
            result.summary += f"; not exercised: {'; '.join(v.not_exercised)}"
    return AuditedSubject(v.name, "script", settings, result)


def _check_subject(check: CheckResult, audit: SubmissionAudit, kind: str) -> AuditedSubject:
    where = "; ".join(f"{e.file}:{e.line}: {e.message}" if e.line else e.message for e in check.evidence)
    text = f"{check.title}: {check.summary}" + (f" [{where}]" if where and check.status is not Status.PASS else "")
    result = CausalityResult(check.check_id, check.status, text,
                             failed_tests=[kind] if check.status is Status.FAIL else [], tolerance=audit.tolerance,
                             stream_tokens=audit.stream_tokens,
                             error=check.summary if check.status is Status.ERROR else None)
    settings = {"rule": check.rule}
    if check.remediation:
        settings["remediation"] = check.remediation
    return AuditedSubject(f"{check.check_id} ({kind})", kind, settings, result)


def to_causality_report(audit: SubmissionAudit, flips: int, seed: int, norm_tolerance: float) -> CausalityReport:
    """The report the causality command renders, with static findings and GA-COVER/GA-DOC as subjects."""
    subjects = [_function_subject(v, audit) for v in audit.functions]
    subjects += [_check_subject(c, audit, "static") for c in audit.static if c.status is not Status.PASS]
    subjects += [_check_subject(c, audit, "dynamic") for c in audit.checks]
    subjects += sandbox.report_subjects(audit)  # what the code tried, whatever the verdict
    wrapper = f"; {audit.layers} self-extracting layer(s) decoded" if audit.layers else ""
    followed = f"; followed exec(open()) to {', '.join(audit.followed)}" if audit.followed else ""
    compat = f"; {audit.compat}" if audit.compat else ""
    entry = ""
    if audit.entry.get("error"):
        entry = f"; the entry point stopped at line {audit.entry.get('line')}: {audit.entry['error']}"
    concerns = ", ".join(f"{c.concern} {c.status.value}" for c in audit.concerns.values())
    model = (f"submission script {audit.path}{wrapper}{followed}{compat}; verdict {audit.status.value}, decided by "
             f"{audit.decided_by} evidence ({concerns}); its own entry point at a tiny configuration on synthetic "
             f"data, fp32, CPU shims{entry}; {sandbox.isolation_text(audit.isolation)}")
    report = CausalityReport("script", model, "synthetic documents (every 4-gram unique)", audit.stream_tokens,
                             dict(sorted(audit.env.items())), flips, seed, audit.tolerance, norm_tolerance, 1,
                             subjects, audit.seconds)
    report.concern_text = concern_text(audit)
    report.decided, report.decided_text = audit.status, audit.summary
    return report


def concern_text(audit: SubmissionAudit) -> str:
    """The failing concerns, each with what decided it: the headline of a failed script audit."""
    failed = [(k, c) for k, c in audit.concerns.items() if c.status is Status.FAIL]
    if not failed:
        return ""
    text = "; ".join(f"{FAILED_AS.get(k, k + ' fail')}: {c.summary}" for k, c in failed)
    passed = [k for k, c in audit.concerns.items() if c.status is Status.PASS]
    return text + (f" ({', '.join(passed)} pass)" if passed else "")

