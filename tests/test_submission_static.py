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
    "GA-STATIC-008": ("static/byte_mixer_spread.py", "static/byte_totals.py"),
    "GA-STATIC-009": ("static/word_gate_hint.py", "static/context_hint.py"),
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


def test_prequant_ttt_in_main_is_flagged_at_the_training_line() -> None:
    res = results("prequant_ttt.py")["GA-STATIC-003"]
    assert res.status is Status.FAIL
    line = (SCRIPTS / "prequant_ttt.py").read_text().splitlines()[res.evidence[0].line - 1]
    assert not line.strip().startswith("if "), "the finding names the offending expression, not the enclosing if"


STATIC = SCRIPTS / "static"


def static_results(name: str) -> dict[str, object]:
    path = STATIC / name
    return {r.check_id: r for r in static.run_all(ast.parse(path.read_text()), name)}


def test_adaptation_discarded_before_scoring_is_evidence_not_a_finding() -> None:
    res = static_results("warmup_discarded.py")["GA-STATIC-003"]
    assert res.status is Status.PASS, [e.message for e in res.evidence]
    (node, message), = static.discarded_adaptations(ast.parse((STATIC / "warmup_discarded.py").read_text()))
    assert "del wl, wo" in message and "discards" in message


def test_training_on_val_before_scoring_names_the_trainer_call_not_the_if() -> None:
    res = static_results("pre_eval_ttt.py")["GA-STATIC-003"]
    assert res.status is Status.FAIL
    line = (STATIC / "pre_eval_ttt.py").read_text().splitlines()[res.evidence[0].line - 1]
    assert line.strip().startswith("ttt_adapt(")


def test_normalized_add_one_table_read_at_the_target_is_not_flagged() -> None:
    assert static_results("add_one_bigram.py")["GA-STATIC-004"].status is Status.PASS


@pytest.mark.parametrize("name, expr", [("nested_counts.py", "self.full_counts[1][full_key.reshape(-1)]"),
                                        ("counts_get_target.py", "counts.get(target, 0)")])
def test_target_keyed_lookups_on_attributes_nested_subscripts_and_get_are_flagged(name: str, expr: str) -> None:
    res = static_results(name)["GA-STATIC-004"]
    assert res.status is Status.FAIL
    lines = [(STATIC / name).read_text().splitlines()[e.line - 1] for e in res.evidence]
    assert any(expr in line for line in lines), lines
    assert not any("entry[target] = entry.get" in line for line in lines), "a table's own update is not a read"


def test_a_leak_in_a_branch_the_submitted_run_switches_off_is_a_warning() -> None:
    from golf_audit.submission import analyze

    tree = ast.parse((STATIC / "slot_off_branch.py").read_text())
    variables = analyze.env_vars(tree)
    raw = {r.check_id: r for r in static.run_all(tree, "slot_off_branch.py")}
    assert raw["GA-STATIC-002"].status is Status.FAIL
    flags = analyze.flag_values(variables, {})
    configured = {r.check_id: r for r in static.configured(list(raw.values()), tree, flags, variables, {})}
    res = configured["GA-STATIC-002"]
    assert res.status is Status.WARN and "SLOT_ENABLED=0" in res.evidence[0].message
    on = {r.check_id: r for r in static.configured(static.run_all(tree, "x.py"), tree,
                                                   analyze.flag_values(variables, {"SLOT_ENABLED": "1"}), variables, {})}
    assert on["GA-STATIC-002"].status is Status.FAIL


def test_minified_true_alias_still_counts_as_trainable() -> None:
    text = ("_B = True\nimport torch\ndef eval_val_slot(h):\n    delta = torch.zeros(1, 1, 8, requires_grad=_B)\n"
            "    opt = torch.optim.AdamW([delta])\n    return 0.0\n")
    res = {r.check_id: r for r in static.run_all(ast.parse(text), "x.py")}
    assert res["GA-STATIC-002"].status is Status.FAIL


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


