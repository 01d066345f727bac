"""Load a submission script's source statically: never executing a line of it.

Two jobs, both by reading the syntax tree only:

* :func:`load_source` peels self-extracting wrappers (``exec(lzma.decompress(base64.b85decode(
  "...")))`` and zlib/base64 variants, possibly nested or through a variable). Only the
  decode/decompress expression is evaluated, by a tiny interpreter that knows nothing but
  ``lzma``/``zlib``/``bz2``/``base64`` functions, literals and ``bytes.decode``/``str.encode``:
  no builtins, no ``exec``, no attribute access on anything else.
* :func:`code_dependencies` lists the entry script and every local file it loads at run time
  (imports of sibling modules, ``exec(open(...).read())``, code files opened by path, C++/CUDA
  extension sources), because the challenge counts *all* code bytes, not only ``train_gpt.py``.
"""

from __future__ import annotations

import ast
import base64
import functools
import bz2
import lzma
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import astmemo
from .errors import BadInput

# A decoded layer larger than this is treated as a decompression bomb, not as source code.
MAX_DECODED_BYTES = 64 * 1024 * 1024
# Wrappers of wrappers exist (minifier output wrapped again); more than this is adversarial.
MAX_LAYERS = 8

# Extensions of files that hold code when a script opens them (kernels, helper modules).
CODE_SUFFIXES = frozenset(
    {".py", ".pyx", ".pxd", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".cu", ".cuh",
     ".triton", ".ptx", ".cubin", ".so", ".metal", ".cl", ".ll", ".mlir"}
)  # fmt: skip


@dataclass
class LoadedSource:
    """A script as read from disk, and the innermost source it decodes to."""

    path: Path
    raw: bytes  # the file's bytes: what counts towards the artifact
    text: str  # the outermost source, UTF-8
    effective: str  # the fully decoded innermost source (== text when not a wrapper)
    layers: int  # how many self-extracting layers were peeled (0: plain script)
    min_python: tuple[int, int] | None  # e.g. (3, 12): does not parse on this interpreter because of newer syntax

    @property
    def is_wrapper(self) -> bool:
        return self.layers > 0


@dataclass
class CodeFile:
    """One file whose bytes count as code: the entry script or something it loads."""

    path: Path
    size: int  # bytes on disk
    how: str  # "entry", "import", "exec", "open", "extension", "include", "library", "source" (compiled)
    line: int | None  # line of the loading statement in ``via`` (None for the entry)
    via: Path | None  # the file whose code loads it (None for the entry)
    in_wrapper: bool = False  # found in the decoded body of a self-extracting ``via``


@dataclass
class DependencyScan:
    """Everything :func:`scan_dependencies` found, including what it could not resolve."""

    files: list[CodeFile]
    missing: list[CodeFile] = field(default_factory=list)  # referenced code files that do not exist (size 0)
    notes: list[str] = field(default_factory=list)  # files that could not be scanned, and why

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# --------------------------------------------------------------------------- wrappers


class _NotAWrapper(Exception):
    """The expression uses something the decode interpreter does not allow."""


def _bounded(decompressor: Any, data: bytes, what: str) -> bytes:
    try:
        out = decompressor.decompress(data, MAX_DECODED_BYTES + 1)
    except (lzma.LZMAError, zlib.error, OSError, ValueError, EOFError) as exc:
        raise BadInput(f"self-extracting wrapper: {what} data is corrupt ({exc})") from None
    if len(out) > MAX_DECODED_BYTES:
        raise BadInput(f"self-extracting wrapper: {what} output exceeds {MAX_DECODED_BYTES} bytes")
    return out


def _lzma_decompress(data: bytes, format: int = lzma.FORMAT_AUTO, memlimit: int | None = None, filters: Any = None) -> bytes:
    try:
        dec = lzma.LZMADecompressor(format=format, filters=filters)
    except (lzma.LZMAError, ValueError, TypeError) as exc:
        raise BadInput(f"self-extracting wrapper: bad lzma settings ({exc})") from None
    return _bounded(dec, data, "lzma")


