"""golf_audit.source: static wrapper decoding and code-dependency discovery (never executes)."""

from __future__ import annotations

import base64
import lzma
import zlib
from pathlib import Path

import pytest

from golf_audit import source
from golf_audit.errors import BadInput
from golf_audit.source import code_dependencies, decode_wrapper, load_source, scan_dependencies

INNER = "import os\nprint('hello from inside')\n"


def b85_lzma(text: str) -> str:
    return base64.b85encode(lzma.compress(text.encode())).decode()


def b64_zlib(text: str) -> str:
    return base64.b64encode(zlib.compress(text.encode())).decode()


@pytest.mark.parametrize(
    "wrapper",
    [
        f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{b85_lzma(INNER)}")))\n',
        f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{b85_lzma(INNER)}")).decode())\n',
        f'from lzma import decompress as D\nfrom base64 import b85decode\nexec(D(b85decode(b"{b85_lzma(INNER)}")))\n',
        f'exec(__import__("lzma").decompress(__import__("base64").b85decode("{b85_lzma(INNER)}")))\n',
        f'import zlib, base64\ns = "{b64_zlib(INNER)}"\nexec(compile(zlib.decompress(base64.b64decode(s)), "x", "exec"))\n',
        # split blob, concatenated
        f'import zlib, base64\na = "{b64_zlib(INNER)[:10]}"\nb = a + "{b64_zlib(INNER)[10:]}"\nexec(zlib.decompress(base64.b64decode(b)))\n',
    ],
)
def test_decode_wrapper_variants(wrapper: str) -> None:
    assert decode_wrapper(wrapper) == INNER


def test_decode_wrapper_raw_lzma_filters() -> None:
    filters = [{"id": lzma.FILTER_LZMA2}]
    blob = base64.b85encode(lzma.compress(INNER.encode(), format=lzma.FORMAT_RAW, filters=filters)).decode()
    text = (
        "import lzma as L,base64 as B\n"
        f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n'
    )
    assert decode_wrapper(text) == INNER


@pytest.mark.parametrize(
    "text",
    [
        "print('plain script')\n",
        "exec('print(1)')\n",  # exec without any decoder is not a wrapper
        'exec(__import__("os").system("touch /tmp/golf_audit_pwned"))\n',
        'import lzma, os\nexec(lzma.decompress(os.popen("id").read()))\n',
        "def f(:\n",  # unparseable text is simply not a wrapper
    ],
)
def test_not_a_wrapper_and_never_executed(text: str, tmp_path: Path) -> None:
    assert decode_wrapper(text) is None
    assert not Path("/tmp/golf_audit_pwned").exists()


def test_corrupt_wrapper_is_bad_input() -> None:
    with pytest.raises(BadInput, match="corrupt"):
        decode_wrapper('import lzma,base64\nexec(lzma.decompress(base64.b85decode("VPaz-")))\n')


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "MAX_DECODED_BYTES", 1000)
    text = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{b85_lzma("#" * 5000)}")))\n'
    with pytest.raises(BadInput, match="exceeds"):
        decode_wrapper(text)


def test_load_source_peels_nested_layers(tmp_path: Path) -> None:
    layer1 = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{b85_lzma(INNER)}")))\n'
    layer2 = f'import zlib,base64\nexec(zlib.decompress(base64.b64decode("{b64_zlib(layer1)}")))\n'
    script = tmp_path / "train_gpt.py"
    script.write_text(layer2)
    loaded = load_source(script)
    assert loaded.layers == 2 and loaded.is_wrapper
    assert loaded.effective == INNER and loaded.text == layer2
    assert loaded.raw == layer2.encode() and loaded.min_python is None


def test_load_source_plain(tmp_path: Path) -> None:
    script = tmp_path / "train_gpt.py"
    script.write_text(INNER)
    loaded = load_source(script)
    assert (loaded.layers, loaded.effective, loaded.min_python) == (0, INNER, None)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"\xff\xfe not utf8", "not UTF-8"), (b"def f(:\n    pass\n", "not valid Python"), (b"x = 1\x00\n", "cannot be parsed|not valid Python")],
)
def test_load_source_bad_input(tmp_path: Path, content: bytes, match: str) -> None:
    script = tmp_path / "train_gpt.py"
    script.write_bytes(content)
    with pytest.raises(BadInput, match=match):
        load_source(script)


def test_load_source_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_source(tmp_path / "nope.py")
    with pytest.raises(BadInput, match="not a file"):
        load_source(tmp_path)


@pytest.mark.skipif(__import__("sys").version_info >= (3, 12), reason="parses natively on 3.12+")
def test_pep701_fstring_needs_312(tmp_path: Path) -> None:
    inner = 'x = {"a": 1}\nprint(f"{x["a"]}")\n'
    script = tmp_path / "train_gpt.py"
    script.write_text(f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{b85_lzma(inner)}")))\n')
    loaded = load_source(script)
    assert loaded.min_python == (3, 12) and loaded.layers == 1 and loaded.effective == inner


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "kern").mkdir()
    (tmp_path / "helper.py").write_text("import helper2\n")
    (tmp_path / "helper2.py").write_text("Z = 3\n")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub.py").write_text("")
    (tmp_path / "kern" / "k.cu").write_text('#include "k.cuh"\n')
    (tmp_path / "kern" / "k.cuh").write_text("// header\n")
    (tmp_path / "extra.txt").write_text("Y = 2\n")
    (tmp_path / "tokenizer.model").write_bytes(b"\x00" * 100)  # data, never code
    return tmp_path


