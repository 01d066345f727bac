"""Code bytes as the records count them: rebuild a script's own "compressed code size" figure.

Since April 2026 most records do not count their raw source. Their script logs

    Code size (uncompressed): 116694 bytes
    Code size (compressed): 26845 bytes

where the compressed figure is the length of a self-extracting wrapper of the script's own
source (minify with ``pyminify``, compress with lzma or brotli, base85-encode, wrap in
``exec(L.decompress(B.b85decode("…")))``). That wrapper is what the submission would ship, so
it is the code that counts; counting the 116,694 raw bytes instead turns every such record into
a false "over the cap".

This module reads the recipe from the script's syntax tree (which minifier flags, which
compressor and settings, the wrapper's text around the payload; never running the script) and
rebuilds the figure from the committed file, as the script does with
``Path(__file__).read_text()``. Minifier output depends on the python-minifier version and on
the Python that runs it, so a rebuilt figure that differs from the log by a few bytes is an
environment difference, said so; when the minifier is not installed, the figure is taken from
the log and the report says that too.

Example: ``rebuild_compressed_size(Path("train_gpt.py"))`` →
``Rebuilt(bytes=26845, recipe=Recipe(compressor="lzma", ...), how="rebuilt: pyminify … + lzma + b85")``.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import lzma
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# pyminify flags that change the output: only these are passed on (anything else is refused,
# so a surprising flag cannot make us run something we did not mean to).
_MINIFY_FLAGS = frozenset({
    "--no-combine-imports", "--no-remove-pass", "--remove-literal-statements", "--no-remove-annotations",
    "--no-hoist-literals", "--no-rename-locals", "--no-rename-globals", "--rename-globals",
    "--no-remove-object-base", "--no-convert-posargs-to-args", "--no-preserve-shebang", "--remove-asserts",
    "--remove-debug", "--no-remove-explicit-return-none", "--no-remove-builtin-exception-brackets",
    "--no-constant-folding", "--prefer-single-line", "--remove-class-attribute-annotations",
    "--no-remove-variable-annotations", "--no-remove-return-annotations", "--no-remove-argument-annotations",
})  # fmt: skip
MINIFY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Recipe:
    """How a script turns its own source into the counted code size."""

    function: str
    line: int  # of the function, in the script's effective (decoded) source
    minify_flags: tuple[str, ...] | None  # pyminify flags; None: no minification step
    raw_fallback: bool  # the script falls back to the raw source when pyminify fails
    compressor: str  # "lzma", "brotli", "zlib"
    compressor_kwargs: tuple[tuple[str, Any], ...]
    prefix: bytes  # wrapper text before the base85 payload
    suffix: bytes  # and after it

    def describe(self) -> str:
        minify = f"pyminify {' '.join(self.minify_flags)}" if self.minify_flags is not None else "no minify"
        kw = ", ".join(f"{k}={v!r}" for k, v in self.compressor_kwargs)
        return f"{minify} + {self.compressor}{f'({kw})' if kw else ''} + b85 wrapper ({self.function}, line {self.line})"


@dataclass
class Rebuilt:
    """The compressed code figure rebuilt from a file (``bytes`` None when it could not be)."""

    bytes: int | None
    recipe: Recipe | None
    how: str  # one line for the report
    environment: str = ""  # minifier version + Python, when rebuilt
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the recipe


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        base = f.value.id if isinstance(f.value, ast.Name) else ""
        return f"{base}.{f.attr}"
    return f.id if isinstance(f, ast.Name) else ""


def _aliases(scope: ast.AST) -> dict[str, str]:
    """``L`` -> ``lzma`` for the imports inside ``scope``."""
    out: dict[str, str] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name] = a.name
    return out


def _wrapper_parts(fn: ast.AST, encoded: set[str]) -> tuple[bytes, bytes] | None:
    """The constant bytes around the encoded payload in ``prefix + encoded + suffix``."""
    for node in ast.walk(fn):
        if not isinstance(node, ast.BinOp) or not isinstance(node.op, ast.Add):
            continue
        parts: list[ast.AST] = []

        def flatten(n: ast.AST) -> None:
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
                flatten(n.left)
                flatten(n.right)
            else:
                parts.append(n)

        flatten(node)
        names = [i for i, p in enumerate(parts) if isinstance(p, ast.Name) and p.id in encoded]
        consts = all(isinstance(p, ast.Constant) and isinstance(p.value, (bytes, str))
                     for i, p in enumerate(parts) if i not in names)  # fmt: skip
        if len(names) == 1 and consts and len(parts) > 1:
            k = names[0]

            def join(items: list[ast.AST]) -> bytes:
                return b"".join(p.value if isinstance(p.value, bytes) else p.value.encode() for p in items)  # type: ignore[union-attr]

            return join(parts[:k]), join(parts[k + 1:])
    return None


@functools.lru_cache(maxsize=32)
def find_recipe(source: str) -> Recipe | None:
    """The compressed-code recipe of a script's (decoded) source, or None when it has none."""
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if "b85encode" not in source:
        return None  # every recipe base85-encodes its payload: nothing to look for (fast path)
    module_aliases = _aliases(module)
    for fn in ast.walk(module):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not any(isinstance(n, ast.Attribute) and n.attr == "b85encode" for n in ast.walk(fn)):
            continue
        recipe = _recipe_of(fn, {**module_aliases, **_aliases(fn)})
        if recipe is not None:
            return recipe
    return None


