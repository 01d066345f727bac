"""The flip-test engine against fake sources of known causality (fast, no model)."""

from __future__ import annotations

import numpy as np

from golf_audit.causality.engine import audit_source, choose_flips, wrong_tokens
from golf_audit.findings import Status

from causality_fakes import FakeSource, RowlessSource, stream


def test_causal_source_passes_with_evidence():
    res = audit_source(FakeSource(), stream(), flips=32, seed=1)
    assert res.status is Status.PASS, res.summary
    assert res.failed_tests == [] and res.channels == []
    assert res.stream_flip.flips == 32 and res.target_flip.flips == 32
    assert res.stream_flip.positions_affected == 0 and res.stream_flip.max_abs_delta == 0.0
    assert res.distribution.checked == 64 and res.distribution.changed == 0
    assert res.normalization.rows_off == 0
    assert abs(res.self_prediction.mean) == 0.0
    assert res.null_max_abs_delta == 0.0


def test_target_leak_fails_on_target_channel_only():
    res = audit_source(FakeSource("target"), stream(), flips=16)
    assert res.status is Status.FAIL
    assert "distribution" in res.failed_tests
    assert "stream-flip" not in res.failed_tests and "target-flip" not in res.failed_tests
    assert res.channels == ["target"]
    assert res.self_prediction.mean > 0.5  # seeing the true target helps predict it


def test_context_leak_fails_both_flips():
    res = audit_source(FakeSource("context"), stream(), flips=16)
    assert res.status is Status.FAIL
    assert {"stream-flip", "target-flip"} <= set(res.failed_tests)
    assert "context" in res.channels
    ex = res.stream_flip.example
    assert ex is not None and ex.position < ex.flip and ex.delta != 0.0


def test_nondeterminism_is_error_not_fail():
    res = audit_source(FakeSource("noise"), stream(), flips=8)
    assert res.status is Status.ERROR
    assert "nondeterministic" in res.summary
    assert res.null_max_abs_delta > 0


def test_unnormalized_rows_fail_normalization_only():
    res = audit_source(FakeSource("mass"), stream(), flips=8)
    assert res.status is Status.FAIL and res.failed_tests == ["normalization"]
    assert abs(res.normalization.worst_mass - 2.0) < 1e-9


def test_rows_are_checked_to_be_what_was_scored():
    """Known good: the bigram's score is its row's -log p(target) at every checked row. Known bad: a
    tilt after the softmax (the score of a repeated token gets 0.5 nats off) leaves rows that sum
    to 1 but are not the scored distribution: still causal, never "rows sum to 1"."""
    good = audit_source(FakeSource(), stream(), flips=8)
    assert good.normalization.shown and good.normalization.rows_unscored == 0
    assert good.normalization.rows_checked > 8, "the flips' rows and an even sample of others"
    assert good.summary.endswith("rows sum to 1")
    tilted = audit_source(FakeSource("tilt"), stream(), flips=8)
    assert tilted.status is Status.PASS and tilted.failed_tests == [], tilted.summary
    norm = tilted.normalization
    assert not norm.shown and 0 < norm.rows_unscored < norm.rows_checked and norm.rows_off == 0
    t, score, own = norm.unscored_example
    assert abs((own - score) - 0.5) < 1e-9
    assert "rows sum to 1" not in tilted.summary.replace("the rows sum to 1 but are not what was scored", "")
    assert "not what was scored" in tilted.summary


def test_rowless_source_skips_row_tests_but_still_runs_flips():
    res = audit_source(RowlessSource(), stream(), flips=8)
    assert res.status is Status.PASS
    assert res.distribution is None and res.normalization is None and res.self_prediction is None


def test_crashing_source_is_error():
    class Broken(FakeSource):
        def run(self, *a, **k):
            raise RuntimeError("boom")

    res = audit_source(Broken(), stream(), flips=4)
    assert res.status is Status.ERROR and "boom" in res.summary


def test_flip_choice_includes_boundaries_and_is_seeded():
    scored = np.ones(100, dtype=bool)
    scored[:3] = False
    flips = choose_flips(scored, 10, seed=5, boundaries=[50, 1])
    assert len(flips) == 10 and {3, 50, 99} <= set(flips) and 1 not in flips
    assert flips == choose_flips(scored, 10, seed=5, boundaries=[50, 1])
    assert flips != choose_flips(scored, 10, seed=6, boundaries=[50, 1])
    assert choose_flips(scored, 1000, 0) == list(range(3, 100))


def test_wrong_tokens_differ_from_truth_and_cover_vocab():
    truth = [3] * 2000
    wrong = wrong_tokens(truth, 16, seed=0)
    assert 3 not in wrong and set(wrong) == set(range(16)) - {3}


def test_tolerance_and_flip_count_change_evidence_not_verdict():
    a = audit_source(FakeSource("context"), stream(), flips=8, tolerance=1e-9)
    b = audit_source(FakeSource("context"), stream(), flips=24, tolerance=1e-6)
    assert a.status is b.status is Status.FAIL
    assert a.stream_flip.flips != b.stream_flip.flips
    assert a.stream_flip.positions_affected != b.stream_flip.positions_affected


