"""The zoo on the demo model: every evaluator gets its expected verdict; JSON matches its schema."""

from __future__ import annotations

import json

import pytest

from golf_audit.causality.engine import AuditOptions
from golf_audit.causality.render import render
from golf_audit.causality.report import CausalityReportJSON, validate
from golf_audit.causality.run import audit_evaluator, audit_stream, audit_zoo
from golf_audit.causality.zoo import AUDIT_STREAM_TOKENS, ZOO
from golf_audit.findings import Status
from golf_audit.output import Format


@pytest.fixture(scope="module")
def demo():
    from reference_model.demo import load_demo

    return load_demo()


@pytest.fixture(scope="module")
def stream(demo):
    return audit_stream(demo.val_tokens)


@pytest.fixture(scope="module")
def quick_zoo(demo, stream):
    """The whole zoo with 8 flips (boundary cases first): cheap enough for the default suite."""
    return audit_zoo(demo.model, demo.luts, stream, AuditOptions(flips=8))


def test_audit_stream_spans_batches_and_chunks(stream):
    assert stream.numel() == AUDIT_STREAM_TOKENS == 665  # 80 windows of 32 (stride 8): 2.5 SLOT batches, 3.5 TTT chunks


def test_every_zoo_member_gets_its_expected_verdict(quick_zoo):
    rows = {s.label: (s.result.status.value, s.result.failed_tests, s.result.summary) for s in quick_zoo.subjects}
    assert all(s.matches_expected for s in quick_zoo.subjects), rows
    assert quick_zoo.verdict is Status.PASS and quick_zoo.exit_code() == 0


def test_zoo_names_the_leak_channel(quick_zoo):
    by = {s.label: s.result for s in quick_zoo.subjects}
    assert "target" in by["slot(scored, window)"].channels
    assert "context" not in by["slot(scored, window)"].channels  # only its own window moves
    assert "context" in by["slot(context, batch)"].channels  # other windows of the batch move
    assert by["ngram_target"].channels == ["target"]
    assert by["slot(scored, window)"].self_prediction.mean > 0.05
    assert by["sliding"].self_prediction.mean == 0.0
    assert by["unnormalized"].failed_tests == ["normalization"]


def test_json_validates_against_schema(quick_zoo):
    data = json.loads(render(quick_zoo, Format.json))
    assert data["schema_version"] == "1.0"
    assert validate(data, CausalityReportJSON) == []
    assert len(data["results"]) == len(ZOO)
    broken = dict(data, verdict="maybe")
    del broken["flips"]
    problems = validate(broken, CausalityReportJSON)
    assert any("verdict" in p for p in problems) and any("flips" in p for p in problems)


def test_table_and_markdown_show_expected_vs_found(quick_zoo):
    table = render(quick_zoo, Format.table)
    assert table.splitlines()[0] == "golf-audit causality: PASS (11/11 evaluators got their expected verdict)"
    assert "slot(context, batch)" in table and "fail (norm)" in table
    md = render(quick_zoo, Format.markdown)
    assert md.startswith("# Causality audit") and "| slot(scored, window) | fail | ✖ fail | ✔ |" in md


def test_a_deviating_verdict_fails_the_zoo(demo, stream):
    from dataclasses import replace

    from golf_audit.causality.zoo import PASS

    lying = replace(ZOO[4], expected=PASS)  # slot(scored, window) claimed causal
    report = audit_zoo(demo.model, demo.luts, stream, AuditOptions(flips=3), members=[ZOO[1], lying])
    assert report.verdict is Status.FAIL and report.exit_code() == 1
    assert "unexpected: slot(scored, window)" in report.summary()


def test_tolerance_and_flip_count_change_evidence_not_verdict(demo, stream):
    runs = [audit_evaluator("slot", {}, demo.model, demo.luts, stream, AuditOptions(flips=f, tolerance=tol))
            for f, tol in ((4, 1e-9), (10, 1e-9), (10, 1e-2))]
    results = [r.subjects[0].result for r in runs]
    assert [r.status for r in results] == [Status.FAIL] * 3
    affected = [r.stream_flip.positions_affected for r in results]
    assert affected[0] < affected[1] and affected[2] < affected[1]


@pytest.mark.slow
def test_full_zoo_default_flips_parallel(demo, stream):
    report = audit_zoo(demo.model, demo.luts, stream, AuditOptions(), workers=2)
    assert all(s.matches_expected for s in report.subjects), render(report, Format.table)
    assert all(s.result.stream_flip.flips == 64 for s in report.subjects)