def _recipe_of(fn: ast.FunctionDef | ast.AsyncFunctionDef, aliases: dict[str, str]) -> Recipe | None:
    which = _which_names(fn)
    flags: tuple[str, ...] | None = None
    fallback = False
    compressor: tuple[str, tuple[tuple[str, Any], ...]] | None = None
    encoded: set[str] = set()
    for node in ast.walk(fn):
        # try: pyminify … except: raw source / if shutil.which("pyminify"): … else: raw source
        if isinstance(node, (ast.Try, ast.If)) and (node.handlers if isinstance(node, ast.Try) else node.orelse):
            if any(isinstance(n, ast.Call) and _is_pyminify(n, which) for s in node.body for n in ast.walk(s)):
                fallback = True
        if isinstance(node, ast.Call):
            argv = _argv(node, which)
            if argv is not None:
                flags = tuple(a for a in argv[1:] if a != "-")
                if any(f not in _MINIFY_FLAGS for f in flags):
                    return None
            name = _call_name(node)
            head, _, attr = name.partition(".")
            module_name = aliases.get(head, head)
            if attr == "compress" and module_name in ("lzma", "brotli", "zlib"):
                kwargs = []
                for kw in node.keywords:
                    if kw.arg is None or not isinstance(kw.value, ast.Constant):
                        return None
                    kwargs.append((kw.arg, kw.value.value))
                if len(node.args) > 1:
                    if not isinstance(node.args[1], ast.Constant):
                        return None
                    kwargs.append(("level" if module_name == "zlib" else "preset", node.args[1].value))
                compressor = (module_name, tuple(kwargs))
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if _call_name(node.value).endswith("b85encode"):
                encoded.update(t.id for t in node.targets if isinstance(t, ast.Name))
    if compressor is None or not encoded:
        return None
    parts = _wrapper_parts(fn, encoded)
    if parts is None:
        return None
    return Recipe(fn.name, fn.lineno, flags, fallback, compressor[0], compressor[1], parts[0], parts[1])


def _which_names(fn: ast.AST) -> set[str]:
    """Names assigned ``shutil.which("pyminify")`` in the function (``exe = shutil.which(...)``)."""
    out = set()
    for node in ast.walk(fn):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _call_name(node.value).endswith("which")
                and node.value.args and isinstance(node.value.args[0], ast.Constant)
                and node.value.args[0].value == "pyminify"):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return out


def _argv(node: ast.Call, which: set[str]) -> list[str] | None:
    """The argv of a ``subprocess.run([...])`` that runs pyminify, with argv[0] normalised."""
    if not node.args or not isinstance(node.args[0], (ast.List, ast.Tuple)) or not node.args[0].elts:
        return None
    first, *rest = node.args[0].elts
    if isinstance(first, ast.Name) and first.id in which:
        head = "pyminify"
    elif isinstance(first, ast.Constant) and isinstance(first.value, str):
        head = first.value.rsplit("/", 1)[-1]
    else:
        return None
    if head != "pyminify" or not all(isinstance(e, ast.Constant) for e in rest):
        return None
    return [head, *(str(e.value) for e in rest)]  # type: ignore[union-attr]


