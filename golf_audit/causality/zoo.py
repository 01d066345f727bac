"""The evaluator zoo: every legal and illegal evaluation scheme, with the verdict it must get.

``golf-audit causality`` with no arguments audits all of them on the demo model. That run is
the product's self-test: it succeeds only when every verdict equals the expected one.

The audit stream and geometry are chosen to be as short as possible while still exercising
every place a leak can hide (DOMAIN.md §3):

* windows of ``AUDIT_SEQ_LEN`` = 32 targets, stride 8 (the seed's 2048/64 scaled down; the
  stride/window ratio 1/4 keeps several windows overlapping every target);
* ``AUDIT_WINDOWS`` = 80 windows, i.e. 2.5 SLOT batches of the seed's 32 windows, so a
  batch-shared delta has batch edges both inside the stream and at a partial last batch;
* TTT chunks of ``AUDIT_TTT_CHUNK`` = 192 targets (24 windows), so the stream spans 3.5 chunks,
  and one adaptation epoch per chunk instead of 3 (order, not amount, decides causality);
* hence a stream of 32 + 79·8 + 1 = 665 tokens (664 targets) from the start of the demo's
  validation stream;
* zoo members run with ``tail=once``: the 80 windows end exactly at the stream's end, each
  target scored once (the seed's own enumeration, the evaluators' default, would add 3 tail
  windows re-scoring the last targets; causality does not depend on it, the designed batch
  edges do).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..findings import Status

AUDIT_SEQ_LEN = 32
AUDIT_STRIDE = 8
AUDIT_WINDOWS = 80
AUDIT_TTT_CHUNK = 192
AUDIT_STREAM_TOKENS = AUDIT_SEQ_LEN + (AUDIT_WINDOWS - 1) * AUDIT_STRIDE + 1  # 665

# Settings applied to every evaluator that has them (the user's --set wins).
AUDIT_GEOMETRY: dict[str, str] = {"seq_len": str(AUDIT_SEQ_LEN), "stride": str(AUDIT_STRIDE),
                                  "chunk": str(AUDIT_TTT_CHUNK), "chunk_tokens": str(AUDIT_TTT_CHUNK)}
ZOO_TAIL = "once"  # the zoo's designed geometry (see above); single-evaluator audits keep the evaluator's own


@dataclass(frozen=True)
class Expected:
    """The verdict a zoo member must get; ``failing`` names tests that must be among the failures."""

    status: Status
    failing: tuple[str, ...] = ()

    def matches(self, status: Status, failed_tests: list[str]) -> bool:
        return status is self.status and all(t in failed_tests for t in self.failing)

    def describe(self) -> str:
        return self.status.value + (f" ({', '.join(self.failing)})" if self.failing else "")


@dataclass(frozen=True)
class ZooMember:
    label: str  # what the table shows, e.g. "slot(scored, window)"
    evaluator: str  # registry name
    settings: dict[str, str] = field(default_factory=dict)
    expected: Expected = Expected(Status.PASS)
    why: str = ""  # one line: why this verdict is right


PASS, FAIL = Expected(Status.PASS), Expected(Status.FAIL)

ZOO: tuple[ZooMember, ...] = (
    ZooMember("standard", "standard", {}, PASS, "non-overlapping windows, plain forward"),
    ZooMember("sliding", "sliding", {}, PASS, "each target scored once from its past"),
    ZooMember("slot(context, window)", "slot", {"mask": "context", "delta": "window"}, PASS,
              "a window fits its delta only on its own already-scored context"),
    ZooMember("ttt(score_first)", "ttt", {"order": "score_first", "epochs": "1"}, PASS,
              "each chunk is scored before the model trains on it"),
    ZooMember("slot(scored, window)", "slot", {"mask": "scored", "delta": "window"}, FAIL,
              "the delta is fitted on the very targets it then scores (the seed PR's SLOT)"),
    ZooMember("slot(scored, batch)", "slot", {"mask": "scored", "delta": "batch"}, FAIL,
              "fitted on scored targets, and shared across 32 windows"),
    ZooMember("slot(context, batch)", "slot", {"mask": "context", "delta": "batch"}, FAIL,
              "one delta shared by 32 windows reads targets that earlier windows of the batch score"),
    ZooMember("ttt(train_first)", "ttt", {"order": "train_first", "epochs": "1"}, FAIL,
              "the model trains on a chunk before scoring it"),
    ZooMember("ngram_target", "ngram_target", {}, FAIL, "the n-gram cache key includes the target"),
    ZooMember("two_pass", "two_pass", {}, FAIL, "scores, adapts on everything, then rescores"),
    ZooMember("unnormalized", "unnormalized", {}, Expected(Status.FAIL, ("normalization",)),
              "probabilities are boosted after the softmax and do not sum to 1"),
)


def with_geometry(evaluator: str, settings: dict[str, str]) -> dict[str, str]:
    """``settings`` plus the audit geometry for the fields this evaluator has (explicit ones win)."""
    from reference_model.evaluate import REGISTRY  # torch: not needed to read the audit geometry constants

    cls = REGISTRY.get(evaluator)
    if cls is None:
        return dict(settings)
    fields = {f.name for f in dataclasses.fields(cls.Settings)}
    out = {k: v for k, v in AUDIT_GEOMETRY.items() if k in fields}
    out.update(settings)
    return out


def settings_for(member: ZooMember) -> dict[str, Any]:
    from reference_model.evaluate import REGISTRY

    cls = REGISTRY.get(member.evaluator)
    tail = {"tail": ZOO_TAIL} if cls is not None and any(f.name == "tail" for f in dataclasses.fields(cls.Settings)) else {}
    return with_geometry(member.evaluator, {**tail, **member.settings})

