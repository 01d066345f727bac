"""Artifact audit (GA-SIZE-001..004), time limits (GA-TIME-001/002) and the `artifact` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from golf_audit.artifact import CAP_BYTES, audit_artifact, audit_time_limits, inspect_artifact
from golf_audit.cli import app
from golf_audit.findings import Status
from reference_model.export import pack

FIXTURES = Path(__file__).parent / "fixtures" / "artifact"
runner = CliRunner()


def statuses(folder: Path) -> dict[str, Status]:
    report = audit_artifact(folder)
    times = audit_time_limits(report.record)
    return {c.check_id: c.status for c in report.checks + times.checks}


def check(folder: Path, check_id: str):
    report = audit_artifact(folder)
    return next(c for c in report.checks + audit_time_limits(report.record).checks if c.check_id == check_id)


def test_exec_sibling_is_hidden_code() -> None:
    report = audit_artifact(FIXTURES / "exec_sibling")
    files = {f.path.name: (f.how, f.line) for f in report.code.files}
    assert files == {"train_gpt.py": ("entry", None), "helpers.py": ("exec", 4)}
    hidden = next(c for c in report.checks if c.check_id == "GA-SIZE-002")
    assert hidden.status == Status.WARN and "459 bytes" in hidden.summary
    assert any(e.file == "helpers.py" and e.value == 459 for e in hidden.evidence)
    entry = (FIXTURES / "exec_sibling" / "train_gpt.py").stat().st_size
    assert report.recomputed_total == entry + 459 + 15_800_000  # the helper counts towards the cap
    assert statuses(FIXTURES / "exec_sibling")["GA-SIZE-001"] == Status.PASS


def test_self_extracting_wrapper_counts_wrapper_and_scans_inside() -> None:
    report = audit_artifact(FIXTURES / "wrapper")
    entry, dep = report.code.files
    assert entry.size == (FIXTURES / "wrapper" / "train_gpt.py").stat().st_size
    assert dep.path.name == "kernels.py" and dep.in_wrapper and dep.how == "import"
    # the logged code size is the wrapper's: consistent, but kernels.py is not counted
    codes = {c.check_id: c.status for c in report.checks}
    assert codes["GA-SIZE-003"] == Status.PASS and codes["GA-SIZE-002"] == Status.WARN


def test_over_cap_total_fails_with_file_and_line() -> None:
    cap = check(FIXTURES / "over_cap", "GA-SIZE-001")
    assert cap.status == Status.FAIL and "4,211" in cap.summary
    over = [e for e in cap.evidence if isinstance(e.value, int) and e.value > CAP_BYTES]
    assert [(e.file, e.line, e.value) for e in over] == [("train_seed1337.log", 11, 16_004_211)]
    # JSON claims 15,960,000 but no log says so: a claim problem (GA-CLAIM-001), not a file/log one
    assert check(FIXTURES / "over_cap", "GA-SIZE-003").status == Status.PASS


def test_corrupt_ptz_is_a_damaged_file_error() -> None:
    # README damaged-file policy: damaged bytes are "cannot conclude" (error, exit 2), never a pass.
    container = check(FIXTURES / "corrupt_ptz", "GA-SIZE-004")
    assert container.status == Status.ERROR
    message = container.evidence[0].message
    assert container.evidence[0].file == "final_model.int6.ptz" and "lzma" in message and "corrupt" in message


def _valid_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "good_ptz"
    shutil.copytree(FIXTURES / "corrupt_ptz", folder)
    g = torch.Generator().manual_seed(0)
    sd = {"blocks.0.attn.c_q.weight": torch.randn(128, 600, generator=g), "tok_emb.weight": torch.randn(200, 400, generator=g),
          "blocks.0.attn_scale": torch.ones(8)}  # fmt: skip
    (folder / "final_model.int6.ptz").write_bytes(pack(sd))
    return folder


def test_valid_container_passes_with_breakdown(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    art = inspect_artifact(folder / "final_model.int6.ptz")
    assert art.valid and art.format == "seed-container"
    kinds = {t.name: t.kind for t in art.tensors}
    assert kinds == {"blocks.0.attn.c_q.weight": "int6", "tok_emb.weight": "int8", "blocks.0.attn_scale": "passthrough"}
    assert art.tensors[0].name == "tok_emb.weight" or art.tensors[0].name == "blocks.0.attn.c_q.weight"
    assert sum(t.share for t in art.tensors) == pytest.approx(1.0)
    result = check(folder, "GA-SIZE-004")
    assert result.status == Status.PASS and "tensors" in result.data


def test_raw_state_dict_and_unknown_compressor(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(3)}, tmp_path / "model.pt")
    raw = inspect_artifact(tmp_path / "model.pt")
    assert raw.valid and raw.format == "raw-state-dict"
    (tmp_path / "model.ptz").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    zstd = inspect_artifact(tmp_path / "model.ptz")
    assert zstd.valid is None and "zstd" in zstd.error
    # a pickle that is not weights-only safe is refused, never executed
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    assert inspect_artifact(tmp_path / "evil.pt").valid is False


def test_time_limits() -> None:
    times = {c.check_id: c for c in audit_time_limits(FIXTURES / "over_time").checks}
    assert times["GA-TIME-001"].status == Status.FAIL and times["GA-TIME-001"].evidence[0].value == 650.0
    assert times["GA-TIME-002"].status == Status.FAIL and times["GA-TIME-002"].evidence[0].line == 12
    good = {c.check_id: c.status for c in audit_time_limits(FIXTURES / "exec_sibling").checks}
    assert good == {"GA-TIME-001": Status.PASS, "GA-TIME-002": Status.PASS, "GA-TIME-003": Status.PASS}


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(("name", "code"), [("exec_sibling", 0), ("wrapper", 0), ("over_cap", 1), ("corrupt_ptz", 2), ("over_time", 1)])
def test_cli_exit_codes(name: str, code: int) -> None:
    result = runner.invoke(app, ["artifact", str(FIXTURES / name)])
    assert result.exit_code == code, result.output


def test_cli_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["artifact", str(FIXTURES / "over_cap"), "--format", "json", "--output", str(out)])
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == "1.0" and doc["verdict"] == "fail"
    assert [c["check_id"] for c in doc["checks"]] == ["GA-SIZE-001", "GA-SIZE-002", "GA-SIZE-003", "GA-SIZE-004", "GA-FILES-001", "GA-TIME-001", "GA-TIME-002", "GA-TIME-003"]
    md = runner.invoke(app, ["artifact", str(FIXTURES / "exec_sibling"), "--format", "markdown"])
    assert md.exit_code == 0 and "| ⚠ | GA-SIZE-002 | warn |" in md.output, md.output


def test_cli_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["artifact", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such folder" in result.output and "Traceback" not in result.output
    empty = runner.invoke(app, ["artifact", str(tmp_path)])
    assert empty.exit_code == 2, empty.output


def test_real_over_cap_record(shared_dir: Path) -> None:
    folder = shared_dir / "records" / "track_non_record_16mb" / "2026-03-23_DGAttention_DavidGao"
    assert check(folder, "GA-SIZE-001").status == Status.FAIL
    ok = shared_dir / "records" / "track_10min_16mb" / "2026-03-18_LongContextSeq2048"
    assert statuses(ok)["GA-SIZE-001"] == Status.PASS


def test_unrecognised_artifact_bytes_are_an_error_not_a_pass(tmp_path) -> None:
    """Random bytes in a .ptz cannot be verified: error (exit 2), never not-run or pass."""
    from typer.testing import CliRunner

    from golf_audit.artifact import audit_artifact
    from golf_audit.cli import app
    from golf_audit.findings import Status

    shutil.copytree(FIXTURES / "exec_sibling", tmp_path / "f")
    (tmp_path / "f" / "final_model.int6.ptz").write_bytes(bytes(range(7, 250)) * 3)
    container = next(c for c in audit_artifact(tmp_path / "f").checks if c.check_id == "GA-SIZE-004")
    assert container.status is Status.ERROR, container
    result = CliRunner().invoke(app, ["artifact", str(tmp_path / "f")])
    assert result.exit_code == 2, result.output
