"""Placeholder: the `slot_compare` command is being built (see its issue)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("slot-compare", hidden=True)
    def _placeholder() -> None:
        raise typer.Exit(2)
