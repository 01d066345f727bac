"""The records reader's cross-checks as results: GA-SEED-001 (seeds) and GA-CLAIM-001 (claims).

``record_checks(record)`` turns a :class:`RecordFolder`'s discrepancies into CheckResults so the
``report`` command can show them beside the other checks. Both warn, never fail: a mismatch is
a reason to look closer, not proof of a rule violation.
"""

from __future__ import annotations

import statistics

from ..findings import CheckResult, Evidence, Severity, Status
from .folder import RecordFolder, _close, _rel

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
    if n == 0:
        return CheckResult("GA-SEED-001", title, Status.NOT_RUN, "no log gives a final result, so no run backs a claim",
                           Severity.WARNING, rule, data=data)  # fmt: skip
    return CheckResult("GA-SEED-001", title, Status.PASS, f"{n} seed(s), each with its own log printing that seed",
                       Severity.WARNING, rule, data=data)  # fmt: skip


def claim_check(record: RecordFolder) -> CheckResult:
    """GA-CLAIM-001: the claimed val_bpb is reproduced by the logs that back it.

    fail: the claim is neither the mean of the backing runs nor any run's value, or a claimed
    per-seed value differs from its log; warn: submission.json's byte figures disagree with the
    logs; pass: reproduced (and said whether it is the mean or one run's value).
    """
    title, rule = "Claimed val_bpb matches the logs", "The headline is the last exact line of the claimed mode"
    ev = _evidence(record, CLAIM_KINDS)
    bytes_ev = _evidence(record, ("bytes-mismatch",))
    backing = ", ".join(record.backing_logs) or "none"
    data = {"mode": record.mode, "mode_source": record.mode_source, "backing_logs": record.backing_logs,
            "claim_kind": record.claim_kind, "roles": record.roles,
            "seed_values": record.seed_values(),
            "claimed": record.submission.val_bpb if record.submission else None}  # fmt: skip
    if record.submission is None:
        return CheckResult("GA-CLAIM-001", title, Status.NOT_RUN, "no submission.json: nothing is claimed", Severity.ERROR, rule, data=data)
    sub = record.submission
    values = [r.val_bpb for r in record.runs if r.val_bpb is not None]
    if sub.val_bpb is None and sub.val_loss is not None and values and _close(sub.val_loss, statistics.fmean(values)):
        # A bpb figure filed under "val_loss" (it is far below any nats value of these models).
        return CheckResult("GA-CLAIM-001", title, Status.WARN,
                           f"submission.json gives no val_bpb; its val_loss {sub.val_loss} is the logs' mean val_bpb "
                           f"({statistics.fmean(values):.8f}): the claim is filed under the wrong key",
                           Severity.ERROR, rule, evidence=[Evidence("val_loss holds the bpb claim", file="submission.json")],
                           data=data)  # fmt: skip
    if sub.val_bpb is None:
        return CheckResult("GA-CLAIM-001", title, Status.NOT_RUN, "submission.json claims no val_bpb", Severity.ERROR, rule, data=data)
    if not any(r.headline for r in record.runs):
        steps = [(log, st) for log in record.logs for st in log.steps if st.val_bpb is not None and _close(sub.val_bpb, st.val_bpb)]
        if steps:
            log, st = steps[-1]
            return CheckResult("GA-CLAIM-001", title, Status.FAIL,
                               f"the claimed {sub.val_bpb} is a training-step validation value (step {st.step}), not a "
                               "final score of the quantized artifact", Severity.ERROR, rule,
                               evidence=[Evidence(f"step {st.step}: val_bpb {st.val_bpb}", file=_rel(record, log.path), line=st.line)],
                               data=data)  # fmt: skip
        return CheckResult("GA-CLAIM-001", title, Status.NOT_RUN, "no log has a final val_bpb line", Severity.ERROR, rule,
                           evidence=[Evidence(f"{k}: {v}", file=k) for k, v in record.roles.items()], data=data)  # fmt: skip
    if ev:
        return CheckResult("GA-CLAIM-001", title, Status.FAIL, f"the claim is not reproduced by the logs that back it ({backing})",
                           Severity.ERROR, rule, remediation="Copy the exact numbers from the logs into submission.json.",
                           evidence=ev + bytes_ev, data=data)  # fmt: skip
    if record.mode is None:
        return CheckResult("GA-CLAIM-001", title, Status.FAIL, f"no log line reproduces the claimed {record.submission.val_bpb}",
                           Severity.ERROR, rule, evidence=[Evidence(record.mode_source)] + bytes_ev, data=data)  # fmt: skip
    kind = record.claim_kind or ("mean" if len(record.runs) > 1 else "single run")
    summary = f"claimed {record.submission.val_bpb} = {kind} of the {record.mode} line(s) of {backing}"
    if bytes_ev:
        return CheckResult("GA-CLAIM-001", title, Status.WARN, summary + f"; {len(bytes_ev)} byte figure(s) in submission.json disagree",
                           Severity.ERROR, rule, evidence=bytes_ev, data=data)  # fmt: skip
    return CheckResult("GA-CLAIM-001", title, Status.PASS, summary, Severity.ERROR, rule, data=data)


# Reader notes that are a real gap in the submission (warn); the rest are parse notes (details).
_GAPS = ("no submission.json", "no train logs")


def files_check(record: RecordFolder) -> CheckResult:
    """GA-FILES-001: what the reader could not parse or find, so nothing is silently dropped.

    Damaged files (invalid or wrong-typed submission.json, a log that is not UTF-8) are an
    ``error``: the audit continues on what could be read, and cannot pass on it (the README's
    damaged-file policy). A missing submission.json or no train log is a ``warn``. Everything
    else (a submission file named ``submission_x.json``, a log without an ``*_exact`` line) is a
    parse note: listed in the details of a pass.
    """
    title, rule = "Submission files parse", "Submission format: README.md, submission.json, one train log per seed"
    problems = list(record.problems)
    data = {"problems": problems, "damaged": [f"{f}: {w}" for f, w in record.damaged]}
    ev = []
    for problem in problems:
        head, sep, rest = problem.partition(": ")
        named_file = bool(sep) and "." in head and " " not in head  # "train.log: not a train log"
        ev.append(Evidence(rest if named_file else problem, file=head if named_file else None))
    if record.damaged:
        first = record.damaged[0]
        damage = [Evidence(f"damaged: {what}", file=file) for file, what in record.damaged]
        return CheckResult("GA-FILES-001", title, Status.ERROR,
                           f"{len(record.damaged)} damaged file(s): {first[0]}: {first[1]}", Severity.ERROR, rule,
                           remediation="Re-upload the damaged files exactly as the run wrote them.",
                           evidence=damage + ev, data=data)  # fmt: skip
    gaps = [p for p in problems if p in _GAPS]
    if gaps:
        return CheckResult("GA-FILES-001", title, Status.WARN, "; ".join(gaps), Severity.WARNING, rule,
                           remediation="Ship a complete submission.json and the unmodified UTF-8 train log of every seed.",
                           evidence=ev, data=data)  # fmt: skip
    summary = "submission.json and every train log parsed" + (f" ({len(problems)} parse note(s) in the details)" if problems else "")
    return CheckResult("GA-FILES-001", title, Status.PASS, summary, Severity.WARNING, rule, evidence=ev, data=data)


def record_checks(record: RecordFolder) -> list[CheckResult]:
    """GA-SEED-001 and GA-CLAIM-001 for one folder."""
    return [files_check(record), seed_check(record), claim_check(record)]