REUSE_CASES = ["sliding", "slot(context, window)", "slot(scored, batch)", "ttt(score_first)", "two_pass", "ngram_target"]


@pytest.mark.parametrize("label", REUSE_CASES)
def test_reusing_unchanged_batches_is_exact(demo, stream, label):
    """Flip runs inside ``reuse_unchanged_batches`` give bit-identical results to plain runs,
    and do reuse work (each flip is still a full run over the whole stream)."""
    import numpy as np
    import torch

    from golf_audit.causality.zoo import settings_for
    from reference_model.evaluate import get_evaluator, reuse_unchanged_batches

    member = next(m for m in ZOO if m.label == label)
    ev = get_evaluator(member.evaluator, settings_for(member))
    flips = [40, 45, 300, 301, 600]  # first/middle/last batch and chunk
    streams = []
    for f in flips:
        s = stream.clone()
        s[f + 1] = (s[f + 1] + 1) % demo.hp.vocab_size
        streams.append((s, None))
        t = stream[1:].clone()
        t[f] = (t[f] + 7) % demo.hp.vocab_size
        streams.append((stream, t))
    plain = [ev.score(demo.model, s, demo.luts, targets=t, logprob_positions=[f]) for (s, t), f in zip(streams, np.repeat(flips, 2))]
    with reuse_unchanged_batches(demo.model) as memo:
        reused = [ev.score(demo.model, s, demo.luts, targets=t, logprob_positions=[f]) for (s, t), f in zip(streams, np.repeat(flips, 2))]
    assert memo.hits > 0
    for a, b in zip(plain, reused):
        assert np.array_equal(a.nll, b.nll, equal_nan=True) and np.array_equal(a.count, b.count)
        assert a.nll_sum == b.nll_sum and a.bytes == b.bytes
        assert all(np.array_equal(a.logprobs[k], b.logprobs[k]) for k in a.logprobs)


def test_reuse_is_dropped_when_the_model_changes(demo, stream):
    import copy

    import torch

    from reference_model.evaluate import get_evaluator, reuse_unchanged_batches

    model = copy.deepcopy(demo.model)
    ev = get_evaluator("sliding", {"seq_len": "32", "stride": "8"})
    with reuse_unchanged_batches(model) as memo:
        before = ev.score(model, stream, demo.luts)
        with torch.no_grad():
            model.tok_emb.weight.mul_(1.5)  # in place: the parameter's version counter moves
        after = ev.score(model, stream, demo.luts)
        other = ev.score(demo.model, stream, demo.luts)  # another model object: never served from this memo
    assert memo.hits == 0
    assert before.nll_sum != after.nll_sum and other.nll_sum == before.nll_sum


def test_null_control_still_catches_nondeterminism_with_reuse(demo, stream):
    """The baseline pair runs outside the reuse block, so a nondeterministic source is an error."""
    import torch

    from golf_audit.causality.engine import audit_source
    from golf_audit.causality.sources import EvaluatorSource
    from reference_model.evaluate import get_evaluator

    class Noisy(EvaluatorSource):
        def run(self, tokens, targets=None, logprob_positions=()):
            scored = super().run(tokens, targets, logprob_positions)
            scored.nll = scored.nll + float(torch.rand(()))  # differs from run to run
            return scored

    src = Noisy(get_evaluator("sliding", {"seq_len": "32", "stride": "8", "tail": "once"}), demo.model, demo.luts)
    result = audit_source(src, stream, flips=2)
    assert result.status is Status.ERROR and "nondeterministic" in result.summary


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_counts_every_run_up_to_the_planned_total(workers):
    """``on_runs(done, total)`` (the progress bar's feed) reaches total = 2 + 2 x flips per source."""
    from causality_fakes import FakeSource, stream

    from golf_audit.causality.engine import audit_sources, worker_pool

    calls: list[tuple[int, int]] = []
    sources = [FakeSource(), FakeSource("noise")]  # the noisy one stops after its null control
    with worker_pool(workers) as pool:
        results = audit_sources(sources, stream(), AuditOptions(flips=6), executor=pool,
                                on_runs=lambda done, total: calls.append((done, total)))
    assert [r.status for r in results] == [Status.PASS, Status.ERROR]
    assert calls[-1] == ((2 + 2 * 6) + 2,) * 2  # ends full, at the replanned total
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
