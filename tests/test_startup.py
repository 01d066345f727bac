"""Start-up: commands that need no model never import torch (nor scipy where avoidable), and
every help page reads well at 80 columns.

Each case runs the CLI in a fresh interpreter (imports are per process) through a wrapper that
invokes the Typer app and then reports which heavy modules ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRACK = REPO / "tests" / "fixtures" / "report" / "tree" / "track_10min_16mb"
LEGAL = TRACK / "2026-01-05_Better"  # a records folder with code and logs, no .ptz
BASELINE = TRACK / "2026-01-01_Baseline"

WRAPPER = """
import json, sys
from golf_audit.cli import app
code = 0
try:
    app(sys.argv[1:], prog_name="golf-audit")
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "scipy", "reference_model.model") if m in sys.modules)
sys.stderr.write("\\nMODULES " + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


def run_cli(*args: str, columns: int = 80) -> tuple[int, str, str, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS=str(columns))
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    marker = [line for line in proc.stderr.splitlines() if line.startswith("MODULES ")]
    assert marker, proc.stderr
    info = json.loads(marker[-1][len("MODULES "):])
    stderr = proc.stderr[: proc.stderr.rfind("\nMODULES ")]
    return info["code"], proc.stdout, stderr, info["heavy"]


@pytest.mark.parametrize("args", [["--help"], ["checks"], ["checks", "GA-SIZE-001"], ["checks", "--format", "json"]])
def test_help_and_checks_import_neither_torch_nor_scipy(args):
    code, out, err, heavy = run_cli(*args)
    assert code == 0, err
    assert heavy == [], f"{args} imported {heavy}"
    if args[0] == "checks":
        assert "GA-SIZE-001" in out  # the listing works, not just the import


@pytest.mark.parametrize("args", [
    ["significance", "--values", "1.20,1.21,1.19", "--ratio", "0.5923", "--baseline-mean", "1.25"],
    ["significance", str(LEGAL), "--baseline", str(BASELINE)],
    ["report", str(LEGAL)],
    ["report", str(LEGAL), "--baseline", str(BASELINE), "--format", "json"],
    ["artifact", str(LEGAL)],
])
def test_folder_commands_without_a_ptz_do_not_import_torch(args):
    code, out, err, heavy = run_cli(*args)
    assert code in (0, 1), err  # a verdict, not bad input
    assert out.strip(), "the report must still be produced"
    assert "torch" not in heavy and "reference_model.model" not in heavy, f"{args} imported {heavy}"


def test_report_on_a_real_record_with_a_tokenizer_does_not_import_torch(shared_dir):
    """The byte-accounting checks read the tokenizer through the torch-free canonical byte count."""
    folder = shared_dir / "records" / "track_10min_16mb" / "2026-04-27_SmearGateBOSFix_PR1787Base_LQERAsym_PhasedTTT"
    if not folder.is_dir():
        pytest.skip("record not in ../shared")
    code, out, err, heavy = run_cli("report", str(folder), "--format", "json")
    assert code in (0, 1), err
    assert '"GA-BPB-001"' in out  # the byte checks ran
    assert "torch" not in heavy and "reference_model.model" not in heavy, heavy


def test_refused_value_needs_no_torch():
    code, out, err, heavy = run_cli("significance", "--ratio", "-1", "--values", "1.2", "--baseline-mean", "1.3")
    assert code == 2 and "--ratio" in err and out == ""
    assert "torch" not in heavy


COMMANDS = ["causality", "slot-compare", "eval", "artifact", "significance", "report", "checks", "pr"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_readable_at_80_columns(command):
    args = ["--help"] if command is None else [command, "--help"]
    code, out, err, _ = run_cli(*args)
    assert code == 0, err
    lines = out.splitlines()
    assert lines and lines[0].startswith("Usage: golf-audit")
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, too_long
    for junk in ("<bool>", "<list[", "{evaluators}", "╭"):
        assert junk not in out, f"{junk!r} in {command} --help"


def test_command_list_is_not_cut_off():
    _, out, _, _ = run_cli("--help")
    # Click would cut each summary at ~45 characters with "..."; every summary is whole.
    commands = out[out.index("Commands:"):]
    assert "..." not in commands
    for command in COMMANDS:
        assert f"  {command} " in out


def test_evaluator_names_are_listed_in_the_help_that_needs_them():
    from reference_model.evaluate import REGISTRY

    for command in ("eval", "causality"):
        _, out, _, _ = run_cli(command, "--help", columns=200)
        assert all(name in out for name in REGISTRY), out


def test_readme_opens_with_the_two_commands_and_lists_every_command():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    # An optional venv / CPU torch line, then: install + the causality self-test, install + the tests.
    commands = block[1:] if "venv" in block[0] else block
    assert commands[0].split("#")[0].strip() == "python3 -m pip install -e . && golf-audit causality"
    assert commands[1].split("#")[0].strip() == "python3 -m pip install -e '.[test,plot]' && python3 -m pytest"
    assert "cpu" in block[0] and text.index("venv") < text.index("golf-audit causality")
    table = text.split("## Commands", 1)[1]
    for command in COMMANDS:
        assert f"`golf-audit {command}" in table, command
