"""The ``golf-audit`` command line: one module per command, each a thin wrapper over the library.

Start-up is part of the product: the command modules import their libraries (torch, scipy)
inside the command functions, so ``--help`` and ``checks`` never load them.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__
from typer.core import TyperCommand

from .common import Command, Group

app = typer.Typer(
    name="golf-audit",
    cls=Group,
    # Plain click help: wraps to the terminal (80 columns too) without cutting option types.
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    help="Compliance and audit toolkit for OpenAI's Parameter Golf challenge.\n\n"
    "Exit codes: 0 all checks pass, 1 a violation found, 2 bad input or cannot conclude.",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"golf-audit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Compliance and audit toolkit for OpenAI's Parameter Golf challenge."""


def _register_commands() -> None:
    # Each module exposes register(app); importing them here keeps `--help` complete.
    from . import artifact, bpb_proof, causality, checks, eval as eval_cmd, pr, report, significance, slot_compare

    for module in (causality, slot_compare, eval_cmd, artifact, significance, bpb_proof, report, pr, checks):
        module.register(app)
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer fills in its default class
            info.cls = Command


_register_commands()


def main() -> None:
    app(prog_name="golf-audit")
