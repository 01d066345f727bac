"""The evaluator family on the trained TINY demo model: numbers, counting, determinism, leaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_model.evaluate import REGISTRY, UnknownEvaluator, enumerate_windows, get_evaluator
from reference_model.evaluate.slot import AdamW, cosine_lr

STREAM = 641  # tokens: 640 targets, 40 windows at the TINY geometry (seq_len 128, stride 16)

# Small settings so that every adaptive evaluator actually adapts on a short stream.
ZOO: list[tuple[str, dict[str, str]]] = [
    ("standard", {}),
    ("sliding", {}),
    ("slot", {}),
    ("slot", {"mask": "context"}),
    ("slot", {"delta": "batch"}),
    ("slot", {"mask": "context", "delta": "batch", "steps": "8", "lr": "0.005", "lr_min": "0.005",
              "betas": "0.3,0.9", "logit_bias": "false"}),
    ("ttt", {"chunk": "160", "epochs": "1"}),
    ("ttt", {"chunk": "160", "epochs": "1", "order": "train_first"}),
    ("ngram_target", {}),
    ("two_pass", {}),
    ("unnormalized", {}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in s.items())}" if s else n for n, s in ZOO]


@pytest.fixture(scope="module")
def demo():
    from reference_model.demo import load_demo

    return load_demo()


@pytest.fixture(scope="module")
def stream(demo) -> torch.Tensor:
    return demo.val_tokens[:STREAM].clone()


def test_registry_lists_the_family_and_suggests_names():
    assert {"standard", "sliding", "slot", "ttt", "ngram_target", "two_pass", "unnormalized"} <= set(REGISTRY)
    with pytest.raises(UnknownEvaluator, match="did you mean 'slot'"):
        get_evaluator("slott")
    with pytest.raises(ValueError, match="did you mean 'mask'"):
        get_evaluator("slot", {"mask_": "scored"})
    with pytest.raises(ValueError, match="must be one of scored, context"):
        get_evaluator("slot", {"mask": "future"})


def test_slot_defaults_are_the_seed_prs():
    s = get_evaluator("slot").settings
    assert (s.mask, s.delta, s.logit_bias, s.steps, s.lr, s.lr_min) == ("scored", "window", True, 16, 0.008, 0.0008)
    assert (tuple(s.betas), s.eps, s.wd, s.batch) == ((0.9, 0.999), 1e-5, 1e-8, 32)
    assert s.tail == "records"  # the seed's window enumeration (tail windows re-score)
    # The seed's schedule divides by `steps`: step 15 of 16 is still above lr_min.
    assert cosine_lr(0, 16, 0.008, 0.0008) == 0.008
    assert math.isclose(cosine_lr(15, 16, 0.008, 0.0008), 0.0008 + 0.5 * 0.0072 * (1 + math.cos(math.pi * 15 / 16)))
    assert cosine_lr(15, 16, 0.008, 0.0008) > 0.0008


@pytest.mark.parametrize("name,settings", ZOO, ids=IDS)
def test_sensible_counted_once_and_deterministic(demo, stream, name, settings):
    ev = get_evaluator(name, {"tail": "once", **settings})
    a = ev.score(demo.model, stream, demo.luts)
    b = ev.score(demo.model, stream, demo.luts)
    n = stream.numel() - 1
    assert a.tokens == n and (a.count == 1).all(), "tail=once must score every target exactly once"
    assert a.duplicate_scorings == 0
    assert 0.3 < a.val_bpb < 4.0 and math.isfinite(a.val_loss), (name, a.val_bpb)
    assert np.array_equal(a.nll, b.nll), "two runs must give bit-identical NLLs"
    assert a.nll_sum == b.nll_sum


@pytest.mark.parametrize("name", ["sliding", "slot", "unnormalized"])
def test_records_tail_reports_duplicates(demo, stream, name):
    scored = get_evaluator(name, {"tail": "records"}).score(demo.model, stream, demo.luts)
    windows = enumerate_windows(stream.numel() - 1, demo.hp.eval_seq_len, demo.hp.eval_stride, "records")
    expected = sum(w.end - w.score_from for w in windows)
    assert scored.tokens == expected and scored.duplicate_scorings == expected - (stream.numel() - 1) > 0


@pytest.mark.parametrize("stride", ["16", "48"])
def test_exactly_once_number_of_a_records_run_equals_a_once_run(demo, stream, stride):
    geometry = {"seq_len": "128", "stride": stride}
    records = get_evaluator("sliding", geometry).score(demo.model, stream, demo.luts)
    once = get_evaluator("sliding", {**geometry, "tail": "once"}).score(demo.model, stream, demo.luts)
    assert records.duplicate_scorings > 0 and "once" not in once.info
    assert records.info["once"]["tokens"] == once.tokens == stream.numel() - 1
    assert records.info["once"]["bytes"] == once.bytes
    assert records.info["once"]["val_bpb"] == pytest.approx(once.val_bpb, abs=1e-12)
    slot = get_evaluator("slot", geometry).score(demo.model, stream, demo.luts)  # first scorings of the same run
    assert slot.info["once"]["tokens"] == stream.numel() - 1 and slot.info["once"]["val_bpb"] != slot.val_bpb


def test_records_tail_reproduces_the_records_loop(demo, stream):
    """An independent transcription of the records' sliding loop (full-window logits)."""
    model, seq_len, stride = demo.model, demo.hp.eval_seq_len, demo.hp.eval_stride
    x_all, y_all = stream[:-1], stream[1:]
    total = 0
    nll_sum = 0.0
    n_bytes = 0
    with torch.no_grad():
        for ws in range(0, x_all.numel(), stride):
            end = min(ws + seq_len, x_all.numel())
            wlen = end - ws
            s = 0 if ws == 0 else max(wlen - stride, 0)
            logits = model.forward_logits(x_all[None, ws:end])[0].float()
            nll = torch.nn.functional.cross_entropy(logits[s:wlen], y_all[ws + s : end], reduction="none")
            nll_sum += float(nll.double().sum())
            total += wlen - s
            n_bytes += int(demo.luts.target_bytes(x_all[ws + s : end], y_all[ws + s : end]).sum())
    scored = get_evaluator("sliding", {"tail": "records"}).score(model, stream, demo.luts)
    assert (scored.tokens, scored.bytes) == (total, n_bytes)
    assert scored.nll_sum == pytest.approx(nll_sum, rel=1e-6)


