"""Good/bad fixtures of the records rules (built by tests/fixtures/rules/make_fixtures.py).

Each rule is asserted on a folder where it must pass and one where it must not, through the
same `report` path a reviewer uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golf_audit.findings import Status
from golf_audit.report import audit_folder

MAKER = Path(__file__).resolve().parent / "fixtures" / "rules" / "make_fixtures.py"


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("golf_audit_rules_fixtures", MAKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(tmp_path_factory.mktemp("rules"))


@pytest.fixture(autouse=True)
def _rules_dir(rules: Path) -> None:
    global RULES
    RULES = rules


RULES = Path()


def status(folder: str, check_id: str):
    audit = audit_folder(RULES / folder)
    result = audit.result(check_id)
    assert result is not None, check_id
    return result


def test_compressed_code_is_counted_as_the_script_counts_it() -> None:
    cap = status("compressed_code_good", "GA-SIZE-001")
    # raw source + model would be over the cap; the self-extractor figure the script logs fits
    assert cap.status is Status.PASS and cap.data["counting"] == "compressed"
    assert cap.data["counted_code_bytes"] < 10_000 and "rebuilt" in " ".join(e.message for e in cap.evidence)
    assert status("compressed_code_good", "GA-SIZE-003").status is Status.PASS


def test_compressed_figure_taken_from_the_log_without_a_rebuild(monkeypatch) -> None:
    from golf_audit.artifact.audit import audit_artifact
    from golf_audit.records import codesize

    # No recipe found: the logged figure of the run that used the committed file is counted.
    monkeypatch.setattr(codesize, "find_recipe", lambda text: None)
    report = audit_artifact(RULES / "compressed_code_good")
    assert report.counting == "compressed" and "taken from the log" in report.counted_how
    assert next(c for c in report.checks if c.check_id == "GA-SIZE-001").status is Status.PASS


def test_logs_of_another_script_version_are_a_mismatch() -> None:
    mismatch = status("compressed_code_other_version", "GA-SIZE-003")
    assert mismatch.status is Status.WARN
    assert any("another version" in e.message and e.line for e in mismatch.evidence)


@pytest.mark.parametrize("folder", ["helper_kernel_over_cap", "stub_exec"])
def test_loaded_code_is_counted_and_can_break_the_cap(folder: str) -> None:
    hidden = status(folder, "GA-SIZE-002")
    assert hidden.status is Status.WARN
    files = {e.file for e in hidden.evidence}
    expected = {"helper_kernel_over_cap": {"ngram_helper.py", "ngram_kernel.c"}, "stub_exec": {"rp"}}[folder]
    assert expected <= files
    assert status(folder, "GA-SIZE-001").status is Status.FAIL


def test_post_stop_training_data() -> None:
    bad = status("gptq_train_no_reserve", "GA-TIME-003")
    assert bad.status is Status.FAIL and any(e.line for e in bad.evidence if "full 600 s" in e.message)
    assert status("gptq_train_reserve", "GA-TIME-003").status is Status.PASS
    overrun = status("gptq_train_reserve_overrun", "GA-TIME-003")
    assert overrun.status is Status.WARN and "overran" in overrun.summary
    assert status("gptq_self_generated", "GA-TIME-003").status is Status.PASS


def test_val_calibration() -> None:
    bad = status("gptq_val_calibration", "GA-DATA-001")
    assert bad.status is Status.FAIL and any("val" in e.message for e in bad.evidence)
    assert any(e.file and e.file.endswith(".log") for e in bad.evidence)  # the run's own line confirms it
    assert status("gptq_train_reserve", "GA-DATA-001").status is Status.PASS


def test_data_fingerprints() -> None:
    assert status("data_canonical", "GA-DATA-002").status is Status.PASS
    bad = status("data_other_split", "GA-DATA-002")
    assert bad.status is Status.WARN and len(bad.evidence) == 6  # val tokens and shards, 3 logs


def test_time_rules() -> None:
    ttt = status("eval_with_prequant_ttt", "GA-TIME-002")
    assert ttt.status is Status.FAIL and "adaptation on validation tokens" in ttt.evidence[0].message
    four = status("four_gpus_no_cap", "GA-TIME-001")
    assert four.status is Status.FAIL and any("4 GPU" in e.message for e in four.evidence)
    mid = status("mid_step_stop", "GA-TIME-001")
    assert mid.status is Status.PASS and "within one step after 600 s" in mid.summary


def test_best_of_n() -> None:
    seeds = status("best_of_n", "GA-SEED-001")
    assert seeds.status is Status.WARN and "one run's value" in seeds.summary
    claim = status("best_of_n", "GA-CLAIM-001")
    assert claim.status is Status.PASS and "single run of 3" in claim.summary
