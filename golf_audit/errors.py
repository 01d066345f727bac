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


def one_line(exc: BaseException, limit: int = 400) -> str:
    """A single-line rendering of an exception for stderr."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
