"""Run Python 3.12 submission code on the supported interpreter: a PEP 701 f-string downgrade.

Python 3.12 (PEP 701) lets an f-string's replacement fields hold anything an expression can:
the f-string's own quote character (``f"{d["key"]}"``), backslashes (``f"{'\\n'.join(x)}"``),
comments and line breaks. Several decoded submission wrappers use that, so they do not parse
on 3.11. :func:`downgrade_source` rewrites every f-string into the expression it stands for,
built from plain string literals, ``format``, ``repr``/``str``/``ascii`` and ``+``::

    f"{name!r:>10} = {d["k"]}"   ->   (format(repr(name), '>10') + ' = ' + format((d["k"]), ''))

which is exactly what the f-string evaluates (``format(value, spec)``, left to right). Field
expressions are copied verbatim (and downgraded recursively, for nested f-strings) and every
literal piece is followed by the line breaks it spanned, so each token keeps its physical
line: line numbers in findings still point at the original source. Literals implicitly
concatenated with an f-string are folded into the same expression.

Only f-string syntax is handled; other 3.12-only syntax (``type X = ...``, PEP 695 generics)
still fails to parse, and the caller says so (``--python`` can name a 3.12 interpreter).

Example::

    >>> downgrade_source('x = f"{d["a"]!r}"\\n')
    "x = (format(repr((d[\\"a\\"])), ''))\\n"
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["DowngradeError", "downgrade_source"]

_PREFIXES = frozenset({"", "r", "u", "b", "f", "br", "rb", "fr", "rf"})


class DowngradeError(ValueError):
    """Text the scanner cannot follow (an unterminated string or field): never guessed at."""


@dataclass
class _Literal:
    """One string literal token: ``prefix quote body quote``."""

    start: int  # index of the prefix's first character
    body_start: int
    end: int  # index just past the closing quote
    prefix: str
    quote: str  # ', ", ''' or \"\"\"

    @property
    def is_f(self) -> bool:
        return "f" in self.prefix.lower()


def downgrade_source(text: str) -> str:
    """``text`` with every f-string rewritten into 3.11-compatible syntax (line numbers kept).

    Source without f-strings comes back unchanged; :class:`DowngradeError` on text the scanner
    cannot follow.
    """
    return _Scanner(text).code(0, len(text))


def _is_ident(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _Scanner:
    """Scans one piece of source text (a whole module, or one field expression)."""

    def __init__(self, text: str) -> None:
        self.text = text

    # ------------------------------------------------------------------ tokens

    def literal_at(self, i: int, stop: int) -> _Literal | None:
        """The string literal whose prefix (or quote) starts at ``i``, else None."""
        text = self.text
        if i > 0 and text[i] not in "'\"" and _is_ident(text[i - 1]):
            return None  # a letter inside an identifier, not a prefix (a bare quote always starts one)
        j = i
        while j < stop and j - i < 2 and text[j].isalpha():
            j += 1
        if j >= stop or text[j] not in "'\"" or text[i:j].lower() not in _PREFIXES:
            return None
        prefix, q = text[i:j], text[j]
        quote = q * 3 if text.startswith(q * 3, j) else q
        body = j + len(quote)
        raw = "r" in prefix.lower()
        close = self._fstring_close(body, quote, stop, raw) if "f" in prefix.lower() \
            else self._plain_close(body, quote, stop)
        return _Literal(i, body, close + len(quote), prefix, quote)

    def _plain_close(self, i: int, quote: str, stop: int) -> int:
        text = self.text
        while i < stop:
            if text[i] == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                return i
            if len(quote) == 1 and text[i] == "\n":
                break
            i += 1
        raise DowngradeError(f"unterminated string literal (offset {i})")

    def _fstring_close(self, i: int, quote: str, stop: int, raw: bool) -> int:
        """Index of the closing quote of an f-string body starting at ``i`` (PEP 701 rules)."""
        text = self.text
        while i < stop:
            ch = text[i]
            if ch == "\\":
                i += 1 if raw else 2
                continue
            if ch == "{":
                if text.startswith("{{", i):
                    i += 2
                    continue
                i = self.field_close(i + 1, stop) + 1
                continue
            if text.startswith(quote, i):
                return i
            if len(quote) == 1 and ch == "\n":
                break
            i += 1
        raise DowngradeError(f"unterminated f-string (offset {i})")

    def skip_token(self, i: int, stop: int) -> tuple[int | None, _Literal | None]:
        """At ``i``: the end of a comment (its line break stays) or of a string literal, and the
        literal; ``(None, None)`` when neither starts there."""
        text = self.text
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i, stop)
            return (stop if j < 0 else j), None
        if ch in "'\"" or ch.isalpha():
            lit = self.literal_at(i, stop)
            if lit is not None:
                return lit.end, lit
        return None, None

    def skip_expr(self, i: int, stop: int, until: str) -> int:
        """From ``i`` in an expression, the index of the first top-level character in ``until``.

        Strings and comments are skipped whole; ``!`` counts only as a conversion (``!r``/``!s``/
        ``!a`` before ``:`` or ``}``), never as ``!=``.
        """
        text, depth = self.text, 0
        while i < stop:
            ch = text[i]
            skipped, _lit = self.skip_token(i, stop)
            if skipped is not None:
                i = skipped
                continue
            if depth == 0 and ch in until:
                if ch != "!" or (i + 1 < stop and text[i + 1] in "rsa" and i + 2 < stop and text[i + 2] in ":}"):
                    return i
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            i += 1
        raise DowngradeError(f"unclosed replacement field (offset {i})")

    def field_close(self, i: int, stop: int) -> int:
        """Index of the ``}`` closing a replacement field whose expression starts at ``i``."""
        i = self.skip_expr(i, stop, "}:!")
        if self.text[i] == "!":
            i += 2
        if self.text[i] == ":":
            i += 1
            while i < stop and self.text[i] != "}":
                i = self.field_close(i + 1, stop) + 1 if self.text[i] == "{" else i + 1
        if i >= stop or self.text[i] != "}":
            raise DowngradeError(f"unclosed replacement field (offset {i})")
        return i

    # ------------------------------------------------------------------ code

    def code(self, start: int, stop: int) -> str:
        """``text[start:stop]`` (code) with every run of literals holding an f-string rewritten."""
        text, out, i, copied = self.text, [], start, start
        run: list[_Literal] = []  # adjacent literals: one implicit concatenation

        def flush() -> None:
            nonlocal copied
            if run and any(lit.is_f for lit in run):
                out.append(text[copied:run[0].start])
                out.append(self._group(run))
                copied = run[-1].end
            run.clear()

        depth = 0
        while i < stop:
            ch = text[i]
            skipped, lit = self.skip_token(i, stop)
            if skipped is not None:
                if lit is not None:
                    run.append(lit)
                i = skipped
                continue
            if ch in " \t\f\r" or (ch == "\\" and text.startswith("\\\n", i)):
                i += 2 if ch == "\\" else 1
                continue
            if ch == "\n":
                if depth == 0:  # outside brackets a line break ends the expression
                    flush()
                i += 1
                continue
            flush()
            depth += 1 if ch in "([{" else -1 if ch in ")]}" else 0
            i += 1
        flush()
        out.append(text[copied:stop])
        return "".join(out)

    # ------------------------------------------------------------------ emitting

    def _group(self, run: list[_Literal]) -> str:
        """A run of adjacent literals as one parenthesized ``+`` expression, lines kept."""
        if any("b" in lit.prefix.lower() for lit in run):
            raise DowngradeError("a bytes literal next to an f-string")
        pieces: list[str] = []
        for k, lit in enumerate(run):
            if k:
                # what separated the literals: keep its line breaks and comments, drop continuations
                gap = self.text[run[k - 1].end:lit.start].replace("\\\n", "\n")
                pieces.append(gap)
            pieces.extend(self._parts(lit))
        expr, pending = "", ""
        for p in pieces:
            if not p.strip() or p.strip().startswith("#"):
                pending += p
                continue
            expr += (pending + " + " if expr else pending) + p
            pending = ""
        return "(" + (expr or "''") + pending + ")"

    def _parts(self, lit: _Literal) -> list[str]:
        body_end = lit.end - len(lit.quote)
        if not lit.is_f:
            return [self.text[lit.start:lit.end]]
        return self._fstring_parts(lit.body_start, body_end, lit.prefix, lit.quote)

    def _fstring_parts(self, start: int, stop: int, prefix: str, quote: str) -> list[str]:
        """The f-string body ``text[start:stop]`` as a list of expressions to add up."""
        text, parts, i, chunk = self.text, [], start, start
        raw = "r" in prefix.lower()
        while i < stop:
            ch = text[i]
            if ch == "\\":
                i += 1 if raw else 2
                continue
            if text.startswith("{{", i) or text.startswith("}}", i):
                i += 2
                continue
            if ch == "{":
                if i > chunk:
                    parts.append(self._literal(text[chunk:i], prefix, quote))
                close = self.field_close(i + 1, stop)
                parts.append(self._field(i + 1, close, prefix, quote))
                i = chunk = close + 1
                continue
            i += 1
        if stop > chunk:
            parts.append(self._literal(text[chunk:stop], prefix, quote))
        return [p for p in parts if p] or ["''"]

    @staticmethod
    def _literal(chunk: str, prefix: str, quote: str) -> str:
        """A plain literal with the value of an f-string's literal text, then the lines it spanned."""
        plain = prefix.lower().replace("f", "")
        value = _literal_value(plain, quote, chunk.replace("{{", "{").replace("}}", "}"))
        return repr(value) + "\n" * chunk.count("\n")

    def _field(self, start: int, close: int, prefix: str, quote: str) -> str:
        """``{expr[=][!c][:spec]}`` (``text[start:close]``) as ``format(conv(expr), spec)``."""
        text = self.text
        expr_end = self.skip_expr(start, close + 1, "}:!")
        expr = text[start:expr_end]
        debug = ""
        stripped = expr.rstrip()
        if stripped.endswith("=") and not stripped.endswith(("==", "!=", "<=", ">=")):
            debug, expr = expr, stripped[:-1]
        conversion, spec_at = "", None
        i = expr_end
        if text[i] == "!":
            conversion, i = text[i + 1], i + 2
        if text[i] == ":":
            spec_at = i + 1
        if debug and not conversion and spec_at is None:
            conversion = "r"  # f"{x=}" shows repr(x)
        code = _Scanner(expr).code(0, len(expr))
        value = {"r": f"repr(({code}))", "s": f"str(({code}))", "a": f"ascii(({code}))", "": f"({code})"}[conversion]
        if spec_at is None:
            spec = "''"
        elif "{" in text[spec_at:close]:
            spec = "(" + " + ".join(self._fstring_parts(spec_at, close, prefix, quote)) + ")"
        else:
            spec = self._literal(text[spec_at:close], prefix, quote)
        formatted = f"format({value}, {spec})"
        if debug:
            return repr(debug) + "\n" * debug.count("\n") + " + " + formatted
        return formatted


def _literal_value(prefix: str, quote: str, chunk: str) -> str:
    """The value of ``prefix quote chunk quote`` read by the ast (never eval)."""
    try:
        node = ast.parse(prefix + quote + chunk + quote, mode="eval").body
    except SyntaxError:
        if "r" in prefix:  # a raw piece ending in a backslash cannot be a raw literal on its own
            return chunk
        raise DowngradeError("cannot read an f-string's literal text") from None
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        raise DowngradeError("an f-string's literal text is not a string")
    return node.value
