"""Every submission-like fixture at the default flip count, with its expected verdict (slow).

Run with ``pytest -m slow tests/test_submission_fixtures.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golf_audit.causality import DEFAULT_FLIPS
from golf_audit.findings import Status
from golf_audit.submission.audit import audit_script
from golf_audit.submission.report import to_causality_report

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"
P, F, E = Status.PASS, Status.FAIL, Status.ERROR

# fixture -> (script verdict, decided by, {scoring function: verdict}, {function: channel that must be named})
INLINE = "inline block main:348 if args.slot_enabled"
EXPECTED = {
    "sliding_legal.py": (P, "dynamic+static", {"eval_val": P, "eval_val_sliding": P}, {}),
    "exec_indirect.py": (P, "dynamic+static", {"eval_val": P, "eval_val_sliding": P}, {}),
    "diagnostic_regularized.py": (P, "dynamic+static", {"eval_val": E, "eval_val_sliding": P}, {}),
    "network_unused_env.py": (P, "dynamic+static", {"eval_val": P, "eval_val_sliding": P}, {}),
    "slot_context_window.py": (P, "dynamic+static", {"eval_val_slot": P}, {}),
    "ttt_score_first.py": (P, "dynamic+static", {"eval_val_ttt": P}, {}),
    "slot_scored_mask.py": (F, "dynamic+static", {"eval_val_slot": F, "eval_val_sliding": P}, {"eval_val_slot": "target"}),
    "wrapper_slot_scored.py": (F, "dynamic+static", {"eval_val_slot": F}, {"eval_val_slot": "target"}),
    "slot_shared_delta.py": (F, "dynamic+static", {"eval_val_slot": F}, {"eval_val_slot": "context"}),
    "ttt_train_first.py": (F, "dynamic+static", {"eval_val_ttt": F}, {}),
    "ttt_doc_single_pass.py": (P, "dynamic+static", {"eval_val_ttt_doc": P}, {}),
    "ttt_doc_last_epoch.py": (F, "dynamic", {"eval_val_ttt_doc": F, "eval_val_sliding": P}, {}),
    "inline_slot.py": (F, "dynamic+static", {INLINE: F, "eval_val_sliding": P}, {INLINE: "target"}),
    "ngram_cache.py": (F, "static", {"eval_val_ngram": E, "eval_val_sliding": P}, {}),
    "prequant_ttt.py": (F, "dynamic+static", {"eval_val": P, "pipeline (whole entry point)": F}, {}),
    "val_in_training.py": (F, "dynamic+static", {"eval_val_sliding": P, "pipeline (whole entry point)": F}, {}),
    "crash.py": (E, "error", {"eval_val": P, "eval_val_sliding": E}, {}),
    "hang.py": (E, "error", {"eval_val_sliding": E}, {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_verdict(name: str) -> None:
    status, decided_by, functions, channels = EXPECTED[name]
    audit = audit_script(SCRIPTS / name, flips=DEFAULT_FLIPS, run_timeout_s=10, setup_timeout_s=60)
    found = {v.name: v for v in audit.functions}
    assert audit.status is status and audit.decided_by == decided_by, audit.summary
    # the command's verdict is the audit's: a diagnostic that could not be audited does not decide
    report = to_causality_report(audit, flips=DEFAULT_FLIPS, seed=0, norm_tolerance=1e-4)
    assert report.verdict is status and report.exit_code() == {P: 0, F: 1, E: 2}[status], report.summary()
    for fn, want in functions.items():
        assert found[fn].status is want, (fn, found[fn].summary)
    for fn, channel in channels.items():
        assert channel in found[fn].channels, (fn, found[fn].channels)
    if name == "wrapper_slot_scored.py":
        assert audit.layers == 1
    if name == "ngram_cache.py":
        # Through its adapter the n-gram scores become visible: stream flips cannot see a
        # target-keyed lookup (it breaks normalization, not causality), the static check does.
        adapted = audit_script(SCRIPTS / name, adapter=SCRIPTS / "adapters" / "ngram_cache_adapter.py", flips=16)
        assert adapted.functions[0].status is P and adapted.status is F and adapted.decided_by == "static"
        assert audit.concerns["normalized"].status is F and audit.concerns["causal"].status is E
    if name == "exec_indirect.py":
        assert audit.followed and audit.followed[0].endswith("sliding_legal.py")
