"""Byte LUTs and the exact bpb (DOMAIN.md §2)."""

from __future__ import annotations

import math

import pytest
import torch

from reference_model.data import default_tokenizer, encode_documents
from reference_model.demo import tiny_hp
from reference_model.evaluate import get_evaluator
from reference_model.metric import ByteLUTs, bpb_from_sums, build_luts
from reference_model.model import GPT


def test_sp1024_luts_match_domain_facts(shared_dir):
    path = shared_dir / "data" / "fineweb_1024_bpe.model"
    if not path.is_file():
        pytest.skip("sp1024 model absent")
    luts = build_luts(path)
    assert luts.vocab_size == 1024
    assert luts.base_bytes[940] == 0 and bool(luts.has_leading_space[940])  # piece 940 is "▁"
    assert int((~luts.is_boundary).sum()) == 1020
    assert luts.is_boundary[:4].all() and (luts.base_bytes[:4] == 0).all()
    # "▁" after a normal token is one byte (the space); after BOS it is zero.
    prev = torch.tensor([1, 500])
    assert luts.target_bytes(prev, torch.tensor([940, 940])).tolist() == [0, 1]


def test_padded_vocab_ids_are_zero_byte_boundaries(tmp_path):
    sp = default_tokenizer(512, cache_dir=tmp_path)
    luts = build_luts(sp, vocab_size=520)
    assert luts.vocab_size == 520 and luts.is_boundary[512:].all() and (luts.base_bytes[512:] == 0).all()


def test_bytes_of_a_document_equal_its_utf8_length(tmp_path):
    """BOS + tokens of a text with no unknown characters: the target bytes sum to len(text.utf8)."""
    sp = default_tokenizer(512, cache_dir=tmp_path)
    text = "The for statement is used to iterate over the elements of a sequence."
    ids = encode_documents(sp, [text])
    luts = build_luts(sp)
    assert int(luts.target_bytes(ids[:-1], ids[1:]).sum()) == len(text.encode("utf-8"))


def test_hand_computed_bpb():
    # vocab: 0 <bos> (boundary), 1 "▁a" (1 byte + space), 2 "bc" (2 bytes)
    luts = ByteLUTs(torch.tensor([0, 1, 2]), torch.tensor([False, True, False]), torch.tensor([True, False, False]))
    stream = torch.tensor([0, 1, 2, 1])
    # targets: "▁a" after BOS -> 1 byte; "bc" -> 2; "▁a" after "bc" -> 1 + 1 space = 2  => 5 bytes
    assert luts.target_bytes(stream[:-1], stream[1:]).tolist() == [1, 2, 2]
    nll = 3 * math.log(3)  # a uniform model over 3 ids
    loss, bpb = bpb_from_sums(nll, 3, 5)
    assert loss == pytest.approx(math.log(3)) and bpb == pytest.approx(3 * math.log2(3) / 5, rel=1e-15)


def test_uniform_model_scores_log_vocab_exactly(tmp_path):
    """A model whose head is zero predicts uniformly: val_loss = ln V, bpb = N·log2 V / bytes."""
    sp = default_tokenizer(512, cache_dir=tmp_path)
    model = GPT(tiny_hp()).eval()
    with torch.no_grad():
        model.tok_emb.weight.zero_()
    tokens = encode_documents(sp, ["def f(x):\n    return x + 1\n", "while True: pass"])
    luts = build_luts(sp)
    scored = get_evaluator("standard", {"seq_len": 8}).score(model, tokens, luts)
    n = tokens.numel() - 1
    nbytes = int(luts.target_bytes(tokens[:-1], tokens[1:]).sum())
    assert scored.tokens == n and scored.bytes == nbytes
    assert scored.val_loss == pytest.approx(math.log(512), rel=1e-6)
    assert scored.val_bpb == pytest.approx(n * 9 / nbytes, rel=1e-6)
    # known-bad: a non-uniform head no longer gives ln V
    with torch.no_grad():
        model.tok_emb.weight.normal_()
    assert abs(get_evaluator("standard", {"seq_len": 8}).score(model, tokens, luts).val_loss - math.log(512)) > 1e-3
