"""Renderers compared against exact expected text (fake sources: deterministic, no model)."""

from __future__ import annotations

from golf_audit.causality.engine import AuditOptions, audit_sources
from golf_audit.causality.render import render_markdown, render_table
from golf_audit.causality.report import AuditedSubject, CausalityReport
from golf_audit.causality.zoo import FAIL, PASS, Expected
from golf_audit.findings import Status

from causality_fakes import FakeSource, stream

EXPECTED_TABLE = """\
golf-audit causality: FAIL (3/4 evaluators got their expected verdict; unexpected: context-leak)
model: fake
stream: fake stream (97 tokens); geometry: seq_len=8
flips: 6 per evaluator (seed 0), each a stream flip and a target flip; tolerance 1e-09 nats (|Δlog p| for rows), Σp tolerance 0.0001; 1 worker(s), 1.0 s wall, 1.0 s CPU in the evaluator runs
columns: Affected = (flip, earlier target) pairs whose NLL moved; Self-pred = nats the true token gains when the evaluator saw it (0 if causal); tests: stream/target flip, dist(ribution), norm(alization)

Evaluator               Expected      Found    OK     Failed tests         Channel          Leaky flips   Affected   max |ΔNLL|   Example t→s (Δ)   Self-pred   worst Σp
────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
causal                  pass          ✔ pass   ✔      —                    —                        0/6          0            0                 —          +0          1
target-leak             fail          ✖ fail   ✔      dist                 target                   0/6          0            0                 —          +1          1
context-leak            pass          ✖ fail   ✖ NO   stream,target,dist   target+context           5/6        502       0.0124   80→55 (+0.0124)    +0.00998          1
slot(context, window)   fail (norm)   ✖ fail   ✔      norm                 —                        0/6          0            0                 —          +0          2

✖ target-leak: the row scoring a target moved when that target changed (12/12 rows) [target channel]
✖ context-leak: flipping a token changed earlier scores in 5/6 flips (max |ΔNLL| 0.0124 nats; e.g. flip 80 → target 55, Δ +0.0124); the row scoring a target moved when that target changed (12/12 rows) [target and context channel]
✖ slot(context, window): 66/66 rows do not sum to 1 (worst Σp = 2)
"""


def _report() -> CausalityReport:
    options = AuditOptions(flips=6)
    results = audit_sources([FakeSource(), FakeSource("target"), FakeSource("context"), FakeSource("mass")], stream(), options)
    report = CausalityReport("zoo", "fake", "fake stream", 97, {"seq_len": "8"}, 6, 0, options.tolerance,
                             options.norm_tolerance, 1, wall_seconds=1.0)
    expected = [PASS, FAIL, PASS, Expected(Status.FAIL, ("normalization",))]
    labels = ["causal", "target-leak", "context-leak", "slot(context, window)"]
    for result, exp, label in zip(results, expected, labels):
        result.seconds = 0.25  # measured CPU time varies from run to run
        report.subjects.append(AuditedSubject(label, "fake", {}, result, exp))
    return report


def test_table_text_is_exact():
    assert render_table(_report()) == EXPECTED_TABLE


def test_markdown_rows_are_exact():
    md = render_markdown(_report(), command="golf-audit causality --format markdown")
    assert md.startswith("# Causality audit\n\n**FAIL (3/4 evaluators got their expected verdict; unexpected: context-leak)**\n")
    assert "| max \\|ΔNLL\\| |" in md  # the pipe in a header must not split the column
    assert "| context-leak | pass | ✖ fail | ✖ NO | stream,target,dist | target+context | 5/6 | 502 | 0.0124 | 80→55 (+0.0124) | +0.00998 | 1 |" in md
    assert md.endswith("```\ngolf-audit causality --format markdown\n```\n")


def test_a_failed_script_audit_is_headed_by_the_concern_that_failed() -> None:
    """A normalization failure decided statically reads "not normalized", never "not causal"."""
    from golf_audit.submission.audit import ConcernVerdict, SubmissionAudit
    from golf_audit.submission.report import concern_text, to_causality_report

    concerns = {"causal": ConcernVerdict("causal", Status.PASS, "3 dynamic test(s) passed", "dynamic+static"),
                "normalized": ConcernVerdict("normalized", Status.FAIL, "GA-STATIC-008 spread log-prob (line 884)",
                                             "static")}
    audit = SubmissionAudit("train_gpt.py", Status.FAIL, "not normalized: GA-STATIC-008", "static", [], [],
                            concerns=concerns)
    assert concern_text(audit) == "not normalized: GA-STATIC-008 spread log-prob (line 884) (causal pass)"
    report = to_causality_report(audit, flips=8, seed=0, norm_tolerance=1e-4)
    assert report.concern_text.startswith("not normalized")
    audit.concerns["normalized"] = ConcernVerdict("normalized", Status.PASS, "ok", "static")
    assert concern_text(audit) == ""  # nothing failed: the generic summary stands


def _two_function_audit(reported_status: Status):
    """A script audit: eval_val (a diagnostic) could not be audited; eval_val_sliding is the reported score."""
    from pathlib import Path

    from golf_audit.causality.results import CausalityResult
    from golf_audit.submission.audit import FunctionVerdict, ScriptText, _combine

    diag = FunctionVerdict("eval_val", 10, Status.ERROR, "capture refused: captured NLLs do not reproduce the "
                           "function's val_loss")
    sliding = FunctionVerdict("eval_val_sliding", 40, reported_status, "causal: 8 flips left every earlier score "
                              "unchanged", reported=True,
                              causality=CausalityResult("eval_val_sliding", reported_status, "causal")
                              if reported_status is not Status.ERROR else None)
    src = ScriptText(Path("train_gpt.py"), "", "", 0, [])
    return _combine("train_gpt.py", [diag, sliding], [], src, {}, 665, 1e-9, 1.0)


def test_a_diagnostic_that_could_not_be_audited_does_not_decide_beside_a_reported_score_that_passed() -> None:
    """The report's verdict and exit code are the audit's, by concern; the diagnostic stays shown."""
    from golf_audit.checks.collect import dynamic_outcome
    from golf_audit.submission.report import to_causality_report

    audit = _two_function_audit(Status.PASS)
    assert audit.status is Status.PASS and audit.concerns["causal"].status is Status.PASS
    assert "not audited (the reported score does not come from it): eval_val: capture refused" in audit.summary
    report = to_causality_report(audit, flips=8, seed=0, norm_tolerance=1e-4)
    assert report.verdict is Status.PASS and report.exit_code() == 0
    assert report.summary() == audit.summary
    shown = {s.label: s.result.status for s in report.subjects}
    assert shown["eval_val"] is Status.ERROR  # never shown as passed
    outcome = dynamic_outcome(audit, "causality")
    assert outcome.status is Status.WARN
    assert any("eval_val: not audited" in e.message for e in outcome.evidence)


def test_the_reported_score_that_could_not_be_audited_is_an_error_whatever_else_passed() -> None:
    from golf_audit.checks.collect import dynamic_outcome
    from golf_audit.submission.report import to_causality_report

    audit = _two_function_audit(Status.ERROR)
    assert audit.status is Status.ERROR
    report = to_causality_report(audit, flips=8, seed=0, norm_tolerance=1e-4)
    assert report.verdict is Status.ERROR and report.exit_code() == 2
    assert report.summary().startswith("cannot conclude: ")
    assert dynamic_outcome(audit, "causality").status is Status.ERROR
