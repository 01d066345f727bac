"""Hypothesis fuzzing of the log and submission.json parsers: never an exception but the tool's own.

The fast tests run a few hundred cases in the default suite; the slow ones run ≥ 10,000 each
(``pytest -m slow``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from golf_audit.errors import BadInput
from golf_audit.records import parse_log_text, parse_submission, read_submission

# Fragments of real log lines, recombined with noise, so the fuzzer reaches the parsers' branches.
FRAGMENTS = [
    "step:", "/20000 ", "train_loss:", "val_loss:", "val_bpb:", "train_time:", "ms", "m ", "s", "step_avg:",
    "stopping_early: wallclock_cap ", "Serialized model", " int6+lzma", ": ", " bytes", "Total submission size",
    "Code size", " (compressed)", "final_int8_zlib_roundtrip_exact ", "legal_ttt_exact ", "eval_time:", "seed:",
    "  seed: ", "total_eval_time:", "1776143349.278 ", "diagnostic ", "| Total submission: ", "INT7+zlib model: ",
    "1e999", "nan", "-0", "1.2061746", "600043", "99999999999999999999999", "{", "(", "\n", "\t", "\x00", "é",
]  # fmt: skip

log_texts = hs.lists(hs.one_of(hs.sampled_from(FRAGMENTS), hs.text(max_size=12), hs.integers().map(str),
                               hs.floats(allow_nan=True).map(str)), max_size=60).map("".join)  # fmt: skip

json_scalars = hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.floats(allow_nan=True, allow_infinity=True),
                         hs.text(max_size=8), hs.sampled_from(["1.2", "42", "abc", ""]))  # fmt: skip
json_values = hs.recursive(json_scalars, lambda kids: hs.one_of(hs.lists(kids, max_size=4),
                           hs.dictionaries(hs.one_of(hs.text(max_size=5), hs.sampled_from(["42", "0", "1337"])), kids, max_size=4)),
                           max_leaves=12)  # fmt: skip
KEYS = ["val_bpb", "val_loss", "bytes_total", "bytes_code", "code_bytes", "seeds", "seed", "seed_results", "seed_scores",
        "date", "name", "author", "track", "artifact_size_bytes", "mean_bpb"]  # fmt: skip
submissions = hs.one_of(hs.dictionaries(hs.sampled_from(KEYS), json_values, max_size=8), json_values)


def _check_log(text: str) -> None:
    log = parse_log_text(text)
    log.headline()
    _ = (log.train_time_ms, log.eval_time_s, log.total_bytes, log.code_bytes, log.model_bytes, log.recognized)
    assert all(isinstance(p, str) for p in log.problems)


def _check_submission(raw: object) -> None:
    sub = parse_submission(raw)
    _ = sub.bpb_loss_ratio
    assert all(isinstance(s, int) for s in sub.seeds)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(log_texts)
def test_log_parser_never_raises(text: str) -> None:
    _check_log(text)


@FAST
@given(submissions)
def test_submission_parser_never_raises(raw: object) -> None:
    _check_submission(raw)


@FAST
@given(hs.binary(max_size=200))
def test_read_submission_bytes_only_bad_input(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("sub") / "submission.json"
    path.write_bytes(data)
    try:
        read_submission(path)
    except BadInput:
        pass


@pytest.mark.slow
@SLOW
@given(log_texts)
def test_log_parser_never_raises_slow(text: str) -> None:
    _check_log(text)


@pytest.mark.slow
@SLOW
@given(submissions)
def test_submission_parser_never_raises_slow(raw: object) -> None:
    _check_submission(raw)


@pytest.mark.slow
@SLOW
@given(submissions)
def test_submission_json_roundtrip_slow(raw: object) -> None:
    try:
        text = json.dumps(raw)
    except (ValueError, TypeError):
        return
    _check_submission(json.loads(text))