def test_parallel_workers_give_the_same_result():
    serial = audit_source(FakeSource("context"), stream(), flips=12)
    pooled = audit_source(FakeSource("context"), stream(), flips=12, workers=2)
    assert pooled.flip_positions == serial.flip_positions
    assert pooled.stream_flip.positions_affected == serial.stream_flip.positions_affected
    assert pooled.stream_flip.max_abs_delta == serial.stream_flip.max_abs_delta


def test_row_tolerance_separates_float32_rounding_from_a_target_leak() -> None:
    """A submission's rows move by float32 rounding with the batch: below row_tolerance that is not a leak."""
    from golf_audit.submission.audit import ROW_FP32_TOLERANCE, row_tolerance

    tokens = stream()
    exact = audit_source(FakeSource("ulp"), tokens, flips=16, tolerance=1e-9)
    assert exact.status is Status.FAIL and exact.failed_tests == ["distribution"]
    assert 0 < exact.distribution.max_abs_delta < ROW_FP32_TOLERANCE
    floor = audit_source(FakeSource("ulp"), tokens, flips=16, tolerance=1e-9, row_tolerance=row_tolerance(1e-9))
    assert floor.status is Status.PASS, floor.summary
    leak = audit_source(FakeSource("target"), tokens, flips=16, tolerance=1e-9, row_tolerance=row_tolerance(1e-9))
    assert leak.status is Status.FAIL and "distribution" in leak.failed_tests


class DocumentSource(FakeSource):
    """Causal within documents, but every score moves with the stream's number of documents
    (BOS = id 1): the way a batched per-document TTT's random LoRA init moves with its batches.

    Removing a BOS would move earlier scores; a source whose ``first_flip_token`` is above the
    control ids must never get such a flip (it merges two documents, which no token flip does).
    """

    first_flip_token = 2

    def run(self, tokens, targets=None, logprob_positions=()):
        scored = super().run(tokens, targets, logprob_positions)
        scored.nll = scored.nll + 0.1 * int((tokens == 1).sum())
        return scored


def test_a_flip_never_lands_on_a_control_token_of_a_source_that_keeps_them() -> None:
    tokens = stream(97, seed=3).clamp_min(2)
    tokens[[0, 20, 41, 42, 60, 88]] = 1  # BOS-led documents, one empty
    res = audit_source(DocumentSource(), tokens, flips=96, seed=0)
    assert res.status is Status.PASS, res.summary
    assert all(int(tokens[f + 1]) >= 2 for f in res.flip_positions)
    assert len(res.flip_positions) == 96 - 5  # every target but the five that are BOS
    unguarded = DocumentSource()
    unguarded.first_flip_token = 0  # flips may then remove a BOS: the score moves, a (false) leak
    assert audit_source(unguarded, tokens, flips=96, seed=0).status is Status.FAIL


def test_rows_that_are_not_the_score_leave_the_normalized_concern_to_the_static_checks():
    """A submission whose scores are tilted after the softmax: its normalized concern is decided
    statically (with the reason), never "dynamic test passed"; GA-DYN's normalization row is
    not-run with the reason, never pass."""
    from types import SimpleNamespace

    from golf_audit.checks.collect import dynamic_outcome
    from golf_audit.submission.audit import FunctionVerdict, _concerns

    def verdict(name, leak):
        res = audit_source(FakeSource(leak), stream(), flips=8)
        return FunctionVerdict(name, 10, res.status, res.summary, causality=res, reported=True)

    tilted = _concerns("train_gpt.py", [verdict("eval_val_tilt", "tilt")], [], [])["normalized"]
    assert tilted.status is Status.PASS and tilted.decided_by == "static"
    assert "not what was scored" in tilted.summary and "eval_val_tilt" in tilted.summary
    both = _concerns("train_gpt.py", [verdict("eval_val", None), verdict("eval_val_tilt", "tilt")], [], [])
    assert both["normalized"].decided_by == "dynamic+static" and "1 dynamic test(s) passed" in both["normalized"].summary
    assert "eval_val_tilt" in both["normalized"].summary
    plain = _concerns("train_gpt.py", [verdict("eval_val", None)], [], [])["normalized"]
    assert plain.summary == "1 dynamic test(s) passed"
    pipeline = FunctionVerdict("pipeline (whole entry point)", 0, Status.PASS, "causal", kind="pipeline")
    with_pipeline = _concerns("train_gpt.py", [verdict("eval_val", None), pipeline], [], [])["normalized"]
    assert with_pipeline.summary == "2 dynamic test(s) passed", "a pipeline rerun has no rows of its own to show"
    audit = SimpleNamespace(path="train_gpt.py", functions=[verdict("eval_val_tilt", "tilt")], decided_by="dynamic",
                            seconds=1.0)
    out = dynamic_outcome(audit, "normalization")
    assert out.status is Status.NOT_RUN and "not what was scored" in out.evidence[0].message
    audit.functions = [verdict("eval_val", None)]
    assert dynamic_outcome(audit, "normalization").status is Status.PASS
