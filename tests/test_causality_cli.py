"""`golf-audit causality`: exit codes, report formats, and one-line errors on bad input."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from golf_audit.causality.report import CausalityReportJSON, validate
from golf_audit.cli import app

runner = CliRunner()


def _run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["causality", *args], env=env)


def _one_line_error(result) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[demo]")]
    assert len(lines) == 1 and lines[0].startswith("golf-audit: "), result.stderr
    assert "Traceback" not in result.output


def test_one_causal_evaluator_exits_0_with_json(tmp_path):
    out = tmp_path / "audit.json"
    result = _run("--evaluator", "sliding", "--flips", "3", "--workers", "1", "--format", "json", "--output", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert validate(data, CausalityReportJSON) == [] and data["verdict"] == "pass" and data["mode"] == "evaluator"
    assert data["results"][0]["settings"] == {"seq_len": "32", "stride": "8"}
    assert result.stdout == ""  # the report went to the file


def test_one_leaky_evaluator_exits_1():
    result = _run("--evaluator", "slot", "--set", "mask=scored", "--flips", "3", "--workers", "1")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("golf-audit causality: FAIL (not causal: slot(mask=scored))")


@pytest.mark.parametrize("args, needle", [
    (["--evaluator", "slott"], "did you mean 'slot'"),
    (["--evaluator", "slot", "--set", "mask"], "--set expects key=value"),
    (["--evaluator", "slot", "--set", "maks=context"], "did you mean 'mask'"),
    (["--evaluator", "slot", "--set", "steps=many"], "steps"),
    (["--set", "mask=context"], "--set needs --evaluator"),
    (["--flips", "0"], "--flips"),
    (["--checkpoint", "/nonexistent/model.pt"], "--checkpoint: /nonexistent/model.pt: not found"),
    (["some/train_gpt.py"], "no such script"),
])
def test_bad_inputs_exit_2_with_one_line(args, needle):
    result = _run(*args)
    _one_line_error(result)
    assert needle in result.stderr


def test_corrupt_checkpoint_exits_2(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint at all")
    result = _run("--evaluator", "sliding", "--checkpoint", str(bad), env={"PRESET": "tiny"})
    _one_line_error(result)
    assert "not a readable torch checkpoint" in result.stderr


def test_checkpoint_of_the_demo_model_is_audited(tmp_path):
    from reference_model.demo import load_demo

    ckpt = tmp_path / "demo.pt"
    torch.save(load_demo().model.state_dict(), ckpt)
    result = _run("--evaluator", "standard", "--checkpoint", str(ckpt), "--flips", "2", "--workers", "1",
                  "--format", "markdown", env={"PRESET": "tiny", "VOCAB_SIZE": "512"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Causality audit") and str(ckpt) in result.stdout
