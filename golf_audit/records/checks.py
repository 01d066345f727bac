"""The records reader's cross-checks as results: GA-SEED-001 (seeds) and GA-CLAIM-001 (claims).

``record_checks(record)`` turns a :class:`RecordFolder`'s discrepancies into CheckResults so the
``report`` command can show them beside the other checks. Both warn, never fail: a mismatch is
a reason to look closer, not proof of a rule violation.
"""

from __future__ import annotations

from ..findings import CheckResult, Evidence, Severity, Status
from .folder import RecordFolder

SEED_KINDS = ("seed-mismatch", "unclaimed-log", "missing-log", "repeated-seed", "best-of-n")
CLAIM_KINDS = ("value-mismatch", "mean-mismatch")


def _evidence(record: RecordFolder, kinds: tuple[str, ...]) -> list[Evidence]:
    return [Evidence(d.message, file=d.file, line=d.line, value=d.logged, threshold=d.claimed)
            for d in record.discrepancies if d.kind in kinds]  # fmt: skip


def seed_check(record: RecordFolder) -> CheckResult:
    title, rule = "Seeds consistent (logs vs claims, no repeats)", "Seed evidence: one honest log per claimed seed"
    ev = _evidence(record, SEED_KINDS)
    data = {"claimed_seeds": record.claimed_seeds, "logged_seeds": [l.seed for l in record.logs],
            "runs": {str(r.seed): str(r.log.path.name) for r in record.runs}}  # fmt: skip
    if not record.logs:
        return CheckResult("GA-SEED-001", title, Status.NOT_RUN, "no train logs in the folder", Severity.WARNING, rule, data=data)
    if ev:
        return CheckResult("GA-SEED-001", title, Status.WARN, f"{len(ev)} seed problem(s): {ev[0].message}", Severity.WARNING, rule,
                           remediation="Ship one log per claimed seed, every seed run, and distinct seeds.",
                           evidence=ev, data=data)  # fmt: skip
    n = len(record.runs)
    return CheckResult("GA-SEED-001", title, Status.PASS, f"{n} seed(s), each with its own log printing that seed",
                       Severity.WARNING, rule, data=data)  # fmt: skip


def claim_check(record: RecordFolder) -> CheckResult:
    title, rule = "Claimed val_bpb matches the logs", "The headline is the last exact line of the claimed mode"
    ev = _evidence(record, CLAIM_KINDS)
    data = {"mode": record.mode, "mode_source": record.mode_source,
            "seed_values": {str(k): v for k, v in record.seed_values().items()},
            "claimed": record.submission.val_bpb if record.submission else None}  # fmt: skip
    if record.submission is None or record.submission.val_bpb is None:
        return CheckResult("GA-CLAIM-001", title, Status.NOT_RUN, "submission.json claims no val_bpb", Severity.WARNING, rule, data=data)
    if not any(r.headline for r in record.runs):
        return CheckResult("GA-CLAIM-001", title, Status.NOT_RUN, "no log has a final val_bpb line", Severity.WARNING, rule, data=data)
    if ev:
        return CheckResult("GA-CLAIM-001", title, Status.WARN, f"{len(ev)} claim(s) not reproduced by the logs", Severity.WARNING, rule,
                           remediation="Copy the exact numbers from the logs into submission.json.", evidence=ev, data=data)  # fmt: skip
    if record.mode is None:
        return CheckResult("GA-CLAIM-001", title, Status.WARN, f"no log line reproduces the claimed {record.submission.val_bpb}",
                           Severity.WARNING, rule, evidence=[Evidence(record.mode_source)], data=data)  # fmt: skip
    return CheckResult("GA-CLAIM-001", title, Status.PASS, f"claims match the logs' {record.mode} lines", Severity.WARNING, rule, data=data)


def files_check(record: RecordFolder) -> CheckResult:
    """GA-FILES-001: what the reader could not parse or find, so nothing is silently dropped."""
    title, rule = "Submission files parse", "Submission format: README.md, submission.json, one train log per seed"
    problems = list(record.problems)
    data = {"problems": problems}
    if not problems:
        return CheckResult("GA-FILES-001", title, Status.PASS, "submission.json and every train log parsed",
                           Severity.WARNING, rule, data=data)  # fmt: skip
    ev = []
    for problem in problems:
        head, sep, rest = problem.partition(": ")
        named_file = bool(sep) and "." in head and " " not in head  # "train.log: not a train log"
        ev.append(Evidence(rest if named_file else problem, file=head if named_file else None))
    return CheckResult("GA-FILES-001", title, Status.WARN, f"{len(problems)} problem(s): {problems[0]}", Severity.WARNING, rule,
                       remediation="Ship a complete submission.json and the unmodified UTF-8 train log of every seed.",
                       evidence=ev, data=data)  # fmt: skip


def record_checks(record: RecordFolder) -> list[CheckResult]:
    """GA-SEED-001 and GA-CLAIM-001 for one folder."""
    return [files_check(record), seed_check(record), claim_check(record)]
