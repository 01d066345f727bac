"""Records reader: submission.json shapes, train-log lines, folder cross-checks, real records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golf_audit.errors import BadInput
from golf_audit.records import (list_record_folders, parse_log_text, parse_submission, read_folder, read_log,
                                read_submission, record_checks)  # fmt: skip
from golf_audit.findings import Status

FIXTURES = Path(__file__).parent / "fixtures" / "records"


# ------------------------------------------------------------------ submission.json shapes


def test_seeds_list_and_seed_results() -> None:
    sub = parse_submission({
        "val_bpb": 1.1, "val_loss": 1.9, "bytes_total": 15_000_000, "date": "2026-03-20", "seeds": [1337, 42],
        "seed_results": {"1337": {"val_bpb": 1.09, "val_loss": 1.88, "artifact_bytes": 15_000_000, "steps": 10},
                         "42": {"val_bpb": 1.11, "train_time_ms": 588004, "ttt_eval_time_s": 500.5}},
    })  # fmt: skip
    assert sub.seeds == [1337, 42]
    assert sub.seed_results[1337].artifact_bytes == 15_000_000 and sub.seed_results[1337].extra == {"steps": 10}
    assert sub.seed_results[42].train_time_s == pytest.approx(588.004) and sub.seed_results[42].eval_time_s == 500.5
    assert sub.problems == []
    assert sub.bpb_loss_ratio == pytest.approx(1.1 / 1.9)


def test_seeds_as_dict_of_results() -> None:
    sub = parse_submission({"val_bpb": 1.08, "bytes_total": 1, "date": "d",
                            "seeds": {"0": {"val_bpb": 1.082, "bytes_total": 15_991_018}, "42": {"val_bpb": 1.083}}})  # fmt: skip
    assert sub.seeds == [0, 42] and sub.seed_results[0].artifact_bytes == 15_991_018


def test_seed_scores_parallel_list_and_single_seed() -> None:
    sub = parse_submission({"val_bpb": 1.09, "bytes_total": 1, "date": "d", "seeds": [42, 0], "seed_scores": [1.0905, 1.0908]})
    assert {s: r.val_bpb for s, r in sub.seed_results.items()} == {42: 1.0905, 0: 1.0908}
    single = parse_submission({"val_bpb": 1.15, "bytes_total": 1, "date": "d", "seed": 1337})
    assert single.seeds == [1337] and single.seed_results[1337].val_bpb == 1.15


def test_missing_keys_are_listed() -> None:
    sub = parse_submission({"author": "x"})
    assert {"missing val_bpb", "missing bytes_total", "missing date", "no seeds listed"} <= set(sub.problems)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"val_bpb": "1.2"}, "number given as a string"),
        ({"val_bpb": "fast"}, "is not a number"),
        ({"val_bpb": True}, "boolean"),
        ({"val_bpb": [1.2]}, "list where a number"),
        ({"val_bpb": float("nan")}, "not finite"),
        ({"seeds": [1, 1, 2]}, "more than once"),
        ({"seed_results": {"abc": {"val_bpb": 1.0}}}, "not a seed number"),
        ({"seed_results": [1, 2]}, "list where an object"),
        ({"seeds": [1, 2], "seed_scores": [1.1]}, "1 values for 2 seeds"),
        ({"bytes_total": 1.5}, "not a whole number"),
    ],
)
def test_weird_types_become_problems(raw: dict, problem: str) -> None:
    sub = parse_submission(raw)
    assert any(problem in p for p in sub.problems), sub.problems


def test_top_level_not_an_object() -> None:
    assert "not an object" in parse_submission([1, 2]).problems[0]


@pytest.mark.parametrize(("content", "match"), [(b"\xff\xfe{", "not UTF-8"), (b"{bad json", "not valid JSON"), (b"[" * 100_000, "")])
def test_read_submission_bad_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "submission.json"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=match or None):
        read_submission(path)
    with pytest.raises(BadInput, match="cannot read"):
        read_submission(tmp_path / "absent.json")


# ------------------------------------------------------------------ log lines

OLD_LOG = """logs/x.txt
seed:1338
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.01ms
step:200/20000 train_loss:2.8000 train_time:10000ms step_avg:50.00ms
stopping_early: wallclock_cap train_time:600043ms step:11575/20000
Serialized model: 67224983 bytes
Code size: 47716 bytes
Total submission size: 67272699 bytes
Serialized model int8+zlib: 15813523 bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)
Total submission size int8+zlib: 15861239 bytes
final_int8_zlib_roundtrip val_loss:2.0366 val_bpb:1.2062 eval_time:1638ms
final_int8_zlib_roundtrip_exact val_loss:2.03657529 val_bpb:1.20617460
"""

NEW_LOG = """Hyperparameters:
  seed: 42
  train_seq_len: 2048
