"""The demo setup others build on: it trains, learns, and loads from its cache."""

from __future__ import annotations

import math
import time

import pytest
import torch

from reference_model.data import BOS_ID
from reference_model.demo import DEMO_DEVIATIONS, load_demo, tiny_hp
from reference_model.model import GPT


def _standard_bpb(model, demo) -> float:
    v, T = demo.val_tokens, demo.hp.eval_seq_len
    n = (v.numel() - 1) // T
    x, y = v[: n * T].view(n, T), v[1 : n * T + 1].view(n, T)
    with torch.no_grad():
        logp = torch.log_softmax(model.forward_logits(x).double(), -1)
    nll = -logp.gather(-1, y[..., None]).sum().item()
    return nll / math.log(2) / demo.luts.target_bytes(x.reshape(-1), y.reshape(-1)).sum().item()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo_cache")


@pytest.fixture(scope="module")
def demo(cache_dir):
    return load_demo(cache_dir=cache_dir)


def test_demo_shapes_and_modes(demo):
    assert not demo.model.training
    assert demo.hp == tiny_hp(seed=0, **DEMO_DEVIATIONS)
    assert demo.hp.ema_warmup == 1 and demo.hp.grad_accum_steps == 1  # the two named deviations, nothing else
    assert demo.val_tokens.dtype == torch.int64 and demo.val_tokens[0] == BOS_ID
    assert (demo.val_tokens.numel() - 1) % demo.hp.eval_seq_len == 0
    assert demo.luts.vocab_size == demo.hp.vocab_size == demo.tokenizer.get_piece_size()
    assert all(p.dtype == torch.float32 for p in demo.model.parameters())


def test_demo_model_learned(demo):
    torch.manual_seed(0)
    init = _standard_bpb(GPT(demo.hp).eval(), demo)
    trained = _standard_bpb(demo.model, demo)
    assert trained < init - 1.0, (init, trained)


def test_second_load_comes_from_cache(demo, cache_dir):
    t0 = time.perf_counter()
    again = load_demo(cache_dir=cache_dir)
    assert time.perf_counter() - t0 < 5.0  # generous bound: about 0.1 s on an idle core
    for k, v in demo.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k


def test_damaged_cache_is_rebuilt(tmp_path):
    load_demo(cache_dir=tmp_path, steps=2)  # a 2-step entry keeps this test cheap
    entry = next(tmp_path.glob("demo_model_*.pt"))
    entry.write_bytes(b"not a checkpoint")
    again = load_demo(cache_dir=tmp_path, steps=2)
    assert not again.model.training
    assert torch.load(entry, weights_only=True).keys() == again.model.state_dict().keys()


def test_cache_key_follows_the_model_and_training_source(monkeypatch):
    """A change to the code that builds or trains the model must never reuse a cached model."""
    import reference_model.demo as demo_mod

    hp = tiny_hp(seed=0, **DEMO_DEVIATIONS)
    assert {"model.py", "optim.py", "train.py", "config.py"} <= set(demo_mod.RECIPE_SOURCES)
    before = demo_mod._cache_key(hp, 120, 0, b"tok")
    assert before == demo_mod._cache_key(hp, 120, 0, b"tok")
    monkeypatch.setattr(demo_mod, "recipe_fingerprint", lambda: "edited-source")
    assert demo_mod._cache_key(hp, 120, 0, b"tok") != before
