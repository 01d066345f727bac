from __future__ import annotations

import json

import pytest
import torch

from reference_model import GPT, Hyperparameters
from reference_model.config import TINY


def test_default_state_dict_matches_seed(shared_dir):
    ref = json.loads((shared_dir / "seed_state_dict.json").read_text())
    sd = GPT(Hyperparameters()).state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == ref["tensors"]
    assert sum(v.numel() for v in sd.values()) == ref["total_params"] == 26_862_694


def test_env_defaults_match_seed(shared_dir):
    ref = json.loads((shared_dir / "seed_state_dict.json").read_text())["env_defaults"]
    hp = Hyperparameters.from_env({})
    for name, default in ref.items():
        assert hasattr(hp, name.lower()), name
        if name == "RUN_ID":
            continue
        value = getattr(hp, name.lower())
        assert str(value) == default or float(value) == float(default.replace("_", "")), name


def test_preset_and_override():
    hp = Hyperparameters.from_env({"PRESET": "tiny", "MODEL_DIM": "32"})
    assert hp.num_layers == int(TINY["NUM_LAYERS"]) and hp.model_dim == 32
    with pytest.raises(ValueError, match="unknown PRESET"):
        Hyperparameters.from_env({"PRESET": "huge"})
    with pytest.raises(ValueError, match="NUM_LAYERS"):
        Hyperparameters.from_env({"NUM_LAYERS": "many"})


def _noisy_tiny(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(Hyperparameters.from_env({"PRESET": "tiny"}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))  # zero-initialised projections would hide leaks
    return model.eval()


def test_forward_is_causal():
    model = _noisy_tiny()
    ids = torch.randint(0, model.hp.vocab_size, (2, 96))
    base = model.forward_logits(ids)
    flipped = ids.clone()
    flipped[:, 40] = (flipped[:, 40] + 1) % model.hp.vocab_size
    after = model.forward_logits(flipped)
    assert torch.equal(base[:, :40], after[:, :40])
    assert (base[:, 40:] - after[:, 40:]).abs().amax() > 0


def test_logits_softcapped_and_loss_matches():
    model = _noisy_tiny()
    ids = torch.randint(0, model.hp.vocab_size, (1, 64))
    logits = model.forward_logits(ids)
    assert logits.abs().max() <= model.hp.logit_softcap
    loss = model(ids[:, :-1], ids[:, 1:])
    ref = torch.nn.functional.cross_entropy(model.forward_logits(ids[:, :-1])[0], ids[0, 1:])
    assert torch.allclose(loss, ref)


def test_bigram_hash_buckets():
    model = _noisy_tiny()
    ids = torch.tensor([[5, 7, 9]])
    b = model.bigram.bucket_ids(ids)
    n = model.hp.bigram_vocab_size
    assert b[0, 0] == n - 1
    assert b[0, 1] == ((36313 * 7) ^ (27191 * 5)) % (n - 1)


def test_seed_dtype_layout_keeps_bf16_tables_only():
    """The seed's CUDA layout: .bfloat16(), then CastedLinear and small/control tensors back to fp32."""
    from reference_model.model import BF16_TABLES, apply_seed_dtype_layout

    torch.manual_seed(0)
    model = apply_seed_dtype_layout(GPT(Hyperparameters.from_env({"PRESET": "tiny"})))
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert {n for n, d in dtypes.items() if d == torch.bfloat16} == set(BF16_TABLES)
    assert all(d == torch.float32 for n, d in dtypes.items() if n not in BF16_TABLES)
    # fp32 weights went through bf16 once, as in the seed's main() (they start bf16-representable).
    w = model.blocks[0].attn.c_q.weight
    assert torch.equal(w, w.bfloat16().float())


def test_seed_dtype_layout_trains_on_cpu():
    """The CUDA precision path runs on CPU too (bf16 tables, fused AdamW on bf16, fp32 rest)."""
    from reference_model.demo import tiny_hp
    from reference_model.model import apply_seed_dtype_layout
    from reference_model.train import train_steps

    torch.manual_seed(0)
    hp = tiny_hp(train_batch_tokens=512, grad_accum_steps=1)
    model = apply_seed_dtype_layout(GPT(hp))
    before = model.tok_emb.weight.detach().clone()
    state = train_steps(model, hp, torch.randint(0, hp.vocab_size, (4096,)), steps=2)
    assert model.tok_emb.weight.dtype == torch.bfloat16 and not torch.equal(before, model.tok_emb.weight)
    assert all(loss == loss for loss in state.losses)


def test_rope_base_is_ntk_scaled_beyond_1024_positions():
    from reference_model.model import rope_inv_freq

    plain = rope_inv_freq(10000.0, 16, 1024)
    assert torch.allclose(plain, 1.0 / 10000.0 ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))
    scaled = rope_inv_freq(10000.0, 16, 2048)
    base = 10000.0 * 2.0 ** (16 / 14)  # 22,081.79
    assert abs(base - 22081.790273476247) < 1e-6
    assert torch.allclose(scaled, 1.0 / base ** (torch.arange(0, 16, 2, dtype=torch.float32) / 16))


def test_rope_rotates_with_the_seeds_sign_on_pairs_i_and_i_plus_half():
    from reference_model.model import Rotary

    rot = Rotary(head_dim=8, dims=4, base=10000.0)
    x = torch.zeros(1, 2, 1, 8)
    x[0, 1, 0, 0] = 1.0  # x1 of pair (0, 2) at position 1
    y = rot(x)
    angle = torch.tensor(1.0)  # position 1, inv_freq 1 for the first pair
    assert torch.allclose(y[0, 1, 0, 0], angle.cos()) and torch.allclose(y[0, 1, 0, 2], -angle.sin())
    assert torch.equal(y[0, 1, 0, 4:], x[0, 1, 0, 4:])  # dims past ROPE_DIMS untouched
    assert Rotary(head_dim=8, dims=0, base=10000.0).dims == 8  # ROPE_DIMS=0: the whole head, as the seed