1776143300.100 500/20000 train_loss: 2.5615 train_time: 0.8m tok/s: 8217810
1776143349.278 4832/20000 val_loss: 2.7711 val_bpb: 1.0728
1776143349.278 stopping_early: wallclock_cap train_time: 587091ms step: 4832/20000
1776143355.743 diagnostic pre-quantization post-ema val_loss:2.76990528 val_bpb:1.07228209 eval_time:6424ms
1776143356.801 Serialized model: 135409136 bytes
1776143356.801 Code size (uncompressed): 139831 bytes
1776143356.801 Code size (compressed): 28599 bytes
1776143444.368 Serialized model quantized+brotli: 15968098 bytes
1776143444.369 Total submission size quantized+brotli: 15996697 bytes
1776143501.933 diagnostic quantized val_loss:2.79852399 val_bpb:1.08336093 eval_time:55851ms
1776144156.999 quantized_ttt_phased val_loss:2.76951521 val_bpb:1.07216564 eval_time:500104ms
1776144156.999 total_eval_time:500.1s
"""


def test_old_format_log() -> None:
    log = parse_log_text(OLD_LOG, "train_seed1338.log")
    assert log.seed == 1338 and log.seed_line == 2
    assert [s.step for s in log.steps] == [0, 200] and log.steps[1].train_loss == 2.8
    assert log.train_time_ms == 600043 and log.train_time_line == 6
    assert (log.model_bytes.bytes, log.model_bytes.tag) == (15813523, "int8+zlib")
    assert (log.total_bytes.bytes, log.total_bytes.line) == (15861239, 11)
    assert log.code_bytes.bytes == 47716
    assert len(log.finals) == 2  # the f-string line of embedded code is not a result
    head = log.headline()
    assert (head.name, head.val_bpb, head.line) == ("final_int8_zlib_roundtrip_exact", 1.2061746, 13)
    assert log.eval_time_s == pytest.approx(1.638) and log.problems == []


def test_new_format_log_with_timestamps() -> None:
    log = parse_log_text(NEW_LOG, "train0.txt")
    assert log.seed == 42
    assert log.steps[0].train_time_ms == pytest.approx(0.8 * 60_000)
    assert log.train_time_ms == 587091
    assert log.code_bytes.bytes == 28599 and log.code_bytes.compressed
    assert log.total_bytes.bytes == 15996697
    assert log.headline().name == "quantized_ttt_phased"  # diagnostics are never the headline
    assert log.eval_time_s == 500.1 and log.total_eval_time_line == 15
    assert any("no *_exact" in p for p in log.problems)


def test_untagged_total_after_compressed_model_is_compressed() -> None:
    text = ("Serialized model: 111568154 bytes\nTotal submission size: 111648442 bytes\n"
            "Serialized model rdquant+zstd: 16558180 bytes\nTotal submission size: 16638468 bytes\n")  # fmt: skip
    assert parse_log_text(text).total_bytes.bytes == 16638468


def test_several_runs_and_truncated_and_foreign() -> None:
    runs = parse_log_text("seed:1\nstep:1/2 train_loss:3.0 train_time:5ms\nseed:2\nstep:1/2 train_loss:3.0 train_time:5ms\n")
    assert runs.seed == 2 and runs.seeds_seen == [1, 2] and any("several runs" in p for p in runs.problems)
    truncated = parse_log_text(OLD_LOG.split("Serialized")[0])
    assert truncated.headline() is None and any("truncated" in p for p in truncated.problems)
    foreign = parse_log_text("hello world\n<html></html>\n")
    assert not foreign.recognized and "foreign" in foreign.problems[0]


def test_read_log_non_utf8_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "train.log"
    path.write_bytes(OLD_LOG.encode() + b"\xff\xfe garbage \x00\n")
    log = read_log(path)
    assert log.headline().val_bpb == 1.2061746 and "not valid UTF-8" in log.problems[0]
    assert "cannot read" in read_log(tmp_path / "absent.log").problems[0]


# ------------------------------------------------------------------ folders


def test_good_folder_has_no_discrepancies() -> None:
    record = read_folder(FIXTURES / "good_3seed")
    assert record.discrepancies == [] and record.problems == []
    assert record.mode == "final_int8_zlib_roundtrip_exact"
    assert record.seed_values() == {"1337": 1.20576485, "1338": 1.2061746, "1339": 1.20715923}
    assert [(c.check_id, c.status) for c in record_checks(record)] == [
        ("GA-FILES-001", Status.PASS), ("GA-SEED-001", Status.PASS), ("GA-CLAIM-001", Status.PASS)]


def test_bad_folder_discrepancies() -> None:
    record = read_folder(FIXTURES / "bad_seeds")
    kinds = sorted(d.kind for d in record.discrepancies)
    # seed 42's log prints 1337: it backs the claim for 42 (so 1337 is not an unclaimed run); seed 9
    # is a run not reported; the README discloses best-3-of-4.
    assert kinds == ["best-of-n", "mean-mismatch", "seed-mismatch", "unclaimed-log", "value-mismatch"], record.discrepancies
    mismatch = next(d for d in record.discrepancies if d.kind == "value-mismatch")
    assert (mismatch.file, mismatch.claimed, mismatch.logged, mismatch.line) == ("train_seed8.log", 1.2001, 1.206, 13)
    seed = next(d for d in record.discrepancies if d.kind == "seed-mismatch")
    assert (seed.file, seed.line, seed.claimed, seed.logged) == ("train_seed42.log", 2, 42, 1337)
    assert {d.logged for d in record.discrepancies if d.kind == "unclaimed-log"} == {9}
    statuses = {c.check_id: c.status for c in record_checks(record)}
    assert statuses["GA-SEED-001"] is Status.WARN and statuses["GA-CLAIM-001"] is Status.FAIL


def test_unparseable_files_are_listed_by_ga_files_001(tmp_path) -> None:
    (tmp_path / "submission.json").write_text('{"val_bpb": "abc", "seeds": 5}')
    (tmp_path / "train.log").write_bytes(b"\xff\xfe\x00garbage")
    files = next(c for c in record_checks(read_folder(tmp_path)) if c.check_id == "GA-FILES-001")
    assert files.status is Status.ERROR  # damaged files: the audit cannot pass on them (README policy)
    messages = [(e.file, e.message) for e in files.evidence]
    assert ("submission.json", "val_bpb: 'abc' is not a number") in messages
    assert any(f == "train.log" for f, _ in messages), messages


def test_file_name_seed_mismatch(tmp_path: Path) -> None:
    (tmp_path / "train_seed42.log").write_text(OLD_LOG)  # prints seed 1338
    record = read_folder(tmp_path)
    assert [d.kind for d in record.discrepancies] == ["seed-mismatch"]
    assert record.discrepancies[0].line == 2 and "no submission.json" in record.problems


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        read_folder(tmp_path / "nope")


# ------------------------------------------------------------------ real records (../shared)


def test_every_real_record_folder_parses(shared_dir: Path) -> None:
    folders = list_record_folders(shared_dir / "records")
    assert len(folders) >= 50
    for folder in folders:
        record = read_folder(folder)  # must not raise
        assert record.submission is not None or record.problems, folder
        for log in record.logs:
            assert log.recognized


def test_real_records_spot_checks(shared_dir: Path) -> None:
    track = shared_dir / "records" / "track_10min_16mb"
    long_ctx = read_folder(track / "2026-03-18_LongContextSeq2048")
    assert long_ctx.seed_values() == {"1337": 1.20576485, "1338": 1.2061746, "1339": 1.20715923}
    caseops = read_folder(track / "2026-04-18_PR1626_CaseOps_Taper")
    assert any(d.kind == "seed-mismatch" and d.claimed == 0 and d.logged == 1337 for d in caseops.discrepancies)
    sp4096 = read_folder(track / "2026-04-04_SP4096_DepthRecurrence_ParallelResid_MuonEqR")
    assert sp4096.mode == "final_int6_sliding_window" and sp4096.seed_values()["42"] == 1.08938974
    adapter = read_folder(shared_dir / "records" / "track_non_record_16mb" / "2026-04-30_Random_Linear_Adapter")
    assert sum(d.kind == "seed-mismatch" for d in adapter.discrepancies) == 2


def test_records_json_fixture_is_valid_json() -> None:
    json.loads((FIXTURES / "good_3seed" / "submission.json").read_text())
