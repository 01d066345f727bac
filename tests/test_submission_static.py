"""Static (ast) checks on submission-like scripts: each check has a known-bad and a known-good fixture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from golf_audit.findings import Status
from golf_audit.submission import static

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"

# check id -> (fixture where it must fire, fixture where it must not)
CASES = {
    "GA-STATIC-001": ("slot_scored_mask.py", "slot_context_window.py"),
    "GA-STATIC-002": ("slot_shared_delta.py", "slot_context_window.py"),
    "GA-STATIC-003": ("ttt_train_first.py", "ttt_score_first.py"),
    "GA-STATIC-004": ("ngram_cache.py", "sliding_legal.py"),
    "GA-STATIC-005": ("val_in_training.py", "sliding_legal.py"),
    "GA-STATIC-006": ("network_unused_env.py", "sliding_legal.py"),
    "GA-STATIC-007": ("network_unused_env.py", "sliding_legal.py"),
}


def results(name: str) -> dict[str, object]:
    path = SCRIPTS / name
    return {r.check_id: r for r in static.run_all(ast.parse(path.read_text()), str(path))}


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_known_bad_fixture_is_flagged_with_file_and_line(check_id: str) -> None:
    bad, _ = CASES[check_id]
    res = results(bad)[check_id]
    expected = Status.FAIL if static.CHECKS[int(check_id[-3:]) - 1].leak else Status.WARN
    assert res.status is expected, res.summary
    ev = res.evidence[0]
    assert ev.file and ev.file.endswith(bad) and ev.line and ev.line > 1
    assert (SCRIPTS / bad).read_text().splitlines()[ev.line - 1].strip(), "evidence points at a real line"


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_known_good_fixture_passes(check_id: str) -> None:
    _, good = CASES[check_id]
    res = results(good)[check_id]
    assert res.status is Status.PASS, [e.message for e in res.evidence]


def test_prequant_ttt_in_main_is_flagged() -> None:
    res = results("prequant_ttt.py")["GA-STATIC-003"]
    assert res.status is Status.FAIL
    assert "prequant_ttt_enabled" in (res.evidence[0].snippet or "")  # the block that trains before eval_val


def test_legal_fixtures_have_no_leak_pattern() -> None:
    for name in ("sliding_legal.py", "slot_context_window.py", "ttt_score_first.py"):
        bad = [r.check_id for r in results(name).values() if r.status in (Status.FAIL, Status.ERROR)]
        assert not bad, (name, bad)


def test_a_crashing_check_is_error_not_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(tree):
        raise RuntimeError("broken")

    spec = static.CHECKS[0]
    monkeypatch.setattr(static, "CHECKS", [static.CheckSpec(spec.check_id, spec.title, True, "", "", boom)])
    res = static.run_all(ast.parse("x = 1"), "x.py")[0]
    assert res.status is Status.ERROR


def test_checks_read_the_syntax_tree_not_text() -> None:
    # The pattern inside a string or comment is not code.
    text = 'NOTE = "mask[i, s:wlen] = 1.0; import socket"\n# import requests\n'
    assert all(r.status is Status.PASS for r in static.run_all(ast.parse(text), "x.py"))
