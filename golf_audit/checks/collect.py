"""Collectors: the one place where the report calls the other golf-audit libraries.

Each collector measures something about the folder under audit and is memoized on the
``AuditContext``. A library that is not in this build (its issue has not landed) raises
``NotRun`` through ``need``, so the checks depending on it read ``not-run``, never ``pass``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import GolfAuditError, one_line
from ..findings import CheckResult, Evidence, Status, worst
from .base import AuditContext, NotApplicable, NotRun, Outcome, need, outcome_of


def _attr(module: Any, name: str, issue: int) -> Any:
    fn = getattr(module, name, None)
    if fn is None:
        raise NotRun(f"{module.__name__}.{name} (issue {issue}) is not available in this build")
    return fn


def records(ctx: AuditContext) -> Any:
    """The parsed records folder (submission.json, logs, per-seed headline metrics)."""

    def _read(c: AuditContext) -> Any:
        mod = need("golf_audit.records", 7)
        return _attr(mod, "read_folder", 7)(c.folder)

    return ctx.collect("records", _read)


def artifact_checks(ctx: AuditContext) -> list[CheckResult]:
    """The artifact audit's results (cap, uncounted code, log-vs-file sizes, container)."""

    def _audit(c: AuditContext) -> list[CheckResult]:
        mod = need("golf_audit.artifact", 7)
        return list(_attr(mod, "audit_artifact", 7)(c.folder).checks)

    return ctx.collect("artifact", _audit)


def time_report(ctx: AuditContext) -> Any:
    """Per-seed train/eval times read from the logs (the records reader's parse, shared)."""

    def _audit(c: AuditContext) -> Any:
        mod = need("golf_audit.artifact", 7)
        return _attr(mod, "audit_time_limits", 7)(records(c), c.script)

    return ctx.collect("time", _audit)


def calibration(ctx: AuditContext) -> Any:
    """The training script's post-training calibration sites and their data sources (or None)."""

    def _scan(c: AuditContext) -> Any:
        if c.script is None:
            return None
        from ..records.dataflow import calibration_sites
        from ..source import load_source

        return calibration_sites(load_source(c.script).effective)

    return ctx.collect("calibration", _scan)


def data_checks(ctx: AuditContext) -> list[CheckResult]:
    """GA-DATA-001 (validation tokens before scoring) and GA-DATA-002 (data fingerprints)."""
    from ..records.datachecks import fingerprint_check, val_calibration_check

    script = ctx.script.name if ctx.script else ""
    return [val_calibration_check(records(ctx), calibration(ctx), script), fingerprint_check(records(ctx))]


def time_checks(ctx: AuditContext) -> list[CheckResult]:
    return list(time_report(ctx).checks)


def significance(ctx: AuditContext) -> Any:
    """Both significance rules of the folder against ``options.baseline``."""
    if getattr(time_report(ctx), "non_record", False):
        raise NotApplicable("a non-record submission does not claim to beat the leader")
    if ctx.options.baseline is None:
        raise NotRun(ctx.options.baseline_note or "no baseline given (--baseline FOLDER)")

    def _test(c: AuditContext) -> Any:
        mod = need("golf_audit.stats", 7)
        try:
            return _attr(mod, "compare_folders", 7)(c.folder, c.options.baseline)
        except GolfAuditError as exc:  # e.g. a baseline with no per-seed values: nothing to test
            raise NotRun(f"cannot test against {c.options.baseline.name}: {one_line(exc)}") from None

    return ctx.collect("significance", _test)


def static_findings(ctx: AuditContext) -> list[CheckResult]:
    """The ast checks of the folder's ``train_gpt.py`` (issue 8), on its effective source.

    The script is loaded exactly as the submission auditor loads it (self-extracting wrappers
    peeled, ``exec(open(...).read())`` followed), so both see the same code.
    """
    if ctx.script is None:
        raise NotRun("the folder ships no training script (train*.py)")

    def _scan(c: AuditContext) -> list[CheckResult]:
        from ..errors import CannotConclude

        audit = need("golf_audit.submission.audit", 8)
        try:
            view = _attr(audit, "static_view", 8)(c.script, c.options.python)
        except CannotConclude as exc:
            raise NotRun(str(exc)) from None
        return list(view.static)

    return ctx.collect("static", _scan)


