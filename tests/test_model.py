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
