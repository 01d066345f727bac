"""Evaluators under torch.distributed (2 gloo processes on CPU) agree with one process (slow)."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

# Sliding/ngram split windows only: sums must agree to rounding. Standard totals fp32 batch
# means as the seed does, and its batches depend on the world size: agreement to fp32 rounding.
# TTT and two_pass all-reduce gradients (summation order differs). SLOT batches per rank (the
# seed's strided split), so it is compared only for being finite (its numbers depend on the
# world size by design; the fidelity vectors pin its 2-rank value).
CASES = [("standard", {"seq_len": "32"}, 1e-6), ("sliding", {}, 1e-12), ("ngram_target", {}, 1e-12),
         ("ttt", {"chunk": "192", "epochs": "1"}, 1e-6), ("two_pass", {}, 1e-6), ("slot", {}, None)]
GEOMETRY = {"seq_len": "32", "stride": "8"}


def _scores() -> list[float]:
    from reference_model.demo import load_demo
    from reference_model.evaluate import get_evaluator

    demo = load_demo()
    tokens = demo.val_tokens[:665]
    return [get_evaluator(name, {**(GEOMETRY if name != "standard" else {}), **settings})
            .score(demo.model, tokens, demo.luts).val_bpb for name, settings, _ in CASES]


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        values = _scores()
        if rank == 0:
            torch.save(values, out)
        dist.barrier()  # tear gloo down only once both ranks are done (a lone exit can abort the peer)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one(tmp_path):
    from reference_model.demo import load_demo

    load_demo()  # train/cache once, before two processes race for it
    out = str(tmp_path / "dist.pt")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    one = _scores()
    assert not (dist.is_available() and dist.is_initialized())
    for (name, _, tol), a, b in zip(CASES, one, two):
        assert b == b and abs(b) < 10, name
        if tol is not None:
            assert abs(a - b) <= tol, (name, a, b)
    assert os.path.exists(out)