def dynamic_verdicts(ctx: AuditContext) -> Any:
    """Flip-test verdicts of the script's own eval functions, run in a child process (issue 8)."""
    if ctx.script is None:
        raise NotRun("the folder ships no training script (train*.py)")

    def _run(c: AuditContext) -> Any:
        mod = need("golf_audit.submission.audit", 8)
        return _attr(mod, "audit_script", 8)(c.script, python=c.options.python,
                                             unsafe_no_sandbox=c.options.unsafe_no_sandbox)

    return ctx.collect("dynamic", _run)


def bpb(ctx: AuditContext) -> Any:
    """The folder's byte accounting (issue 16): tokenizer, byte tables, bpb denominator.

    The builders of the script run in the sandbox only with ``--dynamic``.
    """

    def _audit(c: AuditContext) -> Any:
        mod = need("golf_audit.bpb.audit", 16)
        return _attr(mod, "audit_bpb", 16)(c.folder, dynamic=c.options.dynamic,
                                           unsafe_no_sandbox=c.options.unsafe_no_sandbox)

    return ctx.collect("bpb", _audit)


def pick(results: list[CheckResult], check_id: str) -> CheckResult:
    """The library result carrying ``check_id``; ``NotRun`` when the library did not produce it."""
    for result in results:
        if result.check_id == check_id:
            return result
    raise NotRun(f"the library produced no result for {check_id}")


# --- adapters from each library's own result shape to one check's outcome -------------------
# They stay here, next to the collectors, so that a library's API change touches one file.


def significance_outcome(report: Any, rule: str) -> Outcome:
    """One significance rule's outcome ("readme" → GA-SIG-001, "leaderboard" → GA-SIG-002).

    Adds ``pvalue`` (of the test that decides the rule) and ``baseline`` to the data, for the
    leaderboard column.
    """
    check_id = {"readme": "GA-SIG-001", "leaderboard": "GA-SIG-002"}[rule]
    outcome = outcome_of(pick(report.checks, check_id))
    deciding = [t for t in report.tests if t.rule == rule and t.decides]
    outcome.data["pvalue"] = deciding[0].pvalue if deciding else None
    if outcome.status is Status.WARN and report.warnings:
        n = len(report.warnings)
        outcome.summary += f", with {n} warning{'s' if n > 1 else ''} on the evidence (see below)"
    return outcome


def records_outcome(folder: Any, check_id: str) -> Outcome:
    """The records reader's own cross-check result (GA-SEED-001 or GA-CLAIM-001) for the folder."""
    mod = need("golf_audit.records", 7)
    return outcome_of(pick(_attr(mod, "record_checks", 7)(folder), check_id))


def static_outcome(ctx: AuditContext, check_id: str) -> "Outcome":
    """One static check's outcome from the ast scan of train_gpt.py."""
    return outcome_of(pick(static_findings(ctx), check_id))


def dynamic_outcome(audit: Any, aspect: str) -> Outcome:
    """The flip-test ("causality") or "normalization" verdict of the script's eval functions.

    ``audit`` is the submission auditor's ``SubmissionAudit``. Static findings are left out
    here (they have their own GA-STATIC ids); a function that could not be audited is an
    ``error``, never a pass.
    """
    script = Path(audit.path).name
    statuses: list[Status] = []
    evidence: list[Evidence] = []
    submission = need("golf_audit.submission.audit", 8)
    aside = {id(fn) for fn in _attr(submission, "diagnostic_errors", 8)(audit.functions)}
    not_audited = getattr(submission, "NOT_AUDITED", "not audited")
    for fn in audit.functions:
        res = fn.causality
        if id(fn) in aside:  # a diagnostic beside a reported score that passed: shown, not decisive
            statuses.append(Status.WARN)
            evidence.append(Evidence(f"{fn.name}: {not_audited}: {fn.summary}", file=script, line=fn.line or None))
            continue
        if res is None or fn.status is Status.ERROR:
            statuses.append(Status.ERROR)
            evidence.append(Evidence(f"{fn.name}: {fn.summary}", file=script, line=fn.line or None,
                                     snippet=fn.child_tail or None))
            continue
        if aspect == "normalization":
            norm = res.normalization
            if norm is None:
                statuses.append(Status.NOT_RUN)
                evidence.append(Evidence(f"{fn.name}: gives no log-prob rows to check", file=script, line=fn.line))
                continue
            if not norm.shown:
                statuses.append(Status.NOT_RUN)
                evidence.append(Evidence(f"{fn.name}: {norm.unscored_text()}; their Σp says nothing of the score",
                                         file=script, line=fn.line))
                continue
            ok = norm.rows_off == 0
            statuses.append(Status.PASS if ok else Status.FAIL)
            evidence.append(Evidence(
                f"{fn.name}: {norm.rows_off}/{norm.rows_checked} rows off"
                + (f" (worst Σp {norm.worst_mass:.6g})" if norm.worst_mass is not None else ""),
                file=script, line=fn.line, value=norm.max_abs_mass_error, threshold=res.norm_tolerance, unit="|Σp − 1|"))
            continue
        leaks = [t for t in res.failed_tests if t != "normalization"]
        statuses.append(Status.FAIL if leaks else Status.PASS)
        flip = res.stream_flip if res.stream_flip.max_abs_delta >= res.target_flip.max_abs_delta else res.target_flip
        example = ""
        if flip.example is not None:
            ex = flip.example
            example = f"; e.g. flip t={ex.flip} moved position {ex.position} by {ex.delta:+.3g} nats"
        what = f"leaks through {', '.join(res.channels) or ', '.join(leaks)}" if leaks else "causal"
        evidence.append(Evidence(
            f"{fn.name}: {what}; {flip.flips} flips, {flip.positions_affected} earlier positions moved{example}",
            file=script, line=fn.line, value=flip.max_abs_delta, threshold=res.tolerance, unit="nats"))
    status = worst(statuses) if statuses else Status.ERROR
    label = "normalization" if aspect == "normalization" else "flip tests"
    counts = {s.value: statuses.count(s) for s in set(statuses)}
    summary = f"{len(statuses)} eval function(s), {label}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    evidence += sandbox_evidence(audit, script)  # what the code tried, whatever the verdict
    return Outcome(status, summary, evidence, {"decided_by": audit.decided_by, "seconds": audit.seconds,
                                               "isolation": getattr(audit, "isolation", "")})