def _zlib_decompress(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:
    try:
        dec = zlib.decompressobj(wbits)
    except (ValueError, zlib.error) as exc:
        raise BadInput(f"self-extracting wrapper: bad zlib settings ({exc})") from None
    return _bounded(dec, data, "zlib")


def _bz2_decompress(data: bytes) -> bytes:
    return _bounded(bz2.BZ2Decompressor(), data, "bz2")


def _checked_b(fn: Callable[..., bytes]) -> Callable[..., bytes]:
    def call(*args: Any, **kwargs: Any) -> bytes:
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise BadInput(f"self-extracting wrapper: {fn.__name__} failed ({exc})") from None

    return call


# The whole world the decode interpreter can see.
_DECODERS: dict[str, dict[str, Callable[..., bytes]]] = {
    "lzma": {"decompress": _lzma_decompress},
    "zlib": {"decompress": _zlib_decompress},
    "bz2": {"decompress": _bz2_decompress},
    "base64": {
        name: _checked_b(getattr(base64, name))
        for name in ("b85decode", "b64decode", "a85decode", "b32decode", "b16decode",
                     "urlsafe_b64decode", "standard_b64decode", "decodebytes")
    },  # fmt: skip
}


@dataclass(frozen=True)
class _Module:
    name: str


@dataclass(frozen=True)
class _BoundMethod:
    obj: Any
    name: str


_IMPORT = object()  # stands for the builtin ``__import__``


def _module_constant(module: str, attr: str) -> Any:
    # Integer flags such as lzma.FORMAT_RAW / lzma.FILTER_LZMA2 / zlib.MAX_WBITS.
    if module in ("lzma", "zlib") and attr.isupper():
        value = getattr(lzma if module == "lzma" else zlib, attr, None)
        if isinstance(value, int):
            return value
    raise _NotAWrapper(f"{module}.{attr}")


class _DecodeInterpreter:
    """Evaluates one decode expression with only the decoders above in scope."""

    def __init__(self, aliases: dict[str, Any], assigns: dict[str, list[tuple[int, ast.expr]]], before_line: int):
        self.aliases = aliases
        self.assigns = assigns
        self.before_line = before_line
        self.decoder_calls = 0
        self._depth = 0

    def eval(self, node: ast.AST) -> Any:
        self._depth += 1
        try:
            if self._depth > 200:
                raise _NotAWrapper("expression too deep")
            return self._eval(node)
        finally:
            self._depth -= 1

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes, int, bool, type(None))):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.eval(node.value)
            if isinstance(base, _Module):
                if node.attr in _DECODERS[base.name]:
                    return _DECODERS[base.name][node.attr]
                return _module_constant(base.name, node.attr)
            if isinstance(base, (str, bytes)) and node.attr in ("decode", "encode", "strip"):
                return _BoundMethod(base, node.attr)
            raise _NotAWrapper(f".{node.attr}")
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is type(right) and isinstance(left, (str, bytes)):
                return left + right
            raise _NotAWrapper("+ on non-strings")
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(e) for e in node.elts]
        if isinstance(node, ast.Dict) and None not in node.keys:
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        raise _NotAWrapper(type(node).__name__)

    def _name(self, name: str) -> Any:
        if name in self.aliases:
            return self.aliases[name]
        if name == "__import__":
            return _IMPORT
        # The last simple assignment to this name above the exec: `blob = "..."; exec(...(blob))`.
        candidates = [expr for line, expr in self.assigns.get(name, []) if line < self.before_line]
        if candidates:
            return self.eval(candidates[-1])
        raise _NotAWrapper(name)

    def _call(self, node: ast.Call) -> Any:
        fn = self.eval(node.func)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _NotAWrapper("* / ** arguments")
        args = [self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords}
        if fn is _IMPORT:
            if len(args) == 1 and args[0] in _DECODERS and not kwargs:
                return _Module(args[0])
            raise _NotAWrapper("__import__ of a module outside the decoders")
        if isinstance(fn, _BoundMethod):
            if fn.name == "decode" and isinstance(fn.obj, bytes):
                try:
                    return fn.obj.decode(*args, **kwargs)
                except (UnicodeDecodeError, LookupError, TypeError) as exc:
                    raise BadInput(f"self-extracting wrapper: decoded bytes are not text ({exc})") from None
            if fn.name == "encode" and isinstance(fn.obj, str) and all(isinstance(a, str) for a in args):
                try:
                    return fn.obj.encode(*args, **kwargs)
                except (UnicodeEncodeError, LookupError, TypeError) as exc:
                    raise BadInput(f"self-extracting wrapper: cannot encode ({exc})") from None
            if fn.name == "strip" and not args and not kwargs:
                return fn.obj.strip()
            raise _NotAWrapper(f".{fn.name}()")
        if callable(fn) and any(fn is f for funcs in _DECODERS.values() for f in funcs.values()):
            self.decoder_calls += 1
            try:
                return fn(*args, **kwargs)
            except TypeError as exc:
                raise _NotAWrapper(f"bad call ({exc})") from None
        raise _NotAWrapper("call of something that is not a decoder")


