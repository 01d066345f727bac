"""The submission audit on the real material in ../shared: merged records and labelled PRs.

Default suite (fast): the static checks over every real script (no false fail on a merged
record; the labelled PRs that static evidence decides), the scoring-function discovery, and one
real record audited end to end. Slow (``-m slow``): the sweep of ``benchmarks/bench_scripts.py``
over ``records`` and ``prs``, asserting every verdict: zero fails on merged records, at most the
known conclusive-impossible errors, and every ``labels.json`` label on the causal, normalized,
coverage and doc concerns reproduced.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from golf_audit.findings import Status
from golf_audit.pycompat import downgrade_source
from golf_audit.source import load_source
from golf_audit.submission import analyze, static
from golf_audit.submission.sweep import discover, expected_for, load_labels, sweep

CONCERNS = ("causal", "normalized", "coverage", "doc")
# Merged-record scripts that cannot get a conclusive verdict, with the reason the audit must give.
NOT_CONCLUSIVE = {
    "track_non_record_16mb/2026-03-19_SwiGLU_WarmdownFix_QuarterBatch_1x5090/train_gpt.py": "empty",
    # a diffusion LM with its sizes in module constants (MODEL_DIM = 512, SEQ_LEN = 2048): full size on CPU
    "track_non_record_16mb/2026-03-29_LLaDA_MDLM_Diffusion/train_mdlm.py": "module constants",
}


# Coverage gaps that are in the merged code (not artefacts of the audit): the sliding loop's second
# window starts at eval_seq_len - stride, so it scores targets from 2*(eval_seq_len - stride) + 1 on
# and the targets eval_seq_len + 1 .. 2*(eval_seq_len - stride) are never scored (1,920 of them at
# 2048/64). Read from the script: window_starts (lines 304-309) and score_start (335-341).
TRUE_COVERAGE_GAPS = {"track_10min_16mb/2026-03-19_Seq2048_FP16Emb_TunedLR/train_gpt.py"}


def _static(path: Path) -> dict[str, object]:
    """The static findings as causality and report both see them (the submitted configuration)."""
    from golf_audit.submission.audit import static_view

    return {r.check_id: r for r in static_view(path).static}


def test_no_static_leak_finding_fails_a_merged_record(shared_dir: Path) -> None:
    fails = []
    for path in discover(shared_dir / "records"):
        if path.stat().st_size == 0:
            continue
        fails += [f"{path.parent.name}/{path.name}: {r.check_id} {r.summary}" for r in _static(path).values()
                  if r.status is Status.FAIL]
    assert not fails, fails


# PR label -> static check that must decide it (the evidence the label names)
STATIC_LABELS = {
    "pr152": ("causal", "GA-STATIC-003"), "pr1972": ("causal", "GA-STATIC-003"), "pr870": ("normalized", "GA-STATIC-004"),
    "pr779": ("normalized", "GA-STATIC-004"), "pr1026": ("normalized", "GA-STATIC-004"),
    "pr1991": ("normalized", "GA-STATIC-008"), "pr1959": ("normalized", "GA-STATIC-008"),
    "pr2041": ("normalized", "GA-STATIC-009"), "pr1209": ("causal", "GA-STATIC-002"), "pr1217": ("causal", "GA-STATIC-002"), "pr728": ("causal", "GA-STATIC-005"),
}


@pytest.mark.parametrize("pr", sorted(STATIC_LABELS))
def test_labelled_prs_decided_by_static_evidence(shared_dir: Path, pr: str) -> None:
    labels = load_labels(shared_dir / "prs")
    concern, check = STATIC_LABELS[pr]
    folder = next(f for f in labels if f.startswith(pr + "/"))
    assert labels[folder][concern] == "fail"
    (script,) = [p for p in discover(shared_dir / "prs" / folder)]
    result = _static(script)[check]
    assert result.status is Status.FAIL, result.summary
    assert result.evidence[0].line, "a finding names its line"
    named = {Path(c["file"]).name for c in _code_lines(shared_dir / "prs", pr)}
    assert any(e.file in named for e in result.evidence), (result.evidence[0].file, named)


def test_word_start_gate_of_pr2041_is_found_in_its_helper_module(shared_dir: Path) -> None:
    """The label names online_ngram_tilt.py 176-210: the hint exists only when the realized token starts a word."""
    folder = next(f for f in load_labels(shared_dir / "prs") if f.startswith("pr2041/"))
    (script,) = discover(shared_dir / "prs" / folder)
    result = _static(script)["GA-STATIC-009"]
    spans = [c["lines"] for c in _code_lines(shared_dir / "prs", "pr2041") if c["file"].endswith("online_ngram_tilt.py")]
    assert result.status is Status.FAIL
    assert any(e.file == "online_ngram_tilt.py" and int(spans[0].split("-")[0]) <= e.line <= int(spans[0].split("-")[1])
               for e in result.evidence), [(e.file, e.line) for e in result.evidence]


def _code_lines(prs: Path, pr: str) -> list[dict]:
    import json

    entry = next(e for e in json.loads((prs / "labels.json").read_text())["prs"] if f"pr{e['pr']}" == pr)
    return entry.get("code_lines", [])


def test_adaptation_thrown_away_before_scoring_is_shown_not_flagged(shared_dir: Path) -> None:
    path = shared_dir / "prs" / "pr1530" / "records" / "track_10min_16mb" / "2026-04-10_VarLenAttn" / "train_gpt.py"
    assert _static(path)["GA-STATIC-003"].status is Status.PASS
    notes = static.discarded_adaptations(ast.parse(load_source(path).effective))
    assert any("del wl, wo" in message for _, message in notes)


def test_scoring_functions_of_every_real_script(shared_dir: Path) -> None:
    missing = []
    for path in discover(shared_dir / "records") + discover(shared_dir / "prs"):
        if path.stat().st_size == 0:
            continue
        loaded = load_source(path)
        tree = ast.parse(loaded.effective if loaded.min_python is None else downgrade_source(loaded.effective))
        names = [f.name for f in analyze.scoring_functions(tree)]
        if not names and "pr2009" not in str(path):  # pr2009 scores inline in main: static GA-COVER decides it
            missing.append(str(path))
        assert "main" not in names and "train_and_eval" not in names and "timed_eval" not in names
    assert not missing, missing


def test_one_real_record_end_to_end(shared_dir: Path) -> None:
    from golf_audit.submission.audit import audit_script

    folder = shared_dir / "records" / "track_10min_16mb" / "2026-03-17_NaiveBaseline"
    audit = audit_script(folder, flips=8)
    assert audit.status is Status.PASS, audit.summary
    assert audit.concerns["causal"].status is Status.PASS and audit.concerns["coverage"].status is Status.PASS
    assert audit.entry["error"] is None and all(v.calls for v in audit.functions)


# ----------------------------------------------------------------------------- the sweeps (slow)


@pytest.mark.slow
def test_sweep_over_the_merged_records(shared_dir: Path, tmp_path: Path) -> None:
    rows = sweep(shared_dir / "records", jobs=1)  # the command's default flips: what a reviewer runs
    (tmp_path / "records.json").write_text(json.dumps([r.__dict__ for r in rows], default=str))
    fails = [f"{r.script}: {r.summary}" for r in rows if r.status == "fail"]
    assert not fails, fails
    errors = {r.script: r.summary for r in rows if r.status == "error"}
    assert set(errors) <= set(NOT_CONCLUSIVE), errors
    for script, reason in NOT_CONCLUSIVE.items():  # each with its specific reason
        assert reason in errors.get(script, reason), (script, errors.get(script))
    assert (len(rows) - len(errors)) / len(rows) >= 0.95
    for r in rows:
        if r.script in TRUE_COVERAGE_GAPS:
            assert r.concerns.get("coverage") == "fail", (r.script, r.concerns)
            continue
        assert r.concerns.get("coverage") != "fail" and r.concerns.get("doc") != "fail", (r.script, r.concerns)


@pytest.mark.slow
def test_sweep_over_the_labelled_prs_reproduces_every_label(shared_dir: Path) -> None:
    root = shared_dir / "prs"
    labels = load_labels(root)
    rows = sweep(root, jobs=1)
    wrong = []
    for r in rows:
        for concern, want in expected_for(r, labels).items():
            if concern in CONCERNS and r.concerns.get(concern) != want:
                wrong.append(f"{r.script}: {concern} expected {want}, got {r.concerns.get(concern)} "
                             f"({r.concern_summaries.get(concern, '')[:200]})")
    assert not wrong, wrong