def test_memoized_walks_give_the_same_findings_and_are_dropped_after_the_scope() -> None:
    """astmemo.scope() only saves time: every check finds the same lines with and without it."""
    from golf_audit import astmemo

    scripts = sorted([*SCRIPTS.glob("*.py"), *(SCRIPTS / "static").glob("*.py")])
    assert len(scripts) > 10
    for script in scripts:
        try:
            tree = ast.parse(script.read_text(encoding="utf-8"))
        except SyntaxError:  # needs_py312.py: parsed elsewhere through the downgrade
            continue
        plain = static.run_all(tree, script.name)
        with astmemo.scope():
            memo = static.run_all(tree, script.name)
            assert astmemo._walks  # the scope did remember walks
        assert [(r.check_id, r.status, [(e.line, e.message) for e in r.evidence]) for r in plain] == \
            [(r.check_id, r.status, [(e.line, e.message) for e in r.evidence]) for r in memo], script.name
    assert not astmemo._walks and not astmemo._texts and not astmemo._owns  # nothing kept after the scope


def test_token_logprob_spread_over_bytes_names_the_division() -> None:
    res = static_results("byte_mixer_spread.py")["GA-STATIC-008"]
    assert res.status is Status.FAIL
    (ev,) = res.evidence
    assert "byte_lp = per_byte / share" in (STATIC / "byte_mixer_spread.py").read_text().splitlines()[ev.line - 1]
    assert "mixed into a probability at line" in ev.message


def test_spread_logprob_fails_the_normalized_concern() -> None:
    from golf_audit.submission.audit import _concerns, static_view

    view = static_view(STATIC / "byte_mixer_spread.py", use_logs=False)
    concerns = _concerns("byte_mixer_spread.py", [], view.static, [])
    assert concerns["normalized"].status is Status.FAIL and "GA-STATIC-008" in concerns["normalized"].summary
    good = static_view(STATIC / "byte_totals.py", use_logs=False)
    assert all(r.status is not Status.FAIL for r in good.static)


def _helper_folder(tmp_path: Path) -> Path:
    """train_gpt.py importing tilt_helper.py, the word-start gate fixture, from its own folder."""
    (tmp_path / "train_gpt.py").write_bytes((SCRIPTS / "helper_gate" / "train_gpt.py").read_bytes())
    (tmp_path / "tilt_helper.py").write_bytes((SCRIPTS / "static" / "word_gate_hint.py").read_bytes())
    return tmp_path / "train_gpt.py"


def test_leak_in_an_imported_helper_module_fails_the_script_and_names_that_file(tmp_path: Path) -> None:
    from golf_audit.submission.audit import static_view

    script = _helper_folder(tmp_path)
    res = {r.check_id: r for r in static_view(script).static}["GA-STATIC-009"]
    assert res.status is Status.FAIL, res.summary
    assert {(e.file, e.line) for e in res.evidence} == {("tilt_helper.py", 13), ("tilt_helper.py", 27)}
    assert "tilt_helper.py line 13" in res.summary


def test_helper_imported_only_behind_a_switched_off_flag_warns(tmp_path: Path) -> None:
    from golf_audit.submission.audit import static_view

    script = _helper_folder(tmp_path)
    res = {r.check_id: r for r in static_view(script, env={"NGRAM_TILT_ENABLED": "0"}).static}["GA-STATIC-009"]
    assert res.status is Status.WARN and res.data.get("off_in_submitted_run"), res.summary
    assert "imported only inside `if args.ngram_tilt_enabled` (line 13)" in res.evidence[0].message


def test_every_leak_check_fails_a_named_concern() -> None:
    from golf_audit.submission.audit import STATIC_CONCERN

    for spec in static.CHECKS:
        if spec.leak:
            want = "normalized" if "normalized" in spec.rule else "causal"
            assert STATIC_CONCERN.get(spec.check_id) == want, spec.check_id


def test_a_helper_module_that_does_not_parse_is_an_error_never_a_silent_pass(tmp_path: Path) -> None:
    from golf_audit.submission.audit import static_view

    script = _helper_folder(tmp_path)
    (tmp_path / "tilt_helper.py").write_text("def broken(:\n    return\n")
    res = {r.check_id: r for r in static_view(script).static}
    assert res["GA-STATIC-HELPER"].status is Status.ERROR
    assert "tilt_helper.py: cannot be parsed" in res["GA-STATIC-HELPER"].summary
