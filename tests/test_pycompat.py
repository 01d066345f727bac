"""The PEP 701 f-string downgrade: 3.12-only f-strings become 3.11 code with the same value and lines."""

from __future__ import annotations

import ast
import glob
import subprocess
import sys
from pathlib import Path

import pytest

from golf_audit.pycompat import DowngradeError, downgrade_source

# Each case parses only on 3.12 (or is a plain f-string that must keep working).
CASES = [
    'x = f"{d["a"]!r}"\n',
    'x = f"a{b}c{{d}}e{f:>{w}.{p}f}"\n',
    "x = f'{b=}' 'tail' f\"{w!s:10}\"\n",
    'x = f"""line1 {b}\nline2 {d["k"]}\n"""\ny = 1\n',
    'x = f"{\'\\n\'.join(xs)}"\n',
    'x = (f"{b}"\n     f"{w}" # c\n     "c")\n',
    'x = f"{b!r}" + rf"\\d{w}"\n',
    'x = f"{b if b != w else p}" f"{ {1: 2}[1] }"\n',
    'x = f"{f"{b}"}"\n',
    'x = f"{len(xs) = }" if True else ""\n',
    'x = f"{b:{w}}|{p:^{w}}"\n',
]
NS = {"d": {"a": 1, "k": 2}, "b": 2, "f": 3.14159, "w": 8, "p": 2, "xs": ["a", "b"]}


def _value(source: str) -> object:
    ns = dict(NS)
    exec(compile(source, "<case>", "exec"), ns)  # noqa: S102 - test inputs written above
    return ns["x"]


@pytest.mark.parametrize("case", CASES)
def test_downgraded_code_parses_here_keeps_lines_and_values(case: str) -> None:
    out = downgrade_source(case)
    ast.parse(out)
    assert out.count("\n") == case.count("\n"), "line numbers must not move"
    try:
        ast.parse(case)
    except SyntaxError:
        return  # 3.12-only: the 3.12 comparison below covers its value
    assert _value(out) == _value(case)


def _python312() -> str | None:
    found = sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3")) + sorted(glob.glob("/usr/bin/python3.12"))
    return found[0] if found else None


@pytest.mark.skipif(_python312() is None, reason="no Python 3.12 interpreter to compare with")
def test_values_equal_what_python_312_computes() -> None:
    py312 = _python312()
    for case in CASES:
        prog = f"NS = {NS!r}\nglobals().update(NS)\n{case}\nprint(repr(x))\n"
        want = subprocess.run([py312, "-c", prog], capture_output=True, text=True, check=True).stdout
        got = repr(_value(downgrade_source(case))) + "\n"
        assert got == want, case


def test_source_without_fstrings_is_unchanged() -> None:
    text = 'a = "x" "y"\nb = r"\\d"  # f"{no}"\nc = \'\'\'{}\'\'\'\n'
    assert downgrade_source(text) == text


def test_unterminated_input_is_an_error_not_a_guess() -> None:
    with pytest.raises(DowngradeError):
        downgrade_source('x = f"{a\n')


def test_the_real_312_only_records_parse_with_the_same_structure(shared_dir: Path) -> None:
    from golf_audit.source import load_source

    scripts = [p for p in sorted(shared_dir.rglob("train*.py")) if load_source(p).min_python]
    assert len(scripts) >= 5
    for p in scripts:
        src = load_source(p).effective
        out = downgrade_source(src)
        tree = ast.parse(out)
        assert out.count("\n") == src.count("\n")
        assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)], p


def test_dependency_scan_of_312_code_uses_the_downgraded_tree(tmp_path: Path) -> None:
    """A PEP 701 script's imports are found by the ast scan (through the downgrade), not the text fallback."""
    from golf_audit.source import scan_dependencies

    (tmp_path / "helper_mod.py").write_text("X = 1\n", encoding="utf-8")
    (tmp_path / "kernel.cpp").write_text("int f() { return 1; }\n", encoding="utf-8")
    script = tmp_path / "train_gpt.py"
    script.write_text('d = {"k": 1}\nmsg = f"{d["k"]}"\n'
                      'def load():\n    import helper_mod; return helper_mod.X\n'
                      'src = open("kernel.cpp").read()\n', encoding="utf-8")
    with pytest.raises(SyntaxError):
        ast.parse(script.read_text(encoding="utf-8"))
    scan = scan_dependencies(script)
    names = sorted(f.path.name for f in scan.files)
    assert names == ["helper_mod.py", "kernel.cpp", "train_gpt.py"], (names, scan.notes)
    assert not any("scanned as text" in n for n in scan.notes), scan.notes
