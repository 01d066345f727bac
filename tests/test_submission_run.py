"""Running a submission's own eval functions in the sandboxed child: verdicts, self-checks, failures.

The default suite runs a few scripts with few flips; tests/test_submission_fixtures.py sweeps
every fixture at the default flip count (marked slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit.causality.report import validate
from golf_audit.cli import app
from golf_audit.findings import Status
from golf_audit.submission.audit import audit_script

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def test_legal_sliding_eval_passes_with_an_exact_capture() -> None:
    audit = audit_script(SCRIPTS / "sliding_legal.py", functions=["eval_val_sliding"], flips=8)
    assert audit.status is Status.PASS, audit.summary
    (v,) = audit.functions
    assert v.capture["rule"] == "sliding (stride 16)"
    assert v.capture["rebuilt_val_bpb"] == pytest.approx(v.capture["function_val_bpb"], rel=1e-9)
    assert v.positive_control["passed"] and v.positive_control["moved"] > 0
    assert v.causality is not None and v.causality.stream_flip.flips == 8
    dist = v.causality.distribution  # rows come from the captured logits
    assert dist is not None and dist.checked == 8 and dist.changed == 0
    assert audit.env["MODEL_DIM"] == "64" and audit.stream_tokens >= 32 * 16 * 3
    assert audit.entry["error"] is None and v.calls == 1 and v.call_line


def test_scored_mask_slot_fails_in_the_target_channel() -> None:
    audit = audit_script(SCRIPTS / "slot_scored_mask.py", functions=["eval_val_slot"], flips=12)
    assert audit.status is Status.FAIL and audit.decided_by == "dynamic+static", audit.summary
    (v,) = audit.functions
    assert v.status is Status.FAIL and "target" in v.channels
    assert v.causality.stream_flip.max_abs_delta > 1e-6
    assert "distribution" in v.causality.failed_tests  # the row scoring the flipped target moved


def test_multi_epoch_per_document_ttt_keeping_the_last_epoch_fails_causal() -> None:
    audit = audit_script(SCRIPTS / "ttt_doc_last_epoch.py", functions=["eval_val_ttt_doc"], flips=8)
    assert audit.status is Status.FAIL and audit.concerns["causal"].status is Status.FAIL, audit.summary
    (v,) = audit.functions
    assert v.status is Status.FAIL and "final pass" in v.capture["rule"], v.capture
    assert v.capture["rebuilt_val_loss"] == pytest.approx(v.capture["function_val_loss"], rel=1e-9)


def test_a_crash_is_an_error_that_names_the_script_line() -> None:
    audit = audit_script(SCRIPTS / "crash.py", functions=["eval_val_sliding"], flips=4)
    assert audit.status is Status.ERROR and audit.decided_by == "error"
    (v,) = audit.functions
    assert v.status is Status.ERROR and "ValueError" in v.summary and "(line " in v.summary
    assert audit.entry["line"] and audit.entry["error"].startswith("ValueError")


def test_a_hang_is_killed_and_reported_as_error() -> None:
    audit = audit_script(SCRIPTS / "hang.py", functions=["eval_val_sliding"], flips=4, run_timeout_s=3,
                         setup_timeout_s=20)
    (v,) = audit.functions
    assert v.status is Status.ERROR and "timed out" in v.summary
    assert audit.status is Status.ERROR


def test_static_leak_fails_the_script_when_the_capture_cannot_see_the_scores() -> None:
    # The n-gram eval computes its NLL by hand: no cross_entropy to capture, so the dynamic
    # result is error; the static finding still fails the script.
    audit = audit_script(SCRIPTS / "ngram_cache.py", functions=["eval_val_ngram"], flips=4)
    (v,) = audit.functions
    assert v.status is Status.ERROR and "no per-token NLL" in v.summary
    assert audit.status is Status.FAIL and audit.decided_by == "static"


runner = CliRunner()


def test_cli_script_target_exit_codes_and_json() -> None:
    result = runner.invoke(app, ["causality", str(SCRIPTS / "slot_scored_mask.py"), "--function", "eval_val_slot",
                                 "--flips", "6", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "script" and data["verdict"] == "fail" and not validate(data)
    labels = [r["label"] for r in data["results"]]
    assert labels[0] == "eval_val_slot" and "GA-STATIC-001 (static)" in labels
    assert "GA-COVER-001 (dynamic)" in labels and "GA-DOC-001 (dynamic)" in labels
    statuses = {r["label"]: r["status"] for r in data["results"]}
    assert statuses["GA-DOC-001 (dynamic)"] == "not-applicable"


@pytest.mark.parametrize("args, message", [
    (["missing_script.py"], "no such script"),
    ([str(SCRIPTS / "needs_py312.py")], "no scoring function found"),
    ([str(SCRIPTS / "sliding_legal.py"), "--function", "eval_nothing"], "no module-level function named eval_nothing"),
    ([str(SCRIPTS / "sliding_legal.py"), "--env", "NOEQUALS"], "key=value"),
])
def test_cli_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["causality", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


ADAPTERS = SCRIPTS / "adapters"


def test_adapter_scores_through_the_hook_and_passes() -> None:
    audit = audit_script(SCRIPTS / "sliding_legal.py", adapter=ADAPTERS / "sliding_adapter.py", flips=4)
    (v,) = audit.functions
    assert v.kind == "adapter" and v.status is Status.PASS, v.summary
    assert v.positive_control["passed"]


def test_adapter_whose_bpb_does_not_add_up_is_refused() -> None:
    audit = audit_script(SCRIPTS / "sliding_legal.py", adapter=ADAPTERS / "sliding_adapter.py", flips=2,
                         env={"ADAPTER_MISREPORT": "1"})
    (v,) = audit.functions
    assert v.status is Status.ERROR and "do not reproduce" in v.summary


def test_bad_adapter_file_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "adapter.py"
    bad.write_text("def build_model(script, args):\n    pass\n")
    result = runner.invoke(app, ["causality", str(SCRIPTS / "sliding_legal.py"), "--adapter", str(bad)])
    assert result.exit_code == 2 and "missing def evaluate" in result.output, result.output


TINY_SCRIPT = '''
import torch
{prelude}

def eval_val_x(model, val_tokens):
    val_bpb = 1.0
    for _ in range(2):
        pass
    return 1.0, val_bpb

def main():
    eval_val_x(None, None)

if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("prelude, message", [
    ('import socket\nsocket.create_connection(("93.184.216.34", 80), timeout=5)', "network access is not allowed"),
    ("blob = bytearray(64 * 2**30)", "MemoryError"),
])
def test_sandbox_refuses_network_and_caps_memory(tmp_path: Path, prelude: str, message: str) -> None:
    script = tmp_path / "train_gpt.py"
    script.write_text(TINY_SCRIPT.format(prelude=prelude))
    audit = audit_script(script, flips=2)
    (v,) = audit.functions
    assert v.status is Status.ERROR and message in v.summary, v.summary
    assert audit.status is Status.ERROR
    if "network" in message:  # the attempt is evidence too, with the script's line
        assert any(a["kind"] == "network" and a.get("line") == 4 for a in audit.attempts), audit.attempts


def test_a_script_with_its_sizes_in_module_constants_gets_a_specific_error_fast(tmp_path: Path) -> None:
    """No env var reaches MODEL_DIM = 512: the run is at full size; the error says so and what to do."""
    script = tmp_path / "train_mdlm.py"
    script.write_text(TINY_SCRIPT.format(prelude="NUM_LAYERS = 11; MODEL_DIM = 512\nSEQ_LEN = 2048\n"
                                         "def build():\n    raise MemoryError('cannot allocate 33554432 bytes')")
                      .replace("    eval_val_x(None, None)", "    build()\n    eval_val_x(None, None)"))
    said: list[str] = []
    audit = audit_script(script, flips=2, progress=said.append)
    (v,) = audit.functions
    assert audit.status is Status.ERROR and v.status is Status.ERROR
    assert "MemoryError" in v.summary and "MODEL_DIM = 512 (line 3)" in v.summary and "--adapter" in v.summary, v.summary
    assert not any("retrying" in m for m in said), "a longer sequence cannot help a script that fixes its own"
    assert any("module constants" in m for m in said)


def test_a_script_that_needs_python_312_is_audited_through_the_downgrade(tmp_path: Path) -> None:
    text = (SCRIPTS / "sliding_legal.py").read_text().replace(
        "    t0 = time.perf_counter()", '    print(f"{args.__class__.__dict__["seed"]!r}")\n    t0 = time.perf_counter()', 1)
    script = tmp_path / "train_gpt.py"
    script.write_text(text)
    audit = audit_script(script, functions=["eval_val_sliding"], flips=4)
    assert audit.status is Status.PASS, audit.summary
    assert "PEP 701" in audit.compat and "line numbers kept" in audit.compat


def test_a_flag_off_in_the_submitted_run_keeps_its_path_off(tmp_path: Path) -> None:
    # SLOT_ENABLED defaults to 1 in the fixture; a README command that ran it with 0 wins
    folder = tmp_path / "record"
    folder.mkdir()
    (folder / "train_gpt.py").write_text((SCRIPTS / "slot_scored_mask.py").read_text())
    (folder / "README.md").write_text("SLOT_ENABLED=0 torchrun --nproc_per_node=8 train_gpt.py\n")
    audit = audit_script(folder, flips=4)
    assert audit.env.get("SLOT_ENABLED") == "0"
    slot = next(v for v in audit.functions if v.name == "eval_val_slot")
    assert slot.status is not Status.FAIL, slot.summary


def test_a_warning_reads_the_same_in_causality_and_in_report(tmp_path: Path) -> None:
    from golf_audit.checks.base import AuditContext
    from golf_audit.checks.registry import get_check

    (tmp_path / "train_gpt.py").write_text((SCRIPTS / "network_unused_env.py").read_text())
    result = runner.invoke(app, ["causality", str(tmp_path), "--function", "eval_val", "--flips", "2",
                                 "--format", "json"])
    in_causality = {r["label"]: r["status"] for r in json.loads(result.stdout)["results"]}["GA-STATIC-006 (static)"]
    in_report = get_check("GA-STATIC-006").evaluate(AuditContext(tmp_path)).status.value
    assert in_causality == in_report == "warn"


@pytest.mark.parametrize("script,function", [("sliding_legal.py", "eval_val_sliding"),
                                             ("slot_scored_mask.py", "eval_val_slot")])
def test_the_twin_child_shares_the_flips_and_changes_no_result(script: str, function: str, monkeypatch) -> None:
    monkeypatch.setenv("GOLF_AUDIT_REPLAY_WORKERS", "2")
    (two,) = audit_script(SCRIPTS / script, functions=[function], flips=8).functions
    monkeypatch.setenv("GOLF_AUDIT_REPLAY_WORKERS", "1")
    (one,) = audit_script(SCRIPTS / script, functions=[function], flips=8).functions
    assert any("shared with the twin" in n for n in two.notes), two.notes
    assert not any("twin" in n for n in one.notes), one.notes
    assert two.status is one.status
    a, b = two.causality, one.causality
    assert (a.stream_flip.flips, a.stream_flip.flips_with_leak, a.stream_flip.positions_affected) == \
        (b.stream_flip.flips, b.stream_flip.flips_with_leak, b.stream_flip.positions_affected)
    assert a.stream_flip.max_abs_delta == b.stream_flip.max_abs_delta


def test_a_twin_stopped_mid_entry_leaves_the_verdicts_as_they_were(monkeypatch) -> None:
    """Stopped early, the twin frees its core: the first child's later scoring calls and their replays
    run on two threads, each replay on its call's own count, so the null control still agrees."""
    from golf_audit.submission import audit as _audit, twin as _twin

    if _twin.replay_workers() < 2:
        pytest.skip("one core: no twin")
    monkeypatch.setattr(_audit, "TWIN_ENTRY_LIMIT_S", 0.5)
    said: list[str] = []
    audit = audit_script(SCRIPTS / "sliding_legal.py", flips=8, progress=said.append)
    assert any("twin child was stopped" in m for m in said), said
    assert audit.status is Status.PASS, audit.summary
    assert {v.name: v.status for v in audit.functions} == {"eval_val": Status.PASS, "eval_val_sliding": Status.PASS}


def test_a_script_that_never_finishes_at_full_size_times_out_with_every_concern_named(tmp_path, monkeypatch) -> None:
    from golf_audit.submission import audit as _audit

    monkeypatch.setattr(_audit, "HARDCODED_ENTRY_S", 4.0)
    script = tmp_path / "train_mdlm.py"
    script.write_text(TINY_SCRIPT.format(prelude="import time\nMODEL_DIM = 512\ndef build():\n    while True:\n"
                                         "        time.sleep(0.1)")
                      .replace("    eval_val_x(None, None)", "    build()\n    eval_val_x(None, None)"))
    audit = audit_script(script, flips=2)
    (v,) = audit.functions
    assert "timed out after 4 s" in v.summary and "MODEL_DIM = 512" in v.summary, v.summary
    assert audit.status is Status.ERROR and audit.concerns["coverage"].status is Status.ERROR  # said, not left out