def _decoder_aliases(tree: ast.AST) -> dict[str, Any]:
    """Names bound to the decoder modules/functions by the script's own imports."""
    aliases: dict[str, Any] = {}
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in _DECODERS:
                    aliases[a.asname or a.name] = _Module(a.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in _DECODERS:
            for a in node.names:
                if a.name in _DECODERS[node.module]:
                    aliases[a.asname or a.name] = _DECODERS[node.module][a.name]
                elif a.name.isupper():
                    try:
                        aliases[a.asname or a.name] = _module_constant(node.module, a.name)
                    except _NotAWrapper:
                        pass
    return aliases


def _simple_assignments(tree: ast.AST) -> dict[str, list[tuple[int, ast.expr]]]:
    """``name -> [(line, value expression), ...]`` for every ``name = expr`` in the file."""
    out: dict[str, list[tuple[int, ast.expr]]] = {}
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out.setdefault(node.targets[0].id, []).append((node.lineno, node.value))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out.setdefault(node.target.id, []).append((node.lineno, node.value))
    for entries in out.values():
        entries.sort(key=lambda e: e[0])
    return out


def _is_call_to(node: ast.AST, names: tuple[str, ...]) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in names


def _decode_tree(tree: ast.AST) -> str | None:
    """The source a parsed wrapper ``exec``s, or None when the tree is not a wrapper."""
    aliases = _decoder_aliases(tree)
    assigns = _simple_assignments(tree)
    for node in astmemo.walk(tree):
        if not (_is_call_to(node, ("exec", "builtins.exec")) and node.args):  # type: ignore[union-attr]
            continue
        code = node.args[0]  # type: ignore[union-attr]
        if _is_call_to(code, ("compile", "builtins.compile")) and code.args:  # type: ignore[union-attr]
            code = code.args[0]  # type: ignore[union-attr]
        interp = _DecodeInterpreter(aliases, assigns, node.lineno)  # type: ignore[union-attr]
        try:
            value = interp.eval(code)
        except _NotAWrapper:
            continue
        except RecursionError:
            continue
        if interp.decoder_calls == 0 or not isinstance(value, (str, bytes)):
            continue
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"self-extracting wrapper (line {node.lineno}) decodes to bytes that are not UTF-8") from None  # type: ignore[union-attr]
        return value.lstrip("\ufeff")
    return None


