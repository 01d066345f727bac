"""The damaged-file policy (README): the same in `artifact`, `report` and `significance`.

A damaged file inside a records folder (truncated .ptz, invalid or wrong-typed submission.json,
non-UTF-8 log) is reported with the file and the damage, never passes and never crashes; the
exit code is 1 when a violation is proven anyway, else 2.
"""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit.cli import app

runner = CliRunner()
GOOD = Path(__file__).resolve().parent / "fixtures" / "records" / "good_3seed"


def _damage(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    shutil.copytree(GOOD, folder)
    if kind == "truncated_ptz":
        blob = lzma.compress(b"not a real container, but a valid xz stream " * 2000)
        (folder / "final_model.int6.ptz").write_bytes(blob[: len(blob) // 2])
    elif kind == "invalid_json":
        (folder / "submission.json").write_text('{"val_bpb": 1.2, "seeds": [1337,')
    elif kind == "wrong_typed_json":
        data = json.loads((folder / "submission.json").read_text())
        data["val_bpb"] = [1.2]
        (folder / "submission.json").write_text(json.dumps(data))
    elif kind == "non_utf8_log":
        log = folder / "train_seed1337.log"
        log.write_bytes(log.read_bytes() + b"\xff\xfe broken tail\n")
    return folder


CASES = ["truncated_ptz", "invalid_json", "wrong_typed_json", "non_utf8_log"]


@pytest.mark.parametrize("kind", CASES)
def test_report_names_the_damage_and_cannot_pass(tmp_path: Path, kind: str) -> None:
    folder = _damage(tmp_path, kind)
    out = runner.invoke(app, ["report", str(folder), "--format", "json"])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    results = {r["id"]: r for r in json.loads(out.stdout)["folders"][0]["results"]}
    check = results["GA-SIZE-004"] if kind == "truncated_ptz" else results["GA-FILES-001"]
    assert check["status"] == "error"
    text = json.dumps(check["evidence"])
    assert "damaged" in text and ("truncated" in text if kind == "truncated_ptz" else True)


@pytest.mark.parametrize("kind", CASES)
def test_artifact_follows_the_same_policy(tmp_path: Path, kind: str) -> None:
    folder = _damage(tmp_path, kind)
    out = runner.invoke(app, ["artifact", str(folder), "--format", "json"])
    assert out.exit_code == 2, out.output
    checks = {c["check_id"]: c for c in json.loads(out.stdout)["checks"]}
    assert checks["GA-SIZE-004" if kind == "truncated_ptz" else "GA-FILES-001"]["status"] == "error"


@pytest.mark.parametrize("kind", ["invalid_json", "wrong_typed_json", "non_utf8_log"])
def test_significance_follows_the_same_policy(tmp_path: Path, kind: str) -> None:
    folder = _damage(tmp_path, kind)
    out = runner.invoke(app, ["significance", str(folder), "--baseline-mean", "1.30", "--rule", "leaderboard"])
    # Significant on the values that could be read, but a damaged file cannot pass: exit 2.
    assert out.exit_code == 2, out.output
    assert "damaged" in out.output


def test_a_violation_still_fails_with_a_damaged_file(tmp_path: Path) -> None:
    folder = _damage(tmp_path, "non_utf8_log")
    out = runner.invoke(app, ["significance", str(folder), "--baseline-mean", "1.10", "--rule", "leaderboard"])
    assert out.exit_code == 1, out.output  # not significant: proven on the values read
