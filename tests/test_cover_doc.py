"""GA-COVER-001 (coverage of the reported score) and GA-DOC-001 (the cross-document flip test).

Known-good and known-bad cases of each, on synthetic scored sets, small scripts and toy
evaluators; the real scripts (pr1026, pr2009 coverage; pr1797 and the BOS-fixed records for
GA-DOC) are in tests/test_submission_shared.py.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch

from golf_audit.causality.docflip import doc_flip_test, documents
from golf_audit.findings import Status
from golf_audit.submission import fakedata
from golf_audit.submission.cover import coverage_check
from golf_audit.submission.doccheck import isolation_claims
from reference_model.evaluate import Scored

TREE = ast.parse("x = 1\n")


def reported(counts: list[int] | np.ndarray) -> dict:
    return {"name": "eval_val", "ordinal": 0, "call_line": 10, "counts": list(counts), "rule": "every captured token"}


def test_every_target_once_passes() -> None:
    assert coverage_check("s.py", reported([1] * 500), TREE, []).status is Status.PASS


def test_sliding_tail_duplicates_are_counted_not_a_violation() -> None:
    counts = np.ones(500, dtype=int)
    counts[-40:] = 3
    res = coverage_check("s.py", reported(counts), TREE, [])
    assert res.status is Status.PASS and res.data["tail_duplicates"] == 40
    assert any("tail" in e.message for e in res.evidence)


def test_a_gap_at_the_stream_end_shorter_than_a_window_is_a_warning() -> None:
    counts = np.ones(500, dtype=int)
    counts[-48:] = 0
    res = coverage_check("s.py", reported(counts), TREE, [])
    assert res.status is Status.WARN and res.data["edge_gaps"] == 48


@pytest.mark.parametrize("counts, what", [
    (np.r_[np.ones(200, int), np.zeros(100, int), np.ones(200, int)], "never scored"),
    (np.r_[np.ones(200, int), 2 * np.ones(100, int), np.ones(200, int)], "re-scored"),
    ((np.random.default_rng(0).random(500) < 0.1).astype(int), "never scored"),
])
def test_subsets_and_rescoring_fail(counts: np.ndarray, what: str) -> None:
    res = coverage_check("s.py", reported(counts), TREE, [])
    assert res.status is Status.FAIL and what in res.summary


RANDOM_BATCHES = '''
import math, numpy as np, torch
def get_batch(data_dir, split, n):
    shard = np.memmap(data_dir + split, dtype=np.uint16, mode="r")
    ix = torch.randint(len(shard) - 65, (n,))
    return ix
def main():
    for _ in range(20):
        x = get_batch("d", "val", 4)
    BYTES_PER_TOKEN = 2.75
'''
RANK_SHARE = '''
import math, torch
import torch.distributed as dist
def eval_val_sliding(tokens, rank, world_size, store_nll=None):
    windows = list(range(0, 100, 16))
    mine = windows[len(windows) * rank // world_size:len(windows) * (rank + 1) // world_size]
    loss_sum = torch.zeros(())
    for w in mine:
        loss_sum += 1.0
    dist.all_reduce(loss_sum)
    val_bpb = loss_sum / math.log(2)
    return loss_sum, val_bpb
def apply_cache(nll, tokens):
    total = 0.0
    for v in nll:
        total += v
    val_bpb = total / math.log(2)
    return total, val_bpb
def main(tokens):
    buf = [0.0] * 100
    eval_val_sliding(tokens, 0, 8, store_nll=buf)
    return apply_cache(buf, tokens)
'''


@pytest.mark.parametrize("text, what", [(RANDOM_BATCHES, "random offsets"), (RANDOM_BATCHES, "BYTES_PER_TOKEN"),
                                        (RANK_SHARE, "rank's windows only")])
def test_static_patterns_decide_when_nothing_was_captured(text: str, what: str) -> None:
    res = coverage_check("s.py", None, ast.parse(text), [])
    assert res.status is Status.FAIL and any(what.lower() in e.message.lower() for e in res.evidence), res.evidence
    assert coverage_check("s.py", None, TREE, []).status is Status.ERROR, "nothing to decide on: error, not pass"


# ----------------------------------------------------------------------------- GA-DOC


class ToyEvaluator:
    """Scores each target from its own document's previous token (plus, optionally, a leak)."""

    vocab_size = 64
    first_flip_token = fakedata.FIRST_NORMAL

    def __init__(self, smear: bool, adapt: bool = False) -> None:
        self.smear, self.adapt = smear, adapt
        self.times: np.ndarray | None = None

    def run(self, tokens: torch.Tensor, targets=None, logprob_positions=()) -> Scored:
        t = tokens.tolist()
        n = len(t) - 1
        nll = np.zeros(n)
        carry = 0.0  # "adaptation": a running statistic of everything scored so far
        starts = {s for s, _ in documents(tokens, fakedata.BOS_ID)}
        order = np.zeros(n, dtype=np.int64)
        doc = -1
        for i in range(n):
            if i in starts:
                doc += 1
            prev = t[i - 1] if (self.smear or i not in starts) and i > 0 else 0
            nll[i] = 1.0 + 0.01 * ((t[i] * 7 + prev * 3) % 11) + (0.001 * carry if self.adapt else 0.0)
            carry += t[i + 1] if self.adapt and i + 1 < len(t) and (i + 1) in starts else 0.0
            order[i] = doc
        self.times = order if self.adapt else None
        return Scored(nll, np.ones(n, dtype=np.int64), float(nll.sum()), n, n, {}, {})

    def scoring_times(self, n: int) -> np.ndarray | None:
        return self.times


def stream() -> torch.Tensor:
    return torch.from_numpy(fakedata.documents(64, 600, 1, doc_len=(40, 80)))


def test_isolated_documents_pass_and_the_positive_control_moves() -> None:
    res = doc_flip_test(ToyEvaluator(smear=False), stream(), fakedata.BOS_ID, fakedata.FIRST_NORMAL, 64, 1e-9)
    assert res.status == "pass" and all(p.control_moved for p in res.pairs)


def test_a_previous_token_smear_across_the_boundary_fails() -> None:
    res = doc_flip_test(ToyEvaluator(smear=True), stream(), fakedata.BOS_ID, fakedata.FIRST_NORMAL, 64, 1e-9)
    assert res.status == "fail" and res.pairs[0].first_moved == res.pairs[0].bos


def test_adaptation_on_an_already_scored_document_is_not_a_crossing() -> None:
    res = doc_flip_test(ToyEvaluator(smear=False, adapt=True), stream(), fakedata.BOS_ID, fakedata.FIRST_NORMAL,
                        64, 1e-9)
    assert res.status in ("pass", "error") and res.status != "fail"


def test_isolation_is_claimed_only_by_bos_aware_code() -> None:
    aware = ast.parse("def eval_val(x):\n    bos = (x == BOS_ID)\n    cu_seqlens = bos.nonzero()\n    return cu_seqlens\n")
    plain = ast.parse("def eval_val(x):\n    return x.sum()\n")
    assert isolation_claims(aware, "eval_val") and not isolation_claims(plain, "eval_val")
