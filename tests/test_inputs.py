"""Every invalid value is refused: one line on stderr, exit 2, nothing on stdout.

One parametrized case per refused value and command; the library checks behind them
(``golf_audit.inputs``) are tested directly below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from golf_audit.cli import app
from golf_audit.errors import BadInput, one_line
from golf_audit.inputs import (ANY, FOLDER, Bounds, evaluator_settings, existing, interpreter,
                               number, output_file)

REPO = Path(__file__).resolve().parents[1]
TRACK = REPO / "tests" / "fixtures" / "report" / "tree" / "track_10min_16mb"
RECORD = TRACK / "2026-01-05_Better"
SCRIPT = REPO / "tests" / "fixtures" / "scripts" / "sliding_legal.py"
runner = CliRunner()

# Messages of typer's own parser (a value of the wrong type) are longer than ours; the rest
# must fit in 100 characters (paths of the test's tmp folder aside).
CLICK = "Invalid value for"


def _refused(args: list[str], needle: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 2, (args, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("[demo]")]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("golf-audit: ") and needle in line, (needle, line)
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr
    short = line.replace(str(tmp_path), "T").replace(str(REPO), "R")
    if CLICK not in line and "No such option" not in line and "known:" not in line:  # a list is worth its length
        assert len(short) <= 100, short


@pytest.fixture()
def paths(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file.txt").write_text("x", encoding="utf-8")
    (tmp_path / "tok.model").write_bytes(b"not really a model")
    return {"dir": str(tmp_path / "a_dir"), "file": str(tmp_path / "a_file.txt"), "tok": str(tmp_path / "tok.model"),
            "missing": str(tmp_path / "missing.model"), "inside_file": str(tmp_path / "a_file.txt" / "out.txt")}


EVAL = [
    (["--tokenizer", "{missing}"], "--tokenizer: {missing}: not found"),
    (["--tokenizer", "{tok}"], "--tokenizer needs --tokens"),
    (["--tokenizer", "{dir}"], "--tokenizer: {dir}: is a directory, expected a file"),
    (["--checkpoint", "{dir}"], "--checkpoint: {dir}: is a directory, expected a file"),
    (["--checkpoint", "{missing}"], "--checkpoint: {missing}: not found"),
    (["--tokens", "{dir}"], "--tokens: {dir}: is a directory"),
    (["-e", "slot", "--set", "lr=nan"], "--set lr=nan: must be a finite number"),
    (["-e", "slot", "--set", "lr=inf"], "--set lr=inf: must be a finite number"),
    (["-e", "slot", "--set", "lr=-1"], "--set lr=-1: must be >= 0"),
    (["-e", "slot", "--set", "eps=0"], "--set eps=0: must be > 0"),
    (["-e", "slot", "--set", "betas=0.9,1.5"], "--set betas=0.9,1.5: must be in [0, 1)"),
    (["-e", "slot", "--set", "steps=-1"], "steps"),
    (["-e", "slot", "--set", "wd=-0.1"], "--set wd=-0.1: must be >= 0"),
    (["-e", "ttt", "--set", "momentum=1"], "--set momentum=1: must be in [0, 1)"),
    (["-e", "ttt", "--set", "freeze_blocks=-1"], "--set freeze_blocks=-1: must be >= 0"),
    (["-e", "ttt", "--set", "grad_clip=nan"], "--set grad_clip=nan: must be a finite number"),
    (["-e", "ngram_target", "--set", "weight=2"], "--set weight=2: must be in [0, 1]"),
    (["-e", "unnormalized", "--set", "boost=-0.5"], "--set boost=-0.5: must be >= 0"),
    (["-e", "sliding", "--set", "seq_len=-5"], "--set seq_len=-5: must be >= 0"),
    (["-e", "slot", "--set", "lrr=1"], "--set lrr: slot has no such setting; did you mean 'lr'"),
    (["-e", "slot", "--set", "zzz=1"], "known: mask, delta"),
    (["-e", "slott"], "unknown evaluator 'slott'; did you mean 'slot'"),
    (["--max-tokens", "1"], "--max-tokens must be >= 2, got 1"),
    (["--output", "{dir}"], "--output: {dir}: is a directory, expected a file name"),
    (["--output", "{inside_file}"], "is a file, so"),
    (["--format", "pdf"], CLICK + " '--format'"),
    (["--max-tokens", "many"], CLICK + " '--max-tokens'"),
    (["--flips", "3"], "No such option: --flips"),
]

CAUSALITY = [
    (["--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--flips", "0"], "--flips must be >= 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--tolerance", "nan"], "--tolerance must be a finite number, got nan"),
    (["--tolerance", "-1e-9"], "--tolerance must be >= 0"),
    (["--norm-tolerance", "inf"], "--norm-tolerance must be a finite number, got inf"),
    (["--stream-tokens", "2"], "--stream-tokens must be >= 3, got 2"),
    (["--stream-tokens", "5"], "--stream-tokens 5: standard needs >= 65 (two windows of 32 at stride 32)"),
    (["--stream-tokens", "40", "-e", "slot"], "--stream-tokens 40: slot needs >= 41 (two windows of 32 at stride 8)"),
    (["-e", "slot", "--set", "lr=nan"], "--set lr=nan: must be a finite number"),
    (["--set", "mask=context"], "--set needs --evaluator"),
    (["--tokenizer", "{missing}"], "--tokenizer: {missing}: not found"),
    (["--inline", "if args.slot"], "--inline needs TARGET"),
    (["--python", "python3"], "--python needs TARGET"),
    (["{missing}"], "no such script"),
    ([str(SCRIPT), "--checkpoint", "{file}"], "--checkpoint does not apply to TARGET"),
    ([str(SCRIPT), "-e", "slot"], "--evaluator does not apply to TARGET"),
    ([str(SCRIPT), "--python", "no-such-python-3.99"], "--python: no such interpreter: no-such-python-3.99"),
    ([str(SCRIPT), "--python", "{dir}"], "is a directory, expected a Python interpreter"),
    ([str(SCRIPT), "--adapter", "{missing}"], "--adapter: {missing}: not found"),
    ([str(SCRIPT), "--function", " "], "--function: empty value"),
    ([str(SCRIPT), "--inline", ""], "--inline: empty value"),
    (["--output", "{dir}"], "--output: {dir}: is a directory"),
    (["--workers", "two"], CLICK + " '--workers'"),
]

SIGNIFICANCE = [
    (["--ratio", "-1", "--values", "1.2,1.21", "--baseline-mean", "1.25"], "--ratio must be > 0, got -1"),
    (["--ratio", "0", "--values", "1.2,1.21", "--baseline-mean", "1.25"], "--ratio must be > 0, got 0"),
    (["--ratio", "nan", "--values", "1.2,1.21", "--baseline-mean", "1.25"], "--ratio must be a finite number"),
    (["--values", "1.2,1.21", "--baseline-mean", "-1"], "--baseline-mean must be > 0, got -1"),
    (["--values", "1.2,1.21", "--baseline-mean", "1.3", "--baseline-ratio", "inf"], "--baseline-ratio must be a finite"),
    (["--values", "1.2,nan", "--baseline-mean", "1.3"], "--values: 'nan' is not a bpb value"),
    (["--values", "1.2,-1", "--baseline-mean", "1.3"], "--values: '-1' is not a bpb value"),
    (["--values", "1.2,abc", "--baseline-mean", "1.3"], "--values: 'abc' is not a number"),
    (["--values", ",", "--baseline-mean", "1.3"], "--values: no number given"),
    (["--values", "1.2", "--baseline-values", "0", "--ratio", "0.6"], "--baseline-values: '0' is not a bpb value"),
    (["{missing}", "--baseline-mean", "1.3"], "CANDIDATE: {missing}: no such folder"),
    (["{file}", "--baseline-mean", "1.3"], "CANDIDATE: {file}: not a folder (a file)"),
    ([str(RECORD), "--baseline", "{missing}"], "--baseline: {missing}: no such folder"),
    (["--all", "{file}"], "--all: {file}: not a folder"),
    (["--all", str(TRACK), "--baseline-mean", "1.2"], "--baseline-mean does not apply with --all"),
    (["--values", "1.2", "--baseline-mean", "1.3", "--output", "{dir}"], "--output: {dir}: is a directory"),
    (["--values", "1.2", "--baseline-mean", "x"], CLICK + " '--baseline-mean'"),
]

SLOT_COMPARE = [
    (["--sweep", "lr=nan"], "--sweep lr=nan: must be a finite number"),
    (["--sweep", "lr=inf"], "--sweep lr=inf: must be a finite number"),
    (["--set", "lr=-1"], "--set lr=-1: must be >= 0"),
    (["--set", "betas=1,0.9"], "--set betas=1,0.9: must be in [0, 1)"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--flips", "-1"], "--flips must be >= 0, got -1"),
    (["--seed", "-3"], "--seed must be >= 0, got -3"),
    (["--max-tokens", "1"], "--max-tokens must be 0 (all) or >= 2, got 1"),
    (["--sweep", "steps=1,2", "--plot", "{dir}"], "--plot: {dir}: is a directory"),
    (["--tokenizer", "{missing}"], "--tokenizer: {missing}: not found"),
]

ARTIFACT = [
    (["{missing}"], "FOLDER: {missing}: no such folder"),
    (["{file}"], "FOLDER: {file}: not a folder (a file)"),
    ([str(RECORD), "--output", "{dir}"], "--output: {dir}: is a directory"),
]

REPORT = [
    (["{missing}"], "FOLDER: {missing}: no such folder"),
    (["{file}"], "FOLDER: {file}: not a folder (a file)"),
    ([str(RECORD), "--baseline", "{file}"], "--baseline: {file}: not a folder (a file)"),
    ([str(RECORD), "--python", "python3"], "--python needs --dynamic"),
    ([str(RECORD), "--dynamic", "--python", "no-such-python-3.99"], "--python: no such interpreter"),
    ([str(TRACK), "--recursive", "--baseline", str(RECORD)], "--baseline does not apply with --recursive"),
    ([str(RECORD), "--check", "GA-NOPE-001"], "unknown check"),
    ([str(RECORD), "--fail-on", "fatal"], CLICK + " '--fail-on'"),
    ([str(RECORD), "--output", "{dir}"], "--output: {dir}: is a directory"),
]

CHECKS = [
    ([""], "CHECK_ID: empty"),
    (["GA-NOPE-001"], "unknown check"),
    (["--output", "{dir}"], "--output: {dir}: is a directory"),
]

CASES = [(command, args, needle) for command, table in
         (("eval", EVAL), ("causality", CAUSALITY), ("significance", SIGNIFICANCE), ("slot-compare", SLOT_COMPARE),
          ("artifact", ARTIFACT), ("report", REPORT), ("checks", CHECKS))
         for args, needle in table]


@pytest.mark.parametrize("command,args,needle", CASES, ids=[f"{c}:{' '.join(a)}" for c, a, _ in CASES])
def test_refused_with_one_line_and_exit_2(command, args, needle, paths, tmp_path):
    fill = lambda text: text.format(**paths) if "{" in text and "}" in text and "{0" not in text else text  # noqa: E731
    _refused([command, *[fill(a) for a in args]], fill(needle), tmp_path)


def test_usage_errors_are_one_line_too():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("golf-audit: No such command"), result.stderr


# ------------------------------------------------------------------------------ the library checks


def test_existing_paths(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert existing(f, "--x") == f and existing(None, "--x") is None
    assert existing(tmp_path, "--x", FOLDER) == tmp_path and existing(f, "--x", ANY) == f
    with pytest.raises(BadInput, match=r"^--x: .*: not found$"):
        existing(tmp_path / "nope", "--x")
    with pytest.raises(BadInput, match="is a directory, expected a file"):
        existing(tmp_path, "--x")
    with pytest.raises(BadInput, match="empty path"):
        existing("", "--x")
    with pytest.raises(BadInput, match=r"not a folder \(a file\)"):
        existing(f, "--x", FOLDER)
    with pytest.raises(BadInput, match="no such folder"):
        existing(tmp_path / "nope", "--x", FOLDER)


def test_output_file(tmp_path):
    assert output_file(tmp_path / "new" / "deeper" / "r.md") is not None  # parents are created on write
    with pytest.raises(BadInput, match="is a directory"):
        output_file(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="is a file, so"):
        output_file(tmp_path / "f" / "r.md")


def test_interpreter(tmp_path):
    assert interpreter("python3") == "python3" and interpreter(None) is None
    with pytest.raises(BadInput, match="no such interpreter"):
        interpreter(str(tmp_path / "python9"))
    with pytest.raises(BadInput, match="empty interpreter"):
        interpreter(" ")


@pytest.mark.parametrize("value,kwargs,ok", [
    (0, {"minimum": 0}, True), (-1, {"minimum": 0}, False), (0.0, {"above": 0}, False), (1e-12, {"above": 0}, True),
    (float("nan"), {}, False), (float("inf"), {"minimum": 0}, False), (float("-inf"), {}, False),
    (5, {"maximum": 5}, True), (5, {"below": 5}, False), (None, {"minimum": 1}, True),
])
def test_number(value, kwargs, ok):
    if ok:
        assert number(value, "--v", **kwargs) == value or value is None
    else:
        with pytest.raises(BadInput, match="^--v must be"):
            number(value, "--v", **kwargs)


def test_bounds_describe_and_admit():
    unit_open = Bounds(0, 1, high_open=True)
    assert unit_open.describe() == "in [0, 1)" and unit_open.admits(0) and not unit_open.admits(1)
    assert Bounds(0, low_open=True).describe() == "> 0" and not Bounds(0, low_open=True).admits(0)
    assert Bounds(1).describe() == ">= 1" and Bounds(1).admits(1)


def test_evaluator_settings_accepts_the_defaults_of_every_evaluator():
    from reference_model.evaluate import REGISTRY

    for name in REGISTRY:
        assert evaluator_settings(name, {}).name == name
    assert evaluator_settings("slot", {"lr": "0", "mask": "context"}).settings.lr == 0.0  # 0 is a legal control


def test_one_line_says_cannot_conclude_once():
    text = one_line(ValueError("cannot conclude: eval_val: cannot conclude:\n nondeterministic\n  (2 runs)"))
    assert text == "cannot conclude: eval_val: nondeterministic (2 runs)"


def test_stderr_messages_are_never_wrapped(capsys):
    from golf_audit.output import stderr_console

    message = "causality: cannot conclude: " + "x" * 200
    stderr_console.print(message, markup=False)
    assert capsys.readouterr().err == message + "\n"


def test_heartbeat_lines(capsys):
    import time

    from golf_audit.output import Heartbeat

    with Heartbeat("eval", total=4, unit="batches", interval=0.05) as beat:
        beat.tick()
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("eval: 1/4 batches (25%), 0m00s elapsed, ETA 0m00s") for line in lines), lines
    with Heartbeat("eval", total=None, unit="batches", interval=3600) as beat:
        beat.tick(3)
        assert beat.line() == "eval: 3 batches, 0m00s elapsed"
    assert capsys.readouterr().err == ""  # a step shorter than the interval prints nothing
