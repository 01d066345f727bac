"""`golf-audit slot-compare`: the leak on a trained TINY model, steps=0 equals sliding, sweep rows, PNG, bad inputs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from golf_audit.cli import app
from golf_audit.errors import BadInput
from golf_audit.output import Format
from golf_audit.slotcmp import compare, parse_sweep
from golf_audit.slotcmp.plot import plot_png
from golf_audit.slotcmp.render import render

runner = CliRunner()
TOKENS = 2049  # 2,048 targets: 4 SLOT batches of 32 windows at the demo's stride 16


@pytest.fixture(scope="module")
def demo():
    from reference_model.demo import load_demo

    return load_demo()


@pytest.fixture(scope="module")
def result(demo):
    return compare(demo.model, demo.luts, demo.val_tokens[:TOKENS], {}, flips=3,
                   sweep=("steps", ["0", "4", "16"]))


def test_scored_mask_beats_context_mask_and_the_leak_is_positive(result):
    scored, context = result.variant("scored_window"), result.variant("context_window")
    assert scored.val_bpb < context.val_bpb < result.sliding_bpb
    assert result.leak_bpb > 0.05 and result.leak_nats > 0
    assert result.leak_bpb == pytest.approx(context.val_bpb - scored.val_bpb)
    assert scored.causality == "fail" and context.causality == "pass"
    assert result.variant("context_batch").causality == "fail"
    assert scored.self_prediction > 0.05 and context.self_prediction == 0.0
    assert result.exit_code() == 0


def test_zero_steps_equals_sliding(result):
    row = result.sweep[0]
    assert row.value == "0"
    # Same per-target NLLs; SLOT totals each window's NLLs in fp32 first, as the seed does (~1e-9 here).
    for bpb in row.bpb.values():
        assert bpb == pytest.approx(result.sliding_bpb, abs=1e-7)
    assert row.leak_bpb == pytest.approx(0.0, abs=1e-9)


def test_sweep_has_one_row_per_setting_and_the_leak_grows(result):
    data = json.loads(render(result, Format.json))
    assert data["schema_version"] == "1.0"
    assert [row["value"] for row in data["sweep"]] == ["0", "4", "16"]
    assert all(row["parameter"] == "steps" for row in data["sweep"])
    leaks = [row["leak_bpb"] for row in data["sweep"]]
    assert leaks[0] < leaks[1] < leaks[2]
    assert data["finding"].startswith("SLOT as the seed PR runs it")


def test_reports_open_with_the_plain_sentence(result):
    table = render(result, Format.table)
    assert table.startswith("SLOT as the seed PR runs it (fitted on the tokens it scores) improves bpb by")
    md = render(result, Format.markdown, command="golf-audit slot-compare", plot="x.png")
    assert md.splitlines()[2].startswith("**SLOT as the seed PR runs it")
    assert "## Sweep over steps" in md and "![bpb against steps](x.png)" in md and "golf-audit slot-compare" in md


def test_png_is_written_and_non_empty(result, tmp_path):
    png = plot_png(result)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.parametrize("text", ["steps", "steps=", "momentum=1,2", "steps=1,x", "steps=1.5", "lr=-1"])
def test_bad_sweeps_are_bad_input(text):
    with pytest.raises(BadInput):
        parse_sweep(text)


def test_cli_writes_report_and_plot(tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "s.png"
    result = runner.invoke(app, ["slot-compare", "--max-tokens", "1025", "--no-batch-variant", "--flips", "2",
                                 "--workers", "1", "--sweep", "steps=0,2", "--plot", str(png), "--format", "json",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [v["key"] for v in data["variants"]] == ["scored_window", "context_window"]
    assert len(data["sweep"]) == 2 and png.stat().st_size > 0


@pytest.mark.parametrize("args, needle", [
    (["--set", "mask=context"], "not allowed"),
    (["--set", "stepz=3"], "did you mean 'steps'"),
    (["--set", "steps"], "--set expects key=value"),
    (["--sweep", "momentum=1"], "--sweep expects"),
    (["--plot", "x.png"], "--plot needs --sweep"),
    (["--checkpoint", "/nonexistent.pt"], "--checkpoint: /nonexistent.pt: not found"),
    (["--tokens", "/nonexistent.bin"], "nonexistent"),
])
def test_bad_inputs_exit_2_with_one_line(args, needle):
    result = runner.invoke(app, ["slot-compare", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[demo]")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