BODY = """import os, torch, helper
from pkg import sub
from pathlib import Path
from torch.utils.cpp_extension import load
HERE = os.path.dirname(os.path.abspath(__file__))
exec(open(os.path.join(HERE, "extra.txt")).read())
mod = load(name="k", sources=[os.path.join(HERE, "kern", "k.cu")])
sp = open(Path(__file__).parent / "tokenizer.model", "rb").read()
cu = open(f"{HERE}/missing.cu").read()
"""


def _by_name(files: list) -> dict[str, tuple[str, int | None]]:
    return {f.path.name: (f.how, f.line) for f in files}


def test_code_dependencies_plain(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "train_gpt.py").write_text(BODY)
    scan = scan_dependencies(root / "train_gpt.py")
    assert _by_name(scan.files) == {
        "train_gpt.py": ("entry", None),
        "helper.py": ("import", 1),
        "helper2.py": ("import", 1),
        "__init__.py": ("import", 2),
        "sub.py": ("import", 2),
        "extra.txt": ("exec", 6),
        "k.cu": ("extension", 7),
        "k.cuh": ("include", 1),
    }
    assert [m.path.name for m in scan.missing] == ["missing.cu"]
    assert scan.total_bytes == sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and f.suffix != ".model")
    assert not any(f.in_wrapper for f in scan.files)


def test_code_dependencies_through_wrapper(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    wrapper = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{b85_lzma(BODY)}")))\n'
    (root / "train_gpt.py").write_text(wrapper)
    files = code_dependencies(root / "train_gpt.py")
    assert files[0].how == "entry" and files[0].size == len(wrapper.encode())  # the wrapper's bytes count
    names = _by_name(files)
    assert names["extra.txt"] == ("exec", 6) and names["k.cu"] == ("extension", 7)
    assert next(f for f in files if f.path.name == "helper.py").in_wrapper


def test_code_dependencies_no_local_files(tmp_path: Path) -> None:
    (tmp_path / "train_gpt.py").write_text("import torch, numpy as np\nopen('data.bin', 'rb')\n")
    files = code_dependencies(tmp_path / "train_gpt.py")
    assert [f.how for f in files] == ["entry"]


def test_code_dependencies_unparseable_dependency_is_noted(tmp_path: Path) -> None:
    (tmp_path / "train_gpt.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_bytes(b"\xff\xfe")
    scan = scan_dependencies(tmp_path / "train_gpt.py")
    assert [f.path.name for f in scan.files] == ["train_gpt.py", "helper.py"]
    assert scan.notes and "not UTF-8" in scan.notes[0]


# ------------------------------------------------------------------ fuzzing: only BadInput ever escapes

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

_PIECES = ["exec(", "compile(", "lzma.decompress(", "base64.b85decode(", "zlib.decompress(", "__import__('lzma')",
           ".decode()", "import lzma,base64\n", "from lzma import decompress as D\n", "x = ", "x", '"', "'", ")", ",",
           "+", "format=lzma.FORMAT_RAW", "filters=[{'id': lzma.FILTER_LZMA2}]", b85_lzma("print(1)"), "VPaz-", "\n"]  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs.lists(hs.one_of(hs.sampled_from(_PIECES), hs.text(max_size=6)), max_size=25).map("".join))
def test_decode_wrapper_fuzz(text: str) -> None:
    try:
        result = decode_wrapper(text)
    except BadInput:
        return
    assert result is None or isinstance(result, str)


# --- hidden code, everywhere it hides (issue 13) ---------------------------------------------------


def test_minified_imports_after_a_colon_are_found_even_without_a_parse(tmp_path: Path) -> None:
    from golf_audit.source import scan_dependencies

    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "kern.py").write_text("Y = 2\n")
    # A PEP 701 f-string (nested quotes) does not parse before 3.12: the tolerant text scan
    # still finds imports after ":" and ";" on any line, never silently counting one file.
    text = 'import os\nif os.environ.get("A"):import helper\nx=1;import kern\nprint(f"{"nested"}")\n'
    (tmp_path / "train_gpt.py").write_text(text)
    scan = scan_dependencies(tmp_path / "train_gpt.py")
    assert {f.path.name for f in scan.files} == {"train_gpt.py", "helper.py", "kern.py"}


def test_computed_exec_stub_and_compiled_sources(tmp_path: Path) -> None:
    from golf_audit.source import scan_dependencies

    (tmp_path / "train_gpt.py").write_text(
        'import os\nexec(open(os.path.join(os.path.dirname(__file__),"impl")).read())\n')
    (tmp_path / "impl").write_text(
        "import subprocess\nfrom pathlib import Path\nfrom torch.utils.cpp_extension import load\n"
        "HERE = Path(__file__).resolve().parent\nSRC = HERE / 'k.c'\n"
        "subprocess.run(['gcc', '-shared', str(SRC), '-o', str(HERE / 'libk.so')])\n"
        "ext = load(name='e', sources=[str(HERE / 'op.cu')])\n")
    (tmp_path / "k.c").write_text("int f(void) { return 1; }\n")
    (tmp_path / "op.cu").write_text("__global__ void g() {}\n")
    scan = scan_dependencies(tmp_path / "train_gpt.py")
    found = {f.path.name: f.how for f in scan.files}
    assert found == {"train_gpt.py": "entry", "impl": "exec", "k.c": "source", "op.cu": "extension"}
