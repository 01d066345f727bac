"""Helpers shared by the command modules: error handling and option parsing."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, Iterable, TypeVar

import typer

from ..errors import EXIT_BAD_INPUT, BadInput, GolfAuditError, one_line

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    sys.stderr.write(f"golf-audit: {message}\n")
    sys.stderr.flush()
    return typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn every exception from a command body into one stderr line and an exit code.

    Domain errors keep their own exit code; anything else is bad input / cannot conclude
    (2). Set GOLF_AUDIT_DEBUG=1 to re-raise with a traceback while developing.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except GolfAuditError as exc:
            raise fail(one_line(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except (OSError, ValueError, UnicodeError, EOFError) as exc:
            if os.environ.get("GOLF_AUDIT_DEBUG"):
                raise
            raise fail(one_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the contract is: never a traceback
            if os.environ.get("GOLF_AUDIT_DEBUG"):
                raise
            raise fail(f"cannot conclude: internal error {type(exc).__name__}: {one_line(exc)}") from None

    return wrapper  # type: ignore[return-value]


def parse_settings(pairs: Iterable[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a malformed pair is BadInput."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--set expects key=value, got {pair!r}")
        out[key] = value.strip()
    return out