def test_standard_uses_non_overlapping_windows(demo, stream):
    scored = get_evaluator("standard").score(demo.model, stream, demo.luts)
    n = stream.numel() - 1
    assert scored.info["windows"] == math.ceil(n / demo.hp.eval_seq_len)
    sliding = get_evaluator("sliding", {"tail": "once"}).score(demo.model, stream, demo.luts)
    assert scored.val_bpb > sliding.val_bpb, "less context per target must cost bits"


def test_slot_scored_mask_beats_context_mask(demo, stream):
    """The seed PR's headline effect: fitting on the scored positions drops bpb far more."""
    scored = get_evaluator("slot").score(demo.model, stream, demo.luts).val_bpb
    context = get_evaluator("slot", {"mask": "context"}).score(demo.model, stream, demo.luts).val_bpb
    sliding = get_evaluator("sliding").score(demo.model, stream, demo.luts).val_bpb
    assert scored < context - 0.05 and scored < sliding - 0.05, (scored, context, sliding)


@pytest.mark.parametrize("mask", ["scored", "context"])
def test_slot_zero_steps_is_sliding(demo, stream, mask):
    slot = get_evaluator("slot", {"steps": "0", "mask": mask}).score(demo.model, stream, demo.luts)
    sliding = get_evaluator("sliding").score(demo.model, stream, demo.luts)
    np.testing.assert_allclose(slot.nll, sliding.nll, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", [{}, {"mask": "context"}, {"delta": "batch"}, {"logit_bias": "false", "steps": "4"},
                                     {"tail": "records", "batch": "7"}])
def test_slot_fast_matches_full_window_reference(demo, variant):
    tokens = demo.val_tokens[:321]
    fast = get_evaluator("slot", variant).score(demo.model, tokens, demo.luts)
    ref = get_evaluator("slot", {**variant, "impl": "reference"}).score(demo.model, tokens, demo.luts)
    assert abs(fast.val_bpb - ref.val_bpb) < 1e-6
    np.testing.assert_allclose(fast.nll, ref.nll, rtol=1e-5, atol=1e-5)


