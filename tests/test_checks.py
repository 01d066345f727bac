"""The checks framework: registry, stable ids, documentation, and the never-pass-by-accident rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit.checks import AuditContext, AuditOptions, Check, NotApplicable, NotRun, Outcome, all_checks, get_check
from golf_audit.checks.registry import UnknownCheck
from golf_audit.cli import app
from golf_audit.findings import Severity, Status

FIXTURES = Path(__file__).parent / "fixtures" / "report" / "tree" / "track_10min_16mb"


def make_check(run, dynamic: bool = False) -> Check:
    return Check(id="GA-TEST-001", title="test", severity=Severity.ERROR, rule="r", remediation="fix it",
                 family="test", run=run, dynamic=dynamic)


def test_ids_are_stable_unique_and_documented() -> None:
    checks = all_checks()
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids))
    for c in checks:
        assert re.fullmatch(r"GA-[A-Z]+-\d{3}", c.id), c.id
        assert c.doc.startswith(c.id + ":"), c.id  # the module docstring is the documentation
        for part in ("Rationale:", "Example:", "Fix:"):
            assert part in c.doc, (c.id, part)
        assert c.title and c.rule and c.remediation, c.id
    for required in ("GA-SIZE-001", "GA-SIZE-002", "GA-SIZE-003", "GA-TIME-001", "GA-TIME-002", "GA-SIG-001",
                     "GA-SIG-002", "GA-SEED-001", "GA-CAUSAL-001", "GA-NORM-001", "GA-STATIC-001"):
        assert required in ids


def test_get_check_did_you_mean() -> None:
    assert get_check("ga-size-001").id == "GA-SIZE-001"
    with pytest.raises(UnknownCheck, match="did you mean GA-SIZE-001"):
        get_check("GA-SIZE-01")


@pytest.mark.parametrize("exc, status", [
    (RuntimeError("boom"), Status.ERROR),
    (KeyError("seed"), Status.ERROR),
    (NotRun("needs a baseline"), Status.NOT_RUN),
    (__import__("golf_audit.errors").errors.CannotConclude("needs Python ≥ 3.12"), Status.ERROR),
    (NotApplicable("no artifact"), Status.NOT_APPLICABLE),
])
def test_a_check_that_raises_never_passes(exc, status) -> None:
    def run(ctx, check):
        raise exc

    result = make_check(run).evaluate(AuditContext(FIXTURES / "2026-01-01_Baseline"))
    assert result.status is status
    if status is Status.ERROR and "3.12" in str(exc):
        assert result.summary == "cannot conclude: needs Python ≥ 3.12"
    elif status is Status.ERROR:
        assert "crashed" in result.summary and result.evidence and type(exc).__name__ in result.evidence[0].message


def test_outcome_gets_the_check_metadata() -> None:
    result = make_check(lambda ctx, check: Outcome(Status.PASS, "fine")).evaluate(AuditContext(FIXTURES))
    assert (result.check_id, result.status, result.severity, result.remediation) == ("GA-TEST-001", Status.PASS, Severity.ERROR, "fix it")


def test_dynamic_checks_only_when_asked() -> None:
    check = make_check(lambda ctx, check: Outcome(Status.PASS, "ran"), dynamic=True)
    assert check.evaluate(AuditContext(FIXTURES)).status is Status.NOT_RUN
    assert check.evaluate(AuditContext(FIXTURES, AuditOptions(dynamic=True))).status is Status.PASS


def test_collector_failure_is_shared_and_cached() -> None:
    calls = []

    def broken(ctx):
        calls.append(1)
        raise ValueError("corrupt log")

    ctx = AuditContext(FIXTURES)
    for _ in range(2):
        with pytest.raises(ValueError):
            ctx.collect("k", broken)
    assert calls == [1]


def test_checks_command_lists_every_id() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["checks", "--format", "json"])
    assert out.exit_code == 0, out.output
    import json

    doc = json.loads(out.stdout)
    assert [c["id"] for c in doc["checks"]] == [c.id for c in all_checks()]
    table = runner.invoke(app, ["checks"])
    assert table.exit_code == 0 and "GA-CAUSAL-001" in table.stdout, table.output
    one = runner.invoke(app, ["checks", "GA-SIZE-001"])
    assert one.exit_code == 0 and "Rationale:" in one.stdout, one.output
    bad = runner.invoke(app, ["checks", "GA-SIZE-01"])
    assert bad.exit_code == 2 and "did you mean GA-SIZE-001" in bad.output


# --- checks wired to the records reader (issue 7): a known-good and a known-bad folder each ---------

GOOD = FIXTURES / "2026-01-05_Better"
BAD = Path(__file__).parent / "fixtures" / "report" / "folders" / "seed_mismatch"


def test_seed_consistency_good_and_bad() -> None:
    check = get_check("GA-SEED-001")
    assert check.evaluate(AuditContext(GOOD)).status is Status.PASS
    bad = check.evaluate(AuditContext(BAD))
    assert bad.status is Status.WARN
    messages = " ".join(e.message for e in bad.evidence)
    assert "named for seed 1337 but the log prints seed 1339" in messages
    located = [e for e in bad.evidence if e.line]
    assert located and located[0].file == "train_seed1337.log" and located[0].line == 4


def test_claims_match_logs_good_and_bad() -> None:
    check = get_check("GA-CLAIM-001")
    assert check.evaluate(AuditContext(GOOD)).status is Status.PASS
    bad = check.evaluate(AuditContext(BAD))
    assert bad.status is Status.FAIL
    assert "1.19" in bad.evidence[0].message and bad.evidence[0].threshold == 1.19


# --- checks wired to the artifact and time audits (issue 7) ---------------------------------------

OVER_CAP = FIXTURES / "2026-01-09_OverCap"
OVER_TIME = Path(__file__).parent / "fixtures" / "report" / "folders" / "over_time"


def test_size_cap_good_and_bad() -> None:
    check = get_check("GA-SIZE-001")
    assert check.evaluate(AuditContext(GOOD)).status is Status.PASS
    bad = check.evaluate(AuditContext(OVER_CAP))
    assert bad.status is Status.FAIL and bad.severity is Severity.CRITICAL
    assert bad.evidence[0].value == 16003211 and bad.evidence[0].threshold == 16000000


@pytest.mark.parametrize("check_id, measured", [("GA-TIME-001", 641.2), ("GA-TIME-002", 700.512)])
def test_time_limits_good_and_bad(check_id, measured) -> None:
    check = get_check(check_id)
    assert check.evaluate(AuditContext(OVER_TIME)).status is Status.FAIL
    bad = check.evaluate(AuditContext(OVER_TIME))
    assert bad.evidence[0].value == pytest.approx(measured) and bad.evidence[0].unit == "s"
    assert check.evaluate(AuditContext(GOOD)).status in (Status.PASS, Status.WARN)  # 600.043 s: within step slack


def test_static_checks_not_run_without_script() -> None:
    result = get_check("GA-STATIC-001").evaluate(AuditContext(OVER_CAP))
    assert result.status is Status.NOT_RUN and "training script" in result.summary


# --- static and dynamic checks on a submission's own script (issue 8) ------------------------------

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def script_folder(tmp_path: Path, script: str) -> Path:
    """A records folder shipping one of the submission auditor's fixture scripts as train_gpt.py."""
    folder = tmp_path / script
    folder.mkdir()
    (folder / "train_gpt.py").write_bytes((SCRIPTS / f"{script}.py").read_bytes())
    (folder / "submission.json").write_text('{"name": "%s", "val_bpb": 1.2}\n' % script)
    return folder


