"""Errors the CLI turns into one stderr line and an exit code.

Exit codes are the product's contract: 0 every check passed, 1 a violation was found,
2 bad input or the tool cannot conclude.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2


class GolfAuditError(Exception):
    """Base class of errors that end a command with a clean one-line message."""

    exit_code = EXIT_BAD_INPUT


class BadInput(GolfAuditError):
    """The input cannot be used: missing, corrupt, truncated, foreign, wrong format."""


class CannotConclude(GolfAuditError):
    """The input was read, but no verdict can honestly be given (e.g. nondeterminism)."""


CANNOT_CONCLUDE = "cannot conclude: "


def one_line(exc: BaseException | str, limit: int = 400) -> str:
    """A single-line rendering of an exception (or message) for stderr.

    Whitespace runs (newlines included) become one space, and a "cannot conclude: " that a
    nested summary repeats is said once.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    head, sep, rest = text.partition(CANNOT_CONCLUDE)
    if sep:
        text = head + sep + rest.replace(CANNOT_CONCLUDE, "")
    return text if len(text) <= limit else text[: limit - 1] + "…"