def _is_pyminify(node: ast.Call, which: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
    return _argv(node, which) is not None


# --------------------------------------------------------------------------- rebuilding


def minifier_version() -> str | None:
    try:
        from importlib import metadata

        return metadata.version("python-minifier")
    except Exception:  # noqa: BLE001 - absent or broken: the figure comes from the log
        return None


def environment() -> str:
    version = minifier_version()
    py = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
    return f"python-minifier {version}, {py}" if version else py


def _cache_dir() -> Path | None:
    root = os.environ.get("GOLF_AUDIT_CACHE") or str(Path.home() / ".cache" / "golf-audit")
    path = Path(root) / "codesize"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def _minify(raw: bytes, flags: tuple[str, ...]) -> bytes:
    """pyminify's CLI output for ``raw`` (cached on disk: it takes ~1 s per record script)."""
    key = hashlib.sha256(raw + b"\0" + " ".join(flags).encode() + b"\0" + environment().encode()).hexdigest()
    cache = _cache_dir()
    hit = cache / f"{key}.min" if cache else None
    if hit is not None and hit.is_file():
        return hit.read_bytes()
    # The CLI, as the scripts call it (the module's own argument parsing), in a child process.
    proc = subprocess.run([sys.executable, "-m", "python_minifier", *flags, "-"], input=raw,
                          capture_output=True, timeout=MINIFY_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["pyminify failed"])[-1])
    if hit is not None:
        tmp = hit.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(proc.stdout)
        os.replace(tmp, hit)
    return proc.stdout


def _compress(recipe: Recipe, data: bytes) -> bytes:
    kwargs = dict(recipe.compressor_kwargs)
    if recipe.compressor == "lzma":
        return lzma.compress(data, **kwargs)
    if recipe.compressor == "zlib":
        return zlib.compress(data, **kwargs)
    import brotli  # optional: only records that use it need it

    return brotli.compress(data, **kwargs)


def rebuild_size(recipe: Recipe, source: bytes) -> Rebuilt:
    """The wrapper length the recipe gives for ``source`` (the committed file's bytes)."""
    notes: list[str] = []
    data = source
    if recipe.minify_flags is not None:
        if minifier_version() is None:
            return Rebuilt(None, recipe, "not rebuilt: python-minifier is not installed (pip install python-minifier)")
        try:
            data = _minify(source, recipe.minify_flags)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            if not recipe.raw_fallback:
                return Rebuilt(None, recipe, f"not rebuilt: pyminify fails on this file here ({exc})", environment())
            notes.append(f"pyminify fails on this file here ({exc}); the script then compresses the raw source")
    try:
        payload = base64.b85encode(_compress(recipe, data))
    except ImportError:
        return Rebuilt(None, recipe, f"not rebuilt: the {recipe.compressor} module is not installed")
    except (TypeError, ValueError, lzma.LZMAError, zlib.error) as exc:
        return Rebuilt(None, recipe, f"not rebuilt: {recipe.compressor} refuses the script's settings ({exc})")
    size = len(recipe.prefix) + len(payload) + len(recipe.suffix)
    return Rebuilt(size, recipe, f"rebuilt: {recipe.describe()}", environment(), notes)


def raw_fallback_size(recipe: Recipe, source: bytes) -> int | None:
    """The figure the script logs when pyminify is absent on the run machine and it falls back."""
    if not recipe.raw_fallback and recipe.minify_flags is not None:
        return None
    try:
        return len(recipe.prefix) + len(base64.b85encode(_compress(recipe, source))) + len(recipe.suffix)
    except Exception:  # noqa: BLE001 - only an explanation for a mismatch; never decisive
        return None


def to_json(rebuilt: Rebuilt) -> dict[str, Any]:
    return {"bytes": rebuilt.bytes, "how": rebuilt.how, "environment": rebuilt.environment, "notes": rebuilt.notes,
            "recipe": None if rebuilt.recipe is None else rebuilt.recipe.describe()}


__all__ = ["Rebuilt", "Recipe", "environment", "find_recipe", "minifier_version", "raw_fallback_size", "rebuild_size",
           "to_json"]