def test_static_checks_good_and_bad(tmp_path) -> None:
    good = AuditContext(script_folder(tmp_path, "sliding_legal"))
    bad = AuditContext(script_folder(tmp_path, "slot_scored_mask"))
    assert get_check("GA-STATIC-001").evaluate(good).status is Status.PASS
    leak = get_check("GA-STATIC-001").evaluate(bad)
    assert leak.status is Status.FAIL and leak.severity is Severity.CRITICAL
    assert leak.evidence[0].file == "train_gpt.py" and leak.evidence[0].line


def test_static_warnings(tmp_path) -> None:
    ctx = AuditContext(script_folder(tmp_path, "network_unused_env"))
    assert get_check("GA-STATIC-006").evaluate(ctx).status is Status.WARN
    assert get_check("GA-STATIC-007").evaluate(ctx).status is Status.WARN


def _fake_audit(*verdicts):
    from golf_audit.causality.engine import CausalityResult, FlipTestOutcome, NormalizationOutcome
    from golf_audit.submission.audit import FunctionVerdict, SubmissionAudit

    functions = []
    for name, status, failed, rows_off in verdicts:
        res = None
        if status is not Status.ERROR:
            res = CausalityResult(subject=name, status=status, summary="", failed_tests=failed,
                                  channels=["target"] if "target_flip" in failed else [],
                                  stream_flip=FlipTestOutcome(flips=64), target_flip=FlipTestOutcome(
                                      flips=64, positions_affected=10 if failed else 0, max_abs_delta=0.7 if failed else 0.0),
                                  normalization=None if rows_off is None else NormalizationOutcome(8, rows_off, 0.3 if rows_off else 0.0, 1.3))
        functions.append(FunctionVerdict(name, 10, status, "child died" if status is Status.ERROR else "", causality=res,
                                         child_tail="Traceback: boom" if status is Status.ERROR else ""))
    return SubmissionAudit("x/train_gpt.py", Status.PASS, "", "dynamic", functions, [])


@pytest.mark.parametrize("verdicts, causal, norm", [
    ([("eval_val", Status.PASS, [], 0)], Status.PASS, Status.PASS),
    ([("eval_val", Status.PASS, [], 0), ("eval_val_slot", Status.FAIL, ["target_flip"], 0)], Status.FAIL, Status.PASS),
    ([("eval_val", Status.FAIL, ["normalization"], 2)], Status.PASS, Status.FAIL),
    ([("eval_val", Status.PASS, [], None)], Status.PASS, Status.NOT_RUN),
    ([("eval_val", Status.PASS, [], 0), ("eval_val_ttt", Status.ERROR, [], None)], Status.ERROR, Status.ERROR),
])
def test_dynamic_outcomes_from_the_submission_audit(verdicts, causal, norm) -> None:
    from golf_audit.checks import collect

    audit = _fake_audit(*verdicts)
    assert collect.dynamic_outcome(audit, "causality").status is causal
    assert collect.dynamic_outcome(audit, "normalization").status is norm
    if causal is Status.ERROR:
        crashed = collect.dynamic_outcome(audit, "causality").evidence[-1]
        assert crashed.snippet == "Traceback: boom"


def test_need_absent_library_is_not_run_but_broken_one_is_error(monkeypatch, tmp_path) -> None:
    from golf_audit.checks.base import need

    with pytest.raises(NotRun, match="issue 99"):
        need("golf_audit.no_such_library", 99)
    (tmp_path / "broken_lib_for_test.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        need("broken_lib_for_test", 99)