def decode_wrapper(text: str) -> str | None:
    """If ``text`` is a self-extracting wrapper, the source it executes; otherwise None.

    Handles ``exec(lzma.decompress(base64.b85decode("...")))``, zlib/bz2/base64 variants, aliases
    (``import lzma as L``), ``__import__("lzma")``, ``.decode()``, ``compile(...)``, and blobs held in
    a variable. One layer only: :func:`load_source` peels nested layers. A recognised wrapper
    whose blob is corrupt raises :class:`BadInput`; the script is never executed.
    """
    try:
        tree = ast.parse(text.lstrip("\ufeff"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return _decode_tree(tree)


# --------------------------------------------------------------------------- loading

# Syntax added in 3.12 that older parsers reject: PEP 695 (`type X = ...`, `def f[T]()`).
_PEP695 = re.compile(r"^\s*(type\s+\w+\s*(\[[^\]]*\])?\s*=|(async\s+)?def\s+\w+\s*\[|class\s+\w+\s*\[)")


def _needs_newer_python(exc: SyntaxError, text: str) -> tuple[int, int] | None:
    """(3, 12) when the parse failure is 3.12-only syntax this interpreter predates."""
    if sys.version_info >= (3, 12):
        return None
    if "f-string" in (exc.msg or ""):  # PEP 701: nested quotes, backslashes, comments in f-strings
        return (3, 12)
    lines = text.splitlines()
    if exc.lineno and 0 < exc.lineno <= len(lines) and _PEP695.match(lines[exc.lineno - 1]):
        return (3, 12)
    return None


@functools.lru_cache(maxsize=16)
def parse_shared(text: str) -> ast.Module:
    """``ast.parse(text)``, one tree per source text for every check that reads it.

    The trees are shared: callers only read them (code that rewrites a tree parses its own).
    """
    return ast.parse(text)


def parse_any_python(text: str) -> ast.Module:
    """``ast.parse``, and for 3.12 f-strings (PEP 701) the same source downgraded to this Python.

    The downgrade keeps every line number, so what a scan finds points at the original lines.
    SyntaxError when neither parses.
    """
    try:
        return parse_shared(text)
    except SyntaxError:
        from .pycompat import DowngradeError, downgrade_source

        try:
            lowered = downgrade_source(text)
        except DowngradeError:
            raise SyntaxError("does not parse, and the PEP 701 downgrade cannot follow it") from None
        return parse_shared(lowered)


def _parse(text: str, where: str) -> tuple[ast.Module | None, tuple[int, int] | None]:
    """``(tree, None)``, or ``(None, min_python)`` for newer syntax; BadInput for broken source."""
    try:
        return parse_shared(text), None
    except SyntaxError as exc:
        newer = _needs_newer_python(exc, text)
        if newer:
            return None, newer
        at = f"line {exc.lineno}: " if exc.lineno else ""
        raise BadInput(f"{where}: not valid Python ({at}{exc.msg})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise BadInput(f"{where}: cannot be parsed ({type(exc).__name__}: {exc})") from None


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if not path.is_file():
        raise BadInput(f"{path}: not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_source(path: str | Path) -> LoadedSource:
    """Read a script and peel every self-extracting layer, without running anything.

    Raises BadInput when the file is missing, not UTF-8, or not Python. A script (or a decoded
    layer) that only parses on a newer Python is returned with ``min_python`` set and its
    layers peeled as far as this interpreter can see. Memoized on (path, mtime, size): a report
    asks for the same script from several checks.
    """
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is None:
        return _load_source(path)
    return _load_source_cached(key, path)


@functools.lru_cache(maxsize=64)
def _load_source_cached(key: tuple[str, int, int], path: Path) -> LoadedSource:
    return _load_source(path)


def _load_source(path: Path) -> LoadedSource:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start})") from None
    current, layers, min_python = text.lstrip("\ufeff"), 0, None
    while True:
        where = str(path) if layers == 0 else f"{path} (decoded layer {layers})"
        tree, min_python = _parse(current, where)
        if tree is None:
            break
        inner = _decode_tree(tree)
        if inner is None:
            break
        layers += 1
        if layers > MAX_LAYERS:
            raise BadInput(f"{path}: more than {MAX_LAYERS} self-extracting layers")
        current = inner
    return LoadedSource(path=path, raw=raw, text=text, effective=current, layers=layers, min_python=min_python)


# --------------------------------------------------------------------------- dependencies


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> full dotted name, from the file's imports (``osp`` -> ``os.path``)."""
    out: dict[str, str] = {}
    for node in astmemo.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


class _FileScanner:
    """Finds what one Python file loads: imports, exec'd and opened files, extension sources."""

    _READERS = ("open", "io.open", "codecs.open", "builtins.open")

    def __init__(self, file: Path, root: Path, tree: ast.AST):
        self.file, self.root, self.tree = file, root, tree
        self.aliases = _import_aliases(tree)
        self.assigns = _simple_assignments(tree)
        # Whether any string names a compiled source at all: most scripts have none, and then
        # the per-assignment source search is skipped.
        self.names_sources = any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                                 and n.value.lower().endswith(self._COMPILED) for n in astmemo.walk(tree))

    def canonical(self, node: ast.AST) -> str | None:
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        head = self.aliases.get(head, head)
        return f"{head}.{rest}" if rest else head

    # -- static path expressions: literals, __file__, os.path.*, pathlib, f-strings, names
    def path_value(self, node: ast.AST, depth: int = 0) -> str | None:
        if depth > 20:
            return None
        ev = lambda n: self.path_value(n, depth + 1)  # noqa: E731
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return str(self.file)
            for _, expr in reversed(self.assigns.get(node.id, [])):
                value = ev(expr)
                if value is not None:
                    return value
            return None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.FormattedValue) and v.conversion == -1 and v.format_spec is None:
                    part = ev(v.value)
                else:
                    part = ev(v)
                if part is None:
                    return None
                parts.append(part)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            left, right = ev(node.left), ev(node.right)
            if left is None or right is None:
                return None
            return left + right if isinstance(node.op, ast.Add) else _join(left, right)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            base = ev(node.value)
            return _dirname(base) if base is not None else None
        if isinstance(node, ast.Call):
            return self._path_call(node, ev)
        return None

    def _path_call(self, node: ast.Call, ev: Callable[[ast.AST], str | None]) -> str | None:
        name = self.canonical(node.func)
        args = [ev(a) for a in node.args]
        if None in args:
            return None
        if name in ("os.path.join", "posixpath.join", "pathlib.Path", "pathlib.PurePath", "Path"):
            return _join(*args) if args else "."
        if name in ("os.path.dirname",) and len(args) == 1:
            return _dirname(args[0])
        if name in ("os.path.abspath", "os.path.realpath", "os.path.normpath", "str", "os.fspath") and len(args) == 1:
            return args[0]
        if name in ("os.getcwd", "pathlib.Path.cwd"):
            return str(self.root)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute", "expanduser", "joinpath"):
            base = ev(node.func.value)
            if base is None:
                return None
            return _join(base, *args) if node.func.attr == "joinpath" else base
        return None

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return (p if p.is_absolute() else self.root / p).resolve()

    # -- what the file loads
    def loads(self) -> list[tuple[str, Path, int]]:
        found: list[tuple[str, Path, int]] = []
        exec_reads = self._exec_read_nodes()
        for node in astmemo.walk(self.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for p in self._import_targets(node):
                    found.append(("import", p, node.lineno))
            elif isinstance(node, ast.Call):
                found.extend(self._call_loads(node, exec_reads))
                if self.names_sources:
                    found.extend(self._compiled_sources(node))
            elif isinstance(node, ast.Assign) and self.names_sources:
                found.extend(self._named_sources(node))
        return found

    _COMPILED = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hpp", ".metal", ".cl")

    def _existing_source(self, node: ast.AST) -> Path | None:
        # Cheap syntactic filter first: evaluating every assignment's path would be exponential.
        if not any(isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.lower().endswith(self._COMPILED)
                   for n in astmemo.walk(node)):
            return None
        value = self.path_value(node)
        if value is None:
            return None
        path = self.resolve(value)
        return path if path.suffix.lower() in self._COMPILED and path.is_file() else None

    def _named_sources(self, node: ast.Assign) -> list[tuple[str, Path, int]]:
        """``SRC = Path(__file__).parent / "kernel.c"``: a sibling C/CUDA source the code builds."""
        path = self._existing_source(node.value)
        return [("source", path, node.lineno)] if path is not None else []

    def _compiled_sources(self, node: ast.Call) -> list[tuple[str, Path, int]]:
        """Sources handed to a compiler: ``subprocess.run(["gcc", …, "k.c"])``, ``os.system``."""
        name = self.canonical(node.func) or ""
        if not (name.startswith("subprocess.") or name in ("os.system", "os.popen")) or not node.args:
            return []
        items = node.args[0].elts if isinstance(node.args[0], (ast.List, ast.Tuple)) else [node.args[0]]
        out = []
        for item in items:
            path = self._existing_source(item)
            if path is not None:
                out.append(("source", path, node.lineno))
        return out

    def _exec_read_nodes(self) -> set[int]:
        ids: set[int] = set()
        for node in astmemo.walk(self.tree):
            if isinstance(node, ast.Call) and self.canonical(node.func) in ("exec", "builtins.exec", "compile"):
                ids.update(id(n) for a in node.args for n in astmemo.walk(a))
        return ids

    def _call_loads(self, node: ast.Call, exec_reads: set[int]) -> list[tuple[str, Path, int]]:
        name = self.canonical(node.func) or ""
        line = node.lineno
        target: ast.AST | None = None
        if name in self._READERS and node.args:
            target = node.args[0]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("read_text", "read_bytes", "open"):
            if self.path_value(node.func.value) is not None and _dotted(node.func) not in self._READERS:
                target = node.func.value
        if target is not None:
            value = self.path_value(target)
            if value is None:
                return []
            how = "exec" if id(node) in exec_reads else "open"
            path = self.resolve(value)
            return [(how, path, line)] if how == "exec" or path.suffix.lower() in CODE_SUFFIXES else []
        if name in ("runpy.run_path",) and node.args:
            value = self.path_value(node.args[0])
            return [("exec", self.resolve(value), line)] if value else []
        if name in ("importlib.import_module", "__import__") and node.args:
            mod = node.args[0]
            if isinstance(mod, ast.Constant) and isinstance(mod.value, str):
                return [("import", p, line) for p in self._module_files(mod.value, 0)]
            return []
        if name in ("ctypes.CDLL", "ctypes.cdll.LoadLibrary", "torch.ops.load_library") and node.args:
            value = self.path_value(node.args[0])
            return [("library", self.resolve(value), line)] if value else []
        sources = [k.value for k in node.keywords if k.arg == "sources"]
        if not sources and name.endswith("cpp_extension.load") and len(node.args) > 1:
            sources = [node.args[1]]
        out = []
        for src in sources:
            items = src.elts if isinstance(src, (ast.List, ast.Tuple)) else [src]
            for item in items:
                value = self.path_value(item)
                if value is not None:
                    out.append(("extension", self.resolve(value), line))
        return out

    def _import_targets(self, node: ast.Import | ast.ImportFrom) -> list[Path]:
        if isinstance(node, ast.Import):
            return [p for a in node.names for p in self._module_files(a.name, 0)]
        base_files = self._module_files(node.module or "", node.level)
        pkg_dir = self._module_dir(node.module or "", node.level)
        out = list(base_files)
        if pkg_dir is not None:  # `from pkg import sub` may import the submodule pkg/sub.py
            for a in node.names:
                out.extend(_module_in(pkg_dir, a.name))
        return out

    def _module_base(self, level: int) -> Path:
        # Absolute imports resolve against the entry's folder (sys.path[0]); relative ones
        # against the importing file's package.
        if level == 0:
            return self.root
        base = self.file.parent
        for _ in range(level - 1):
            base = base.parent
        return base

    def _module_dir(self, module: str, level: int) -> Path | None:
        d = self._module_base(level)
        for part in filter(None, module.split(".")):
            d = d / part
        return d if d.is_dir() else None

    def _module_files(self, module: str, level: int) -> list[Path]:
        d, out = self._module_base(level), []
        parts = [p for p in module.split(".") if p]
        for part in parts:
            found = _module_in(d, part)
            if not found:
                break
            out.extend(found)
            d = d / part
            if not d.is_dir():
                break
        return out


def _module_in(directory: Path, name: str) -> list[Path]:
    """The file a module name resolves to inside ``directory`` (module.py or package/__init__.py)."""
    if name == "*" or not name.isidentifier():
        return []
    for candidate in (directory / f"{name}.py", directory / name / "__init__.py"):
        if candidate.is_file():
            return [candidate.resolve()]
    return []


def _join(*parts: str) -> str:
    import os.path

    return os.path.join(*parts)


def _dirname(path: str) -> str:
    import os.path

    return os.path.dirname(path.rstrip("/")) or "."


_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
# An import at a line start, or after ";" / ":" (minified code: ``if x:import helper;y()``).
_TEXT_IMPORT = re.compile(r"(?:^|[;:])[ \t]*(?:from\s+(\.*)([\w.]*)\s+import\s+([\w, ]+)|import\s+([\w., ]+))", re.M)
_TEXT_PATH = re.compile(r"""["']([^"'\n]+(?:%s))["']""" % "|".join(re.escape(s) for s in sorted(CODE_SUFFIXES)))


def scan_dependencies(path: str | Path) -> DependencyScan:
    """The entry script and every local file it loads at run time, found statically.

    The entry's folder is the import root (``sys.path[0]``) and the working directory for
    relative paths, as when the script is launched from its records folder. For a
    self-extracting wrapper the wrapper's bytes are counted and its decoded body is scanned.
    Raises BadInput only for the entry; dependencies that cannot be read are noted.
    """
    entry = Path(path).resolve()
    loaded = load_source(entry)
    root = entry.parent
    files = [CodeFile(path=entry, size=len(loaded.raw), how="entry", line=None, via=None)]
    scan = DependencyScan(files=files)
    seen = {entry}
    queue: list[tuple[Path, LoadedSource | None, str]] = [(entry, loaded, "entry")]
    while queue:
        file, source, file_how = queue.pop(0)
        for how, target, line, in_wrapper in _loads_of(file, source, file_how, root, scan):
            if target in seen:
                continue
            seen.add(target)
            if not target.is_file() and how == "library" and any(f.how == "source" for f in scan.files):
                # libX.so built at run time from a shipped source: the source is the code.
                scan.notes.append(f"{target.name}: built at run time from a shipped source file (not a file of the folder)")
                continue
            if not target.is_file():
                if target.suffix.lower() in CODE_SUFFIXES or how in ("exec", "extension", "include", "library"):
                    scan.missing.append(CodeFile(target, 0, how, line, file, in_wrapper))
                continue
            scan.files.append(CodeFile(target, target.stat().st_size, how, line, file, in_wrapper))
            queue.append((target, None, how))
    return scan


def _loads_of(
    file: Path, source: LoadedSource | None, how: str, root: Path, scan: DependencyScan
) -> list[tuple[str, Path, int, bool]]:
    """What ``file`` (itself loaded as ``how``) loads, as (how, path, line, found-inside-a-wrapper)."""
    suffix = file.suffix.lower()
    if suffix in (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".cu", ".cuh"):
        try:
            text = file.read_text("utf-8", errors="replace")
        except OSError as exc:
            scan.notes.append(f"{file}: cannot read ({exc.strerror or exc})")
            return []
        out = []
        for m in _INCLUDE.finditer(text):
            out.append(("include", (file.parent / m.group(1)).resolve(), text.count("\n", 0, m.start()) + 1, False))
        return out
    # Whatever is imported or exec'd is Python whatever its name; other opened files are not.
    if suffix not in (".py", ".pyx") and how not in ("entry", "import", "exec"):
        return []
    if source is None:
        try:
            source = load_source(file)
        except BadInput as exc:
            scan.notes.append(str(exc))
            return []
    in_wrapper = source.layers > 0
    try:
        tree = parse_any_python(source.effective)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        scan.notes.append(f"{file}: scanned as text (does not parse on Python {sys.version_info[0]}.{sys.version_info[1]})")
        return [(how, p, line, in_wrapper) for how, p, line in _text_loads(file, root, source.effective)]
    scanner = _FileScanner(file, root, tree)
    return [(how, p, line, in_wrapper) for how, p, line in scanner.loads()]


def _text_loads(file: Path, root: Path, text: str) -> list[tuple[str, Path, int]]:
    """A regex fallback for sources this interpreter cannot parse (e.g. 3.12 f-strings)."""
    scanner = _FileScanner(file, root, ast.Module(body=[], type_ignores=[]))
    out: list[tuple[str, Path, int]] = []
    for m in _TEXT_IMPORT.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(4):
            for name in m.group(4).split(","):
                module = name.strip().split(" as ")[0].strip()
                out.extend(("import", p, line) for p in scanner._module_files(module, 0))
        else:
            node = ast.ImportFrom(module=m.group(2) or None, names=[ast.alias(name=n.strip().split(" as ")[0]) for n in m.group(3).split(",") if n.strip()], level=len(m.group(1)))
            out.extend(("import", p, line) for p in scanner._import_targets(node))
    for m in _TEXT_PATH.finditer(text):
        out.append(("open", scanner.resolve(m.group(1)), text.count("\n", 0, m.start()) + 1))
    return out


def code_dependencies(path: str | Path) -> list[CodeFile]:
    """The entry script plus every local code file it loads at run time (see :func:`scan_dependencies`)."""
    return scan_dependencies(path).files
