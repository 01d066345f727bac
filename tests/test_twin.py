"""The twin child of a script audit: parallel replays that can never change a result."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from golf_audit.causality import engine
from golf_audit.submission import twin
from golf_audit.submission.runner import ChildFailed
from reference_model.evaluate import Scored


def scored(values) -> Scored:
    v = np.asarray(values, dtype=np.float64)
    return Scored(v, np.ones(v.size, dtype=np.int64), float(v.sum()), v.size, v.size, {}, {})


class FakeSource:
    """Scores a stream as its token values (optionally off by ``bias``), recording which thread ran it."""

    vocab_size = 50
    name = "fake"
    supports_target_flip = False
    first_flip_token = 13

    def __init__(self, bias: float = 0.0, fail_after: int | None = None) -> None:
        self.bias, self.fail_after, self.runs = bias, fail_after, 0

    def run(self, tokens, targets=None, logprob_positions=()):
        self.runs += 1
        if self.fail_after is not None and self.runs > self.fail_after:
            raise ChildFailed("the child exited (killed by signal 9)")
        t = tokens.reshape(-1).double().numpy()
        return scored(0.5 * t[:-1] + t[1:] + self.bias)  # a bigram: position i reads tokens i and i+1


def test_same_scores_is_bit_for_bit() -> None:
    assert twin.same_scores(scored([1.0, np.nan]), scored([1.0, np.nan]))
    assert not twin.same_scores(scored([1.0, 2.0]), scored([1.0, 2.0 + 1e-12]))


def test_run_many_splits_when_the_twin_agrees_and_never_depends_on_it() -> None:
    streams = [torch.arange(13, 23) + k for k in range(4)]
    base = torch.arange(13, 23)
    for other, expect_twin_runs in ((FakeSource(), 3), (FakeSource(bias=1e-9), 1), (FakeSource(fail_after=1), 2)):
        primary = FakeSource()
        src = twin.TwinSource(primary, other)
        src.run(base)
        out = src.run_many(streams)
        want = [FakeSource().run(s) for s in streams]
        assert all(twin.same_scores(a, b) for a, b in zip(out, want)), "results never come from a disagreeing twin"
        assert other.runs == expect_twin_runs  # base check + its share / base check only / base + one, then dead


def test_executor_reruns_a_dead_twins_chunk_on_the_first_child() -> None:
    tokens = torch.tensor([1] + [13 + (i * 7) % 37 for i in range(200)])
    primary, dead = FakeSource(), FakeSource(fail_after=0)
    with twin.ChildExecutor([primary, dead], engine._run_chunk) as pool:
        res = engine.audit_source(primary, tokens, flips=16, seed=0, executor=pool)
        assert pool.lost_twin
    alone = engine.audit_source(FakeSource(), tokens, flips=16, seed=0)
    assert res.status is alone.status and res.stream_flip.flips == alone.stream_flip.flips == 16


def test_executor_results_equal_a_single_child_run() -> None:
    tokens = torch.tensor([1] + [13 + (i * 5) % 37 for i in range(200)])
    primary, other = FakeSource(), FakeSource()
    with twin.ChildExecutor([primary, other], engine._run_chunk) as pool:
        res = engine.audit_source(primary, tokens, flips=16, seed=3, executor=pool)
    alone = engine.audit_source(FakeSource(), tokens, flips=16, seed=3)
    assert other.runs > 0, "the twin took a share"
    assert res.stream_flip.flips_with_leak == alone.stream_flip.flips_with_leak == 0


class FakeChild:
    def __init__(self, answer=None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.proc = SimpleNamespace(poll=lambda: None)

    def request(self, obj, timeout_s=None):
        if self.error is not None:
            raise self.error
        return self.answer


READY = {"calls": [{"name": "eval_val", "id": 0, "replayable": True, "rule": "all", "error": None}]}


@pytest.mark.parametrize("answer,error,used", [
    (READY, None, True),
    ({"calls": [{**READY["calls"][0], "id": 1}]}, None, False),  # another call order
    (None, ChildFailed("boom"), False),
    (None, ValueError("I/O operation on closed file"), False),
])
def test_the_twin_is_used_only_when_its_entry_run_made_the_same_calls(answer, error, used) -> None:
    child = FakeChild(answer, error)
    got = twin.Setup(child, {}, 5.0).twin_if_same(READY, 5.0)
    assert (got is child) is used


class SlowChild:
    """A twin whose entry run only ends when it is killed (as a killed child's pipe ends)."""

    def __init__(self) -> None:
        self.killed = threading.Event()
        self.proc = SimpleNamespace(poll=lambda: 0 if self.killed.is_set() else None)

    def request(self, obj, timeout_s=None):
        if not self.killed.wait(timeout_s):
            return READY
        raise ChildFailed("the child died (killed by signal 9)")

    def kill(self) -> None:
        self.killed.set()


def test_a_twin_whose_entry_run_is_long_is_stopped_and_not_used() -> None:
    slow = SlowChild()
    setup = twin.Setup(slow, {}, 30.0, give_up_s=0.05)
    assert setup.twin_if_same(READY, 5.0) is None
    assert setup.gave_up and slow.killed.is_set()
    quick = FakeChild(READY, None)
    kept = twin.Setup(quick, {}, 5.0, give_up_s=5.0)
    assert kept.twin_if_same(READY, 5.0) is quick and not kept.gave_up  # done in time: the timer is off


def test_replay_workers_can_be_switched_off(monkeypatch) -> None:
    monkeypatch.setenv("GOLF_AUDIT_REPLAY_WORKERS", "1")
    assert twin.replay_workers() == 1
    monkeypatch.setenv("GOLF_AUDIT_REPLAY_WORKERS", "2")
    assert twin.replay_workers() == 2


class DriftingSource(FakeSource):
    """Agrees with the first child on the unflipped stream, then drifts by a float-level amount."""

    def run(self, tokens, targets=None, logprob_positions=()):
        out = super().run(tokens, targets, logprob_positions)
        if self.runs > 1:
            out.nll[:] += 6e-5
        return out


def test_a_change_only_the_twin_sees_is_run_again_in_the_first_child() -> None:
    tokens = torch.tensor([1] + [13 + (i * 5) % 37 for i in range(200)])
    primary, drifting = FakeSource(), DriftingSource()
    with twin.ChildExecutor([primary, drifting], engine._run_chunk) as pool:
        res = engine.audit_source(primary, tokens, flips=16, seed=3, executor=pool)
    assert res.stream_flip.flips_with_leak == 0 and res.status.value == "pass", res.summary
    assert pool.rechecked >= 1


def test_doc_flip_results_from_the_twin_are_confirmed_by_the_first_child() -> None:
    from golf_audit.causality.docflip import doc_flip_test

    tokens = torch.tensor(([1] + [13 + (i * 3) % 37 for i in range(40)]) * 4)
    src = twin.TwinSource(FakeSource(), DriftingSource())
    res = doc_flip_test(src, tokens, 1, 13, 50, 1e-9)
    assert res.status == "pass", res.summary
    assert src._from_twin and src.twin.runs >= 2, "the twin took a stream, and its change was not believed"
