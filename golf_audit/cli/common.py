"""Helpers shared by the command modules: error handling, help rendering and option parsing.

Command modules import nothing heavy at module level (no torch, no scipy): every command is
registered when the CLI starts, so a top-level import would slow ``--help`` and ``checks``
down by seconds. Libraries are imported inside the command functions.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, Iterable, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import EXIT_BAD_INPUT, BadInput, GolfAuditError, one_line

F = TypeVar("F", bound=Callable)

# Click's exception base, found from a public class: typer vendors its own click in some versions.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    report_error(message)
    return typer.Exit(code)


def report_error(message: str) -> None:
    """The one way golf-audit reports an error: one unwrapped line on stderr."""
    sys.stderr.write(f"golf-audit: {message}\n")
    sys.stderr.flush()


def _evaluator_names() -> str:
    from reference_model.evaluate import REGISTRY  # imports torch: only when a help page shows the list

    return ", ".join(sorted(REGISTRY))


# Placeholders an option's help may contain, filled only when that help page is shown.
HELP_PLACEHOLDERS: dict[str, Callable[[], str]] = {"{evaluators}": _evaluator_names}


class Command(TyperCommand):
    """Every golf-audit command: plain help that reads well at 80 columns, capitalised arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.short_help is None and self.help:
            # The whole first paragraph in the command list (click would cut it at ~45 characters).
            self.short_help = " ".join(self.help.strip().split("\n\n")[0].split())
        for param in self.params:
            if param.param_type_name == "argument" and param.metavar is None and param.name:
                param.metavar = param.name.upper()  # "FOLDER" in usage lines and errors, not "{folder}"

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            help_text = getattr(param, "help", None) or ""
            for key, fill in HELP_PLACEHOLDERS.items():
                if key in help_text:
                    help_text = help_text.replace(key, fill())
                    param.help = help_text
            display = getattr(param, "display_type", None)
            if param.param_type_name == "option" and param.metavar is None and callable(display) \
                    and not getattr(param, "is_flag", False):
                shown = str(display(ctx))
                if shown.startswith("<list[") and shown.endswith("]>"):  # repeatable: say the item type
                    param.metavar = "<" + shown[len("<list["):-len("]>")] + ">"
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    """The top-level group: usage errors (bad option, bad value) are one line and exit 2 too."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # `golf-audit` alone: the help page (on stderr, exit 2), not an error line
            else:
                report_error(usage_error_line(exc))
            code = EXIT_BAD_INPUT if getattr(exc, "exit_code", 1) in (1, 2) else exc.exit_code
            if not standalone_mode:
                raise typer.Exit(code) from None
            sys.exit(code)
        except typer.Abort:
            report_error("aborted")
            if not standalone_mode:
                raise
            sys.exit(EXIT_BAD_INPUT)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def usage_error_line(exc: BaseException) -> str:
    """A click usage error as one line: the message and where to read the command's help."""
    message = " ".join(str(getattr(exc, "format_message", lambda: str(exc))()).split())
    message = message.replace(": Value error, ", ": ")  # typer's validation prefix says nothing
    return f"{message} (see --help)" if getattr(exc, "ctx", None) is not None else message


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