def test_plain_adamw_matches_torch():
    torch.manual_seed(0)
    p1 = [torch.randn(3, 5), torch.randn(4)]
    p2 = [t.clone().requires_grad_(True) for t in p1]
    mine = AdamW(p1, betas=(0.3, 0.9), eps=1e-5, wd=0.1)
    ref = torch.optim.AdamW(p2, lr=0.01, betas=(0.3, 0.9), eps=1e-5, weight_decay=0.1)
    for step in range(5):
        grads = [torch.randn_like(t) for t in p1]
        mine.step(grads, 0.01)
        for p, g in zip(p2, grads):
            p.grad = g
        ref.step()
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,settings", ZOO, ids=IDS)
def test_logprob_rows_are_the_scoring_distribution(demo, stream, name, settings):
    positions = [0, 17, 300, stream.numel() - 2]
    scored = get_evaluator(name, settings).score(demo.model, stream, demo.luts, logprob_positions=positions)
    vocab = demo.hp.vocab_size
    for p in positions:
        row = scored.logprobs[p]
        assert row.shape == (vocab,)
        assert -row[int(stream[p + 1])] == pytest.approx(scored.nll[p], abs=1e-5), "row must give the scored NLL"
        total = float(np.exp(row).sum())
        if name == "unnormalized":
            assert total == pytest.approx(1 + vocab * 0.01, rel=1e-6), "the boost must stay visible"
        else:
            assert total == pytest.approx(1.0, abs=1e-5)


# ----------------------------------------------------------------------------- causality smoke
# The full audit lives in golf_audit.causality; these pin the known-good / known-bad behaviour
# of the evaluators themselves with one flip each.


def _flip(stream: torch.Tensor, t: int, vocab: int) -> torch.Tensor:
    out = stream.clone()
    out[t] = (out[t] + 7) % vocab
    return out


CAUSAL = [("sliding", {}), ("slot", {"mask": "context"}), ("ttt", {"chunk": "160", "epochs": "1"})]
LEAKY = [("slot", {}), ("slot", {"delta": "batch"}), ("slot", {"mask": "context", "delta": "batch"}),
         ("ttt", {"chunk": "160", "epochs": "1", "order": "train_first"}), ("two_pass", {})]


@pytest.mark.parametrize("name,settings", CAUSAL)
def test_stream_flip_leaves_the_past_untouched(demo, stream, name, settings):
    t = 400
    ev = get_evaluator(name, settings)
    base = ev.score(demo.model, stream, demo.luts)
    flipped = ev.score(demo.model, _flip(stream, t, demo.hp.vocab_size), demo.luts)
    assert np.array_equal(base.nll[: t - 1], flipped.nll[: t - 1])


@pytest.mark.parametrize("name,settings", LEAKY)
def test_stream_flip_reaches_the_past_of_leaky_evaluators(demo, stream, name, settings):
    t = 400
    ev = get_evaluator(name, settings)
    base = ev.score(demo.model, stream, demo.luts)
    flipped = ev.score(demo.model, _flip(stream, t, demo.hp.vocab_size), demo.luts)
    assert np.abs(base.nll[: t - 1] - flipped.nll[: t - 1]).max() > 1e-6


def test_ngram_target_distribution_depends_on_its_own_target(demo, stream):
    t = 300
    ev = get_evaluator("ngram_target")
    targets = stream[1:].clone()
    base = ev.score(demo.model, stream, demo.luts, targets=targets, logprob_positions=[t])
    targets[t] = (targets[t] + 7) % demo.hp.vocab_size
    flipped = ev.score(demo.model, stream, demo.luts, targets=targets, logprob_positions=[t])
    assert np.array_equal(base.nll[:t], flipped.nll[:t])
    assert np.abs(base.logprobs[t] - flipped.logprobs[t]).max() > 1e-3
    sliding = get_evaluator("sliding")
    s_base = sliding.score(demo.model, stream, demo.luts, logprob_positions=[t])
    s_flip = sliding.score(demo.model, stream, demo.luts, targets=targets, logprob_positions=[t])
    assert np.array_equal(s_base.logprobs[t], s_flip.logprobs[t])


def test_adaptive_evaluators_leave_the_model_alone(demo, stream):
    before = {k: v.clone() for k, v in demo.model.state_dict().items()}
    for name, settings in [("ttt", {"chunk": "160", "epochs": "1"}), ("two_pass", {}), ("slot", {})]:
        get_evaluator(name, settings).score(demo.model, stream, demo.luts)
    after = demo.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