def sandbox_evidence(audit: Any, script: str) -> list[Evidence]:
    """The sandbox's record of what the submission's code tried (see submission/sandbox.py)."""
    from ..submission.sandbox import attempt_evidence

    return attempt_evidence(getattr(audit, "attempts", []), script)


def claimed_bpb(ctx: AuditContext) -> float | None:
    """The folder's headline val_bpb as claimed (submission.json), or None when unknown."""
    try:
        folder = records(ctx)
    except Exception:  # noqa: BLE001 - the claims check reports why; the table shows "—"
        return None
    value = folder.submission.val_bpb if folder.submission else None
    return float(value) if isinstance(value, (int, float)) else None


# --- ready-made ``run`` functions: most checks only say where their result comes from ----------


def from_results(source: Callable[[AuditContext], list[CheckResult]]) -> Callable[[AuditContext, Any], Outcome]:
    """A ``run`` that takes the result carrying the check's id from ``source(ctx)``."""

    def run(ctx: AuditContext, check: Any) -> Outcome:
        return outcome_of(pick(source(ctx), check.id))

    return run


def from_records(ctx: AuditContext, check: Any) -> Outcome:
    """``run`` of the records reader's own checks (GA-SEED-001, GA-CLAIM-001)."""
    return records_outcome(records(ctx), check.id)


def from_significance(rule: str) -> Callable[[AuditContext, Any], Outcome]:
    """``run`` of one significance rule ("readme" or "leaderboard")."""
    return lambda ctx, check: significance_outcome(significance(ctx), rule)


def from_static(ctx: AuditContext, check: Any) -> Outcome:
    """``run`` of a static (ast) check of train_gpt.py."""
    return static_outcome(ctx, check.id)


def from_dynamic_check(ctx: AuditContext, check: Any) -> Outcome:
    """``run`` of a check the submission auditor computes itself (GA-COVER-001, GA-DOC-001)."""
    return outcome_of(pick(list(getattr(dynamic_verdicts(ctx), "checks", [])), check.id))


def from_bpb(aspect: str) -> Callable[[AuditContext, Any], Outcome]:
    """``run`` of a byte-accounting check: "shipped" (GA-BPB-001), "denominator" (002), "builder" (003), "sidecar" (004)."""

    def run(ctx: AuditContext, check: Any) -> Outcome:
        report = need("golf_audit.bpb.report", 16)
        return getattr(report, f"{aspect}_outcome")(bpb(ctx))

    return run


def from_dynamic(aspect: str) -> Callable[[AuditContext, Any], Outcome]:
    """``run`` of a dynamic check ("causality" or "normalization") of the script's eval functions."""
    return lambda ctx, check: dynamic_outcome(dynamic_verdicts(ctx), aspect)
